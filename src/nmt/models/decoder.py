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

from nmt.models.attention import BahdanauAttention, build_attention
from nmt.models.encoder import RNN_CLASSES, EncoderOutput, RNNState


def reorder_state(state: RNNState, index: Tensor) -> RNNState:
    """Select batch rows of a recurrent state: index (B',) -> state with B' rows (dim 1)."""
    if isinstance(state, tuple):
        return tuple(s.index_select(1, index) for s in state)  # type: ignore[return-value]
    return state.index_select(1, index)


def _autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype in force on ``device``'s type, or None."""
    if not torch.is_autocast_enabled(device.type):
        return None
    return torch.get_autocast_dtype(device.type)


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
    recurrent input, so steps are sequential. ``enc.keys``: (B, S, A) projected memory."""

    def __init__(
        self, cell: str, emb_dim: int, hidden_dim: int, memory_dim: int, layers: int, dropout: float
    ) -> None:
        super().__init__(cell, emb_dim + memory_dim, hidden_dim, memory_dim, layers, dropout)
        self.attention = build_attention("bahdanau", hidden_dim, memory_dim)

    def prepare(self, enc: EncoderOutput) -> EncoderOutput:
        return enc.with_keys(self.attention.precompute(enc.memory))

    def step(self, emb, state, enc):  # noqa: D102 - see RNNDecoder.step
        context, attn = self.attention(top_layer(state), enc.keys, enc.memory, enc.mask)
        out, state = self.rnn(torch.cat([emb, context], dim=-1).unsqueeze(1), state)
        return torch.cat([out.squeeze(1), context], dim=-1), state, attn

    def unroll(self, emb: Tensor, state: RNNState, enc: EncoderOutput) -> Tensor:
        """emb: (B, T, E) -> features (B, T, F); the same values as stepping, faster.

        For a one-layer GRU the cell is written out so that no per-step work is done that
        could be batched: the embedding half of the input gates runs once over all steps;
        the context half is ``weights @ (memory @ W_c^T)``, with the memory projected once
        per batch, so one bmm per step yields both the context and its gate inputs; the
        hidden-gate matmul and the attention's query projection share one matmul. Gate
        arithmetic and the state stay in fp32 under autocast. Other cells loop over
        :meth:`step`.
        """
        if self.cell != "gru" or self.layers != 1:
            return super().unroll(emb, state, enc)
        rnn, attn = self.rnn, self.attention
        assert isinstance(attn, BahdanauAttention)
        e, h3, a = emb.size(-1), 3 * self.hidden_dim, attn.query_proj.out_features
        w_ih, b_ih = rnn.weight_ih_l0, rnn.bias_ih_l0
        gi_emb = F.linear(emb, w_ih[:, :e], b_ih)  # (B, T, 3H), all steps at once
        memory = enc.memory
        # (B, S, 3H): each source word's share of the input gates; per step, the context's
        # share is then weights @ mem_gates (the context itself is one bmm after the loop)
        mem_gates = F.linear(memory, w_ih[:, e:]).to(memory.dtype)
        w_h = torch.cat([rnn.weight_hh_l0, attn.query_proj.weight], dim=0)  # (3H + A, H)
        b_h = torch.cat([rnn.bias_hh_l0, rnn.bias_hh_l0.new_zeros(a)])
        keys, v = enc.keys, attn.v.weight[0]  # (B, S, A), (A,)
        low = _autocast_dtype(memory.device)
        if low is not None:  # cast once, not at every step
            w_h, b_h, v, mem_gates = w_h.to(low), b_h.to(low), v.to(low), mem_gates.to(low)
        neg = torch.zeros(enc.mask.shape, dtype=torch.float32, device=memory.device)
        neg = neg.masked_fill(~enc.mask, float("-inf"))  # (B, S) additive mask
        h2 = 2 * self.hidden_dim
        h = top_layer(state).float()  # (B, H)
        outs, all_weights = [], []
        # unbind/split (not indexing) so that backward stacks the step gradients once
        # instead of filling a zero tensor of the whole input at every step
        for gi_t in gi_emb.unbind(1):
            gh, q = F.linear(h, w_h, b_h).split([h3, a], dim=-1)
            scores = torch.matmul(torch.tanh(q.unsqueeze(1) + keys), v).float() + neg
            weights = torch.softmax(scores, dim=-1).unsqueeze(1)  # (B, 1, S)
            gi_c = torch.bmm(weights.to(mem_gates.dtype), mem_gates).squeeze(1)
            i_rz, i_n = (gi_t.float() + gi_c.float()).split([h2, self.hidden_dim], dim=-1)
            h_rz, h_n = gh.float().split([h2, self.hidden_dim], dim=-1)
            r, z = torch.sigmoid(i_rz + h_rz).chunk(2, dim=-1)
            n = torch.tanh(torch.addcmul(i_n, r, h_n))
            h = torch.lerp(n, h, z)  # (1 - z) * n + z * h
            outs.append(h)
            all_weights.append(weights)
        out = torch.stack(outs, dim=1)  # (B, T, H)
        ctx = torch.bmm(torch.cat(all_weights, dim=1).to(memory.dtype), memory)  # (B, T, M)
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
