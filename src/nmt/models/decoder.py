"""The recurrent decoder, assembled from components chosen by params: the cell and its
layers, the attention (none, additive, multiplicative, the tutorial's location-based),
what queries it (the previous or the current state), whether a context feeds the
recurrence, an activation on the recurrent input, how many passes a step makes, and the
bridge from the encoder's final state to the first state.

One step is :meth:`RNNDecoder.step`; :meth:`RNNDecoder.unroll` runs a whole reference
under teacher forcing, in one call over all steps when the recurrence does not depend on
the attention, else step by step. Both return *features*, [state; context] or the state
alone (B, [T,] F); :class:`~nmt.models.rnn.RNNSeq2Seq`'s readout and output layer turn
them into logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.config.model import RNNParams
from nmt.models.attention import LocationAttention, build_attention, padding_bias
from nmt.models.encoder import RNN_CLASSES, EncoderOutput, RNNState
from nmt.models.gru_attention import gru_attention_cell


def reorder_state(state: RNNState, index: Tensor) -> RNNState:
    """Select batch rows of a recurrent state: index (B',) -> state with B' rows (dim 1)."""
    if isinstance(state, tuple):
        return tuple(s.index_select(1, index) for s in state)  # type: ignore[return-value]
    return state.index_select(1, index)


def _to_source(weights: Tensor, s: int) -> Tensor:
    """Slot weights (B, slots) -> weights over the S source positions (B, S): cut, or
    padded with zeros."""
    if weights.size(1) >= s:
        return weights[:, :s]
    return F.pad(weights, (0, s - weights.size(1)))


def top_layer(state: RNNState) -> Tensor:
    """The last layer's hidden state (B, H)."""
    h = state[0] if isinstance(state, tuple) else state
    return h[-1]


class RNNDecoder(nn.Module):
    """A recurrent decoder over the encoder memory (M wide).

    ``attention: none`` is Cho et al.'s decoder: the context is the encoder's final state,
    fed to every step's input and to the readout; with ``feed_final: false`` it is
    Sutskever et al.'s, whose features are the state alone. ``bahdanau`` queries additive
    attention with the previous state and feeds the context to the step, so steps are
    sequential. ``additive`` (the same score), ``dot`` / ``general`` (Luong et al.'s
    global attention, without input feeding) query with the current state: the
    recurrence ignores the context, so a reference unrolls in one call and attention in
    one batched product. ``location`` is the PyTorch tutorial's
    (:class:`~nmt.models.attention.LocationAttention`): its features are the state alone.
    """

    def __init__(self, params: RNNParams, memory_dim: int, input_dim: int | None = None) -> None:
        """``input_dim``: the width of the target token inputs (embedding_dim unless they
        are one-hot)."""
        super().__init__()
        cell, hidden_dim = params.cell, params.hidden_dim
        emb_dim = params.embedding_dim if input_dim is None else input_dim
        layers, kind = params.decoder_layers, params.attention
        self.cell, self.layers, self.hidden_dim, self.emb_dim = cell, layers, hidden_dim, emb_dim
        self.kind = kind
        #: what queries the attention: the state before the step, or the step's output
        self.query = "previous" if kind in ("bahdanau", "location") else "current"
        #: the encoder's final state as a fixed context (Cho et al.'s decoder)
        self.fixed_context = kind == "none" and params.feed_final
        #: whether a context is part of the recurrent input
        self.feed_context = self.fixed_context or kind == "bahdanau"
        self.relu = params.decoder_activation == "relu"
        self.passes = params.decoder_passes
        if kind == "location":
            rnn_input = hidden_dim
        else:
            rnn_input = emb_dim + (memory_dim if self.feed_context else 0)
        self.rnn = RNN_CLASSES[cell](
            rnn_input,
            hidden_dim,
            num_layers=layers,
            batch_first=True,
            dropout=params.dropout if layers > 1 else 0.0,
        )
        self.bridge_kind = params.bridge
        # The bridge maps the encoder's final state to every decoder layer's initial state.
        if params.bridge not in ("zeros", "identity"):
            self.bridge = nn.Linear(memory_dim, layers * hidden_dim)
            self.bridge_cell = (
                nn.Linear(memory_dim, layers * hidden_dim) if cell == "lstm" else None
            )
        # made after the recurrent net and the bridge: a seed gives the same initial
        # weights as before the decoders were one class
        self.attention: nn.Module | None = None
        if kind == "location":
            self.attention = LocationAttention(
                emb_dim, hidden_dim, memory_dim, params.attention_slots, hidden_dim
            )
        elif kind != "none":
            self.attention = build_attention(kind, hidden_dim, memory_dim, params.attention_v)
        #: whether the features hold a context beside the state
        self.has_context = kind not in ("none", "location") or self.fixed_context
        self.feature_dim = hidden_dim + (memory_dim if self.has_context else 0)
        #: True when a step is :func:`~nmt.models.gru_attention.gru_attention_cell`: one
        #: GRU layer fed the context of additive attention queried by the previous state.
        self.gru_attention = (
            cell == "gru"
            and layers == 1
            and kind == "bahdanau"
            and params.attention_v
            and not self.relu
        )
        #: True when :meth:`unroll` runs all steps at once instead of a step loop.
        self.parallel = (
            self.passes == 1
            and kind != "location"
            and (self.attention is None or not self.feed_context)
        )

    # -- state ---------------------------------------------------------------------------

    def _bridge(self, layer: nn.Linear, final: Tensor) -> Tensor:
        h = layer(final)
        if self.bridge_kind == "tanh":
            h = torch.tanh(h)
        h = h.view(final.size(0), self.layers, self.hidden_dim)
        return h.transpose(0, 1).contiguous()  # (L, B, H)

    def init_state(self, enc: EncoderOutput) -> RNNState:
        if self.bridge_kind == "identity":
            if enc.state is None:
                raise ValueError("bridge: identity needs the encoder's final state")
            return enc.state
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
        keys = self.attention.precompute(enc.memory)  # type: ignore[operator]
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
        if self.kind == "location":
            x, attn = self.attention(emb, top_layer(state), enc.keys)  # type: ignore[misc]
            attn = _to_source(attn, enc.mask.size(1))
        elif self.attention is not None and self.query == "previous":
            context, attn = self.attention(top_layer(state), enc.keys, enc.memory, enc.mask)
        if self.kind != "location":
            x = torch.cat([emb, context], dim=-1) if self.feed_context else emb
        for _ in range(self.passes):
            if self.relu:
                x = F.relu(x)
            out, state = self.rnn(x.unsqueeze(1), state)
            x = out.squeeze(1)
        out = x
        if self.attention is not None and self.query == "current":
            context, attn = self.attention(out, enc.keys, enc.memory, enc.mask)
        if not self.has_context:
            return out, state, attn
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
        if not self.parallel:
            feats = []
            for t in range(emb.size(1)):
                f, state, _ = self.step(emb[:, t], state, enc)
                feats.append(f)
            return torch.stack(feats, dim=1)
        # The recurrence does not depend on the attention: all steps in one call.
        x = emb
        if self.fixed_context:
            c = enc.final.unsqueeze(1).expand(-1, emb.size(1), -1)  # (B, T, M)
            x = torch.cat([emb, c], dim=-1)
        out, _ = self.rnn(F.relu(x) if self.relu else x, state)  # (B, T, H)
        if self.attention is None:
            return torch.cat([out, c], dim=-1) if self.fixed_context else out
        context, _ = self.attention(out, enc.keys, enc.memory, enc.mask)
        return torch.cat([out, context], dim=-1)
