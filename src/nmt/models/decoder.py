"""Recurrent decoders: one step is a method (``step``); unrolling over a reference target
under full teacher forcing is another (``unroll``), which decoders whose recurrence does not
depend on attention run as one fused call over all steps.

Every decoder returns *features* (B, [T,] F); the shared pre-output and output layers of
:class:`~nmt.models.seq2seq.Seq2Seq` turn them into logits, once, over all steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.models.attention import BahdanauAttention, build_attention, padding_bias
from nmt.models.encoder import RNN_CLASSES, EncoderOutput, RNNState
from nmt.models.recurrence import BahdanauGRU, autocast_dtype, tanh_grad


def reorder_state(state: RNNState, index: Tensor) -> RNNState:
    """Select batch rows of a recurrent state: index (B',) -> state with B' rows (dim 1)."""
    if isinstance(state, tuple):
        return tuple(s.index_select(1, index) for s in state)  # type: ignore[return-value]
    return state.index_select(1, index)


def top_layer(state: RNNState) -> Tensor:
    """The last layer's hidden state (B, H)."""
    h = state[0] if isinstance(state, tuple) else state
    return h[-1]


class RNNDecoder(nn.Module):
    """Shared machinery: the recurrent net and the bridge from the encoder's final state."""

    #: True when ``unroll`` runs all steps at once instead of a step loop.
    parallel: bool = False

    def __init__(
        self,
        cell: str,
        input_dim: int,
        hidden_dim: int,
        memory_dim: int,
        layers: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.cell = cell
        self.layers = layers
        self.hidden_dim = hidden_dim
        self.rnn = RNN_CLASSES[cell](
            input_dim,
            hidden_dim,
            num_layers=layers,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        # The bridge maps the encoder's final state to every decoder layer's initial state.
        self.bridge = nn.Linear(memory_dim, layers * hidden_dim)
        self.bridge_cell = nn.Linear(memory_dim, layers * hidden_dim) if cell == "lstm" else None
        self.feature_dim = hidden_dim + memory_dim

    def _bridge(self, layer: nn.Linear, final: Tensor) -> Tensor:
        b = final.size(0)
        h = torch.tanh(layer(final)).view(b, self.layers, self.hidden_dim)
        return h.transpose(0, 1).contiguous()  # (L, B, H)

    def init_state(self, enc: EncoderOutput) -> RNNState:
        h = self._bridge(self.bridge, enc.final)
        if self.bridge_cell is not None:
            return (h, self._bridge(self.bridge_cell, enc.final))
        return h

    def prepare(self, enc: EncoderOutput) -> EncoderOutput:
        """Attach this decoder's once-per-batch precomputation to ``enc.keys``."""
        return enc

    def step(
        self, emb: Tensor, state: RNNState, enc: EncoderOutput
    ) -> tuple[Tensor, RNNState, Tensor | None]:
        """emb: (B, E) embedded previous token -> features (B, F), state, attn (B, S)|None."""
        raise NotImplementedError

    def unroll(self, emb: Tensor, state: RNNState, enc: EncoderOutput) -> Tensor:
        """emb: (B, T, E) embedded reference inputs -> features (B, T, F)."""
        feats = []
        for t in range(emb.size(1)):
            f, state, _ = self.step(emb[:, t], state, enc)
            feats.append(f)
        return torch.stack(feats, dim=1)


class PlainDecoder(RNNDecoder):
    """No attention (Cho et al., 2014): a fixed context c, made from the encoder's final
    state, is fed to every step's input and output. ``enc.keys`` holds c: (B, M)."""

    parallel = True

    def __init__(
        self, cell: str, emb_dim: int, hidden_dim: int, memory_dim: int, layers: int, dropout: float
    ) -> None:
        super().__init__(cell, emb_dim + memory_dim, hidden_dim, memory_dim, layers, dropout)

    def prepare(self, enc: EncoderOutput) -> EncoderOutput:
        return enc.with_keys(enc.final)

    def step(self, emb, state, enc):  # noqa: D102 - see RNNDecoder.step
        c = enc.keys
        out, state = self.rnn(torch.cat([emb, c], dim=-1).unsqueeze(1), state)
        return torch.cat([out.squeeze(1), c], dim=-1), state, None

    def unroll(self, emb: Tensor, state: RNNState, enc: EncoderOutput) -> Tensor:
        c = enc.keys.unsqueeze(1).expand(-1, emb.size(1), -1)  # (B, T, M)
        out, _ = self.rnn(torch.cat([emb, c], dim=-1), state)
        return torch.cat([out, c], dim=-1)


class BahdanauDecoder(RNNDecoder):
    """Additive attention queried with the previous state s_{t-1}; the context feeds the
    recurrent input, so steps are sequential. ``enc.keys``: (B, S, A) projected memory.

    For a one-layer GRU the cell is written out (:attr:`fused`), so that no per-step work
    is done that could be batched: the context's share of the input gates is
    ``weights @ (memory @ W_c^T)``, with that product made once per batch and kept in
    ``enc.values`` (B, S, 3H); the embedding's share runs once over all steps in
    :meth:`unroll`; gate arithmetic and the state stay in fp32 under autocast. Other cells
    and deeper decoders run ``nn.GRU``/``nn.LSTM``/``nn.RNN`` one step at a time.
    """

    def __init__(
        self, cell: str, emb_dim: int, hidden_dim: int, memory_dim: int, layers: int, dropout: float
    ) -> None:
        super().__init__(cell, emb_dim + memory_dim, hidden_dim, memory_dim, layers, dropout)
        self.attention = build_attention("bahdanau", hidden_dim, memory_dim)
        self.emb_dim = emb_dim
        self.fused = cell == "gru" and layers == 1

    def prepare(self, enc: EncoderOutput) -> EncoderOutput:
        keys = self.attention.precompute(enc.memory)
        if not self.fused:
            return enc.with_keys(keys)
        # (B, S, 3H): each source word's share of the input gates
        mem_gates = F.linear(enc.memory, self.rnn.weight_ih_l0[:, self.emb_dim :])
        return enc.with_keys(keys, mem_gates.to(enc.memory.dtype))

    def step(self, emb, state, enc):  # noqa: D102 - see RNNDecoder.step
        if not self.fused:
            context, attn = self.attention(top_layer(state), enc.keys, enc.memory, enc.mask)
            out, state = self.rnn(torch.cat([emb, context], dim=-1).unsqueeze(1), state)
            return torch.cat([out.squeeze(1), context], dim=-1), state, attn
        rnn, h_dim = self.rnn, self.hidden_dim
        h = top_layer(state)  # (B, H)
        context, attn = self.attention(h, enc.keys, enc.memory, enc.mask)  # (B, M), (B, S)
        gh = F.linear(h, rnn.weight_hh_l0, rnn.bias_hh_l0).float()
        gi_c = torch.bmm(attn.unsqueeze(1).to(enc.values.dtype), enc.values).squeeze(1)
        gi = F.linear(emb, rnn.weight_ih_l0[:, : self.emb_dim], rnn.bias_ih_l0)
        i_rz, i_n = (gi.float() + gi_c.float()).split([2 * h_dim, h_dim], dim=-1)
        h_rz, h_n = gh.split([2 * h_dim, h_dim], dim=-1)
        r, z = torch.sigmoid(i_rz + h_rz).chunk(2, dim=-1)
        n = tanh_grad(torch.addcmul(i_n, r, h_n))
        h = torch.lerp(n, h.float(), z)  # (1 - z) * n + z * h
        return torch.cat([h.to(context.dtype), context], dim=-1), h.unsqueeze(0), attn

    def hidden_query_weights(self) -> tuple[Tensor, Tensor]:
        """The fused GRU's hidden-gate and attention-query weights stacked, (3H + A, H),
        and their bias (3H + A,) (the query has none): one matmul of the state gives
        both."""
        rnn, query = self.rnn, self.attention.query_proj
        w_h = torch.cat([rnn.weight_hh_l0, query.weight], dim=0)
        return w_h, torch.cat([rnn.bias_hh_l0, rnn.bias_hh_l0.new_zeros(query.out_features)])

    def unroll(self, emb: Tensor, state: RNNState, enc: EncoderOutput) -> Tensor:
        """emb: (B, T, E) -> features (B, T, F); the same values as stepping, faster.

        The fused GRU's step loop is :class:`~nmt.models.recurrence.BahdanauGRU`, whose
        written-out backward leaves only the recurrent gradients to a step loop; its
        hidden-gate matmul and the attention's query projection share one matmul. Other
        cells loop over :meth:`step`.
        """
        if not self.fused:
            return super().unroll(emb, state, enc)
        rnn, attn = self.rnn, self.attention
        assert isinstance(attn, BahdanauAttention) and enc.values is not None
        gi_emb = F.linear(emb, rnn.weight_ih_l0[:, : self.emb_dim], rnn.bias_ih_l0)  # (B, T, 3H)
        memory, mem_gates = enc.memory, enc.values
        w_h, b_h = self.hidden_query_weights()
        keys, v = enc.keys, attn.v.weight[0]  # (B, S, A), (A,)
        low = autocast_dtype(memory.device)
        if low is not None:  # cast once, not at every step
            w_h, b_h = w_h.to(low), b_h.to(low)
        neg = padding_bias(enc.mask)  # (B, S)
        h0 = top_layer(state)
        h0 = h0.to(torch.promote_types(h0.dtype, torch.float32))  # (B, H), fp32 under autocast
        out, weights = BahdanauGRU.apply(gi_emb, mem_gates, keys, w_h, b_h, v, h0, neg)
        ctx = torch.bmm(weights.to(memory.dtype), memory)  # (B, T, M)
        return torch.cat([out.to(ctx.dtype), ctx], dim=-1)


class LuongDecoder(RNNDecoder):
    """Multiplicative attention (dot / general) queried with the current state h_t
    (global attention without input feeding): the recurrence ignores the context, so
    under teacher forcing all steps run as one fused call and attention as one bmm.
    ``enc.keys``: (B, S, H) memory in query space."""

    parallel = True

    def __init__(
        self,
        cell: str,
        emb_dim: int,
        hidden_dim: int,
        memory_dim: int,
        layers: int,
        dropout: float,
        score: str,
    ) -> None:
        super().__init__(cell, emb_dim, hidden_dim, memory_dim, layers, dropout)
        self.attention = build_attention(score, hidden_dim, memory_dim)

    def prepare(self, enc: EncoderOutput) -> EncoderOutput:
        return enc.with_keys(self.attention.precompute(enc.memory))

    def step(self, emb, state, enc):  # noqa: D102 - see RNNDecoder.step
        out, state = self.rnn(emb.unsqueeze(1), state)
        out = out.squeeze(1)
        context, attn = self.attention(out, enc.keys, enc.memory, enc.mask)
        return torch.cat([out, context], dim=-1), state, attn

    def unroll(self, emb: Tensor, state: RNNState, enc: EncoderOutput) -> Tensor:
        out, _ = self.rnn(emb, state)  # (B, T, H)
        context, _ = self.attention(out, enc.keys, enc.memory, enc.mask)
        return torch.cat([out, context], dim=-1)
