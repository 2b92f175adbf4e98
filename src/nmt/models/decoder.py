"""The recurrent decoder, assembled from components chosen by params: the cell and its
layers, the attention (none, additive, multiplicative), what queries it (the previous or
the current state), whether the context feeds the recurrence, and the bridge from the
encoder's final state to the first state.

One step is :meth:`RNNDecoder.step`; :meth:`RNNDecoder.unroll` runs a whole reference
under teacher forcing, in one call over all steps when the recurrence does not depend on
the attention, else step by step. Both return *features* [state; context] (B, [T,] F);
:class:`~nmt.models.rnn.RNNSeq2Seq`'s readout and output layer turn them into logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.config.model import RNNParams
from nmt.models.attention import build_attention, padding_bias
from nmt.models.encoder import RNN_CLASSES, EncoderOutput, RNNState
from nmt.models.gru_attention import gru_attention_cell


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
    """A recurrent decoder over the encoder memory (M wide).

    ``attention: none`` is Cho et al.'s decoder: the context is the encoder's final state,
    fed to every step's input and to the readout. ``bahdanau`` queries additive attention
    with the previous state and feeds the context to the step, so steps are sequential.
    ``dot`` / ``general`` (Luong et al.'s global attention, without input feeding) query
    with the current state: the recurrence ignores the context, so a reference unrolls in
    one call and attention in one batched product.
    """

    def __init__(self, params: RNNParams, memory_dim: int) -> None:
        super().__init__()
        cell, emb_dim, hidden_dim = params.cell, params.embedding_dim, params.hidden_dim
        layers, kind = params.decoder_layers, params.attention
        self.cell, self.layers, self.hidden_dim, self.emb_dim = cell, layers, hidden_dim, emb_dim
        #: what queries the attention: the state before the step, or the step's output
        self.query = "previous" if kind == "bahdanau" else "current"
        #: whether the context is part of the recurrent input
        self.feed_context = kind in ("none", "bahdanau")
        input_dim = emb_dim + (memory_dim if self.feed_context else 0)
        self.rnn = RNN_CLASSES[cell](
            input_dim,
            hidden_dim,
            num_layers=layers,
            batch_first=True,
            dropout=params.dropout if layers > 1 else 0.0,
        )
        self.bridge_kind = params.bridge
        # The bridge maps the encoder's final state to every decoder layer's initial state.
        if params.bridge != "zeros":
            self.bridge = nn.Linear(memory_dim, layers * hidden_dim)
            self.bridge_cell = (
                nn.Linear(memory_dim, layers * hidden_dim) if cell == "lstm" else None
            )
        # made after the recurrent net and the bridge: a seed gives the same initial
        # weights as before the decoders were one class
        self.attention = None if kind == "none" else build_attention(kind, hidden_dim, memory_dim)
        self.feature_dim = hidden_dim + memory_dim
        #: True when a step is :func:`~nmt.models.gru_attention.gru_attention_cell`: one
        #: GRU layer fed the context of additive attention queried by the previous state.
        self.gru_attention = cell == "gru" and layers == 1 and kind == "bahdanau"
        #: True when :meth:`unroll` runs all steps at once instead of a step loop.
        self.parallel = self.attention is None or not self.feed_context

    # -- state ---------------------------------------------------------------------------

    def _bridge(self, layer: nn.Linear, final: Tensor) -> Tensor:
        h = layer(final)
        if self.bridge_kind == "tanh":
            h = torch.tanh(h)
        h = h.view(final.size(0), self.layers, self.hidden_dim)
        return h.transpose(0, 1).contiguous()  # (L, B, H)

    def init_state(self, enc: EncoderOutput) -> RNNState:
        if self.bridge_kind == "zeros":
            b = enc.final.size(0)
            h = enc.final.new_zeros(self.layers, b, self.hidden_dim)
            return (h, torch.zeros_like(h)) if self.cell == "lstm" else h
        h = self._bridge(self.bridge, enc.final)
        if self.bridge_cell is not None:
            return (h, self._bridge(self.bridge_cell, enc.final))
        return h

    def prepare(self, enc: EncoderOutput) -> EncoderOutput:
        """Attach what the steps share to the encoder output: the attention's keys, and for
        :attr:`gru_attention` the memory's share of the input gates."""
        if self.attention is None:
            return enc
        keys = self.attention.precompute(enc.memory)
        values = None
        if self.gru_attention:  # (B, S, 3H)
            values = F.linear(enc.memory, self.rnn.weight_ih_l0[:, self.emb_dim :])
            values = values.to(enc.memory.dtype)
        return enc.with_keys(keys, values)

    def hidden_query_weights(self) -> tuple[Tensor, Tensor]:
        """For :attr:`gru_attention`: the GRU's hidden-gate and the attention's query
        weights stacked, (3H + A, H), and their bias (3H + A,) (the query has none): one
        matmul of the state gives both."""
        rnn, query = self.rnn, self.attention.query_proj  # type: ignore[union-attr]
        w_h = torch.cat([rnn.weight_hh_l0, query.weight], dim=0)
        return w_h, torch.cat([rnn.bias_hh_l0, rnn.bias_hh_l0.new_zeros(query.out_features)])

    # -- one step ------------------------------------------------------------------------

    def step(
        self, emb: Tensor, state: RNNState, enc: EncoderOutput
    ) -> tuple[Tensor, RNNState, Tensor | None]:
        """emb: (B, E) embedded previous token -> features (B, F), state, attn (B, S)|None."""
        if self.gru_attention:
            return self._gru_attention_step(emb, state, enc)
        attn = None
        context = enc.final  # the fixed context without attention
        if self.attention is not None and self.query == "previous":
            context, attn = self.attention(top_layer(state), enc.keys, enc.memory, enc.mask)
        x = torch.cat([emb, context], dim=-1) if self.feed_context else emb
        out, state = self.rnn(x.unsqueeze(1), state)
        out = out.squeeze(1)
        if self.attention is not None and self.query == "current":
            context, attn = self.attention(out, enc.keys, enc.memory, enc.mask)
        return torch.cat([out, context], dim=-1), state, attn

    def _gru_attention_step(
        self, emb: Tensor, state: RNNState, enc: EncoderOutput
    ) -> tuple[Tensor, RNNState, Tensor | None]:
        assert isinstance(state, Tensor) and enc.values is not None and enc.keys is not None
        rnn, attention = self.rnn, self.attention
        h = top_layer(state)
        w_h, b_h = self.hidden_query_weights()
        hq = F.linear(h, w_h, b_h)
        gi = F.linear(emb, rnn.weight_ih_l0[:, : self.emb_dim], rnn.bias_ih_l0)
        # gate arithmetic and the state in fp32 under autocast
        sd = torch.promote_types(h.dtype, torch.float32)
        new, weights, _, _ = gru_attention_cell(
            h.to(sd),
            gi.to(sd),
            hq.to(sd),
            enc.values.to(sd),
            enc.keys.to(sd),
            attention.v.weight[0].to(sd),  # type: ignore[union-attr]
            padding_bias(enc.mask).to(sd),
        )
        context = torch.bmm(weights.unsqueeze(1).to(enc.memory.dtype), enc.memory).squeeze(1)
        return torch.cat([new.to(context.dtype), context], dim=-1), new.unsqueeze(0), weights

    # -- a whole reference ---------------------------------------------------------------

    def unroll(self, emb: Tensor, state: RNNState, enc: EncoderOutput) -> Tensor:
        """emb: (B, T, E) embedded reference inputs -> features (B, T, F)."""
        if self.attention is None:
            c = enc.final.unsqueeze(1).expand(-1, emb.size(1), -1)  # (B, T, M)
            out, _ = self.rnn(torch.cat([emb, c], dim=-1), state)
            return torch.cat([out, c], dim=-1)
        if not self.feed_context:
            out, _ = self.rnn(emb, state)  # (B, T, H)
            context, _ = self.attention(out, enc.keys, enc.memory, enc.mask)
            return torch.cat([out, context], dim=-1)
        feats = []
        for t in range(emb.size(1)):
            f, state, _ = self.step(emb[:, t], state, enc)
            feats.append(f)
        return torch.stack(feats, dim=1)
