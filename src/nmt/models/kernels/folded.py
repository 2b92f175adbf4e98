"""Search steps for recurrent models on a CPU, with every product that does not depend
on the decoder state made ahead of time, so that a batch of B hypotheses does per step
only the work that must be done per step; the products with a weight take it packed for
oneDNN (:class:`~nmt.models.kernels.packed.PackedLinear`).

:class:`PackedStep` is any recurrent model's step with its output layer packed;
:class:`FoldedStep` is the whole step of a one-layer GRU decoder with additive attention
(the default model), folded. :func:`nmt.models.kernels.search_step` picks one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from nmt.models.attention import padding_bias
from nmt.models.base import SearchStep
from nmt.models.encoder import EncoderOutput, RNNState, length_mask
from nmt.models.gru_attention import gru_attention_cell
from nmt.models.kernels.activations import tanh
from nmt.models.kernels.bahdanau_gru import doubled_query
from nmt.models.kernels.packed import PackedLinear
from nmt.models.rnn import RNNSeq2Seq


class PackedStep(SearchStep):
    """A recurrent model's own step up to the output layer, whose product (the largest of
    a step) takes the weight packed once."""

    def __init__(self, model: RNNSeq2Seq) -> None:
        super().__init__(model)
        self.rnn_model = model
        self.generator = PackedLinear(model.generator.weight, model.generator.bias)

    def __call__(
        self, prev: Tensor, state: RNNState, memory: EncoderOutput
    ) -> tuple[Tensor, RNNState, Tensor | None]:
        readout, state, attn = self.rnn_model.readout_step(prev, state, memory)
        return self.generator(readout), state, attn


@dataclass(frozen=True)
class FoldedMemory:
    """What :class:`FoldedStep` attends to: ``keys2`` (B, S, A) the doubled key projection,
    ``values`` (B, S, 3H + E) the memory's share of the input gates and of the readout,
    ``bias`` (B, S) 0 on real positions and -inf on padding."""

    keys2: Tensor
    values: Tensor
    bias: Tensor

    def index_select(self, index: Tensor) -> FoldedMemory:
        return FoldedMemory(
            self.keys2.index_select(0, index),
            self.values.index_select(0, index),
            self.bias.index_select(0, index),
        )


class FoldedStep(SearchStep):
    """The search step of a one-layer GRU decoder with Bahdanau attention, folded.

    One step of that model, for previous token y and state h, is::

        w       = softmax(v . tanh(W_q h + keys))          # attention over the source
        c       = w @ memory                               # context (B, M)
        gi      = W_ie E[y] + b_ih + W_ic c                # GRU input gates
        h'      = GRU(gi, W_hh h + b_hh, h)
        readout = tanh(W_ph h' + W_pc c + b_p)             # the generator's input

    Here ``W_ie E + b_ih`` is a table with a row per target token, ``memory @ [W_ic;
    W_pc]^T`` is made once per batch, so that
    ``w @`` it gives the context's share of both the input gates and the readout without
    forming c, and ``W_hh`` and ``W_q`` are one matmul: per step, two matmuls of the state
    instead of four of the state, the context and the embedding. The attention and gate
    arithmetic are :func:`~nmt.models.gru_attention.gru_attention_cell`, as in training,
    with the attention's tanh as a sigmoid (:func:`~.bahdanau_gru.doubled_query`). The
    output layer's product is packed as in :class:`PackedStep`. A one-layer GRU encoder
    is folded the same way (:class:`TableGRUEncoder`).
    """

    def __init__(self, model: RNNSeq2Seq) -> None:
        super().__init__(model)
        decoder = model.decoder
        attention = decoder.attention
        assert decoder.gru_attention and attention is not None and model.params.readout == "tanh"
        rnn, e, h = decoder.rnn, decoder.emb_dim, decoder.hidden_dim
        with torch.no_grad(), torch.autocast(model.generator.weight.device.type, enabled=False):
            w_ih, w_p = rnn.weight_ih_l0, model.pre_output.weight  # (3H, E + M), (E, H + M)
            self.token_gates = F.linear(model.tgt_embedding.weight, w_ih[:, :e], rnn.bias_ih_l0)
            self.values = PackedLinear(torch.cat([w_ih[:, e:], w_p[:, h:]]))  # M -> 3H + E
            self.keys2 = PackedLinear(attention.key_proj.weight * 2)  # M -> A
            self.hidden2 = PackedLinear(*doubled_query(*decoder.hidden_query_weights(), 3 * h))
            self.v2 = attention.v.weight[0] * 2  # (A,)
            self.readout = PackedLinear(w_p[:, :h], model.pre_output.bias)  # H -> E
            self.generator = PackedLinear(model.generator.weight, model.generator.bias)
            encoder = model.encoder
            self.encode = (
                TableGRUEncoder(encoder)
                if isinstance(encoder.rnn, torch.nn.GRU) and encoder.layers == 1
                else encoder
            )

    def start(self, src: Tensor, src_lengths: Tensor) -> tuple[FoldedMemory, RNNState]:
        enc = self.encode(src, src_lengths)
        memory = enc.memory.reshape(-1, enc.memory.size(-1))  # one mm per weight, not a bmm
        b, s = enc.mask.shape
        folded = FoldedMemory(
            keys2=self.keys2(memory).view(b, s, -1),
            values=self.values(memory).view(b, s, -1),
            bias=padding_bias(enc.mask),
        )
        return folded, self.model.init_state(enc)

    def __call__(
        self, prev: Tensor, state: RNNState, memory: FoldedMemory
    ) -> tuple[Tensor, RNNState, Tensor | None]:
        assert isinstance(state, Tensor)
        gi = self.token_gates.index_select(0, prev)  # (B, 3H)
        h, weights, _, readout_c = gru_attention_cell(
            state[0],
            gi,
            self.hidden2(state[0]),
            memory.values,
            memory.keys2,
            self.v2,
            memory.bias,
            score_act=torch.sigmoid_,
            tanh=tanh,
        )
        readout = tanh(self.readout(h).add_(readout_c))
        return self.generator(readout), h.unsqueeze(0), weights


class TableGRUEncoder:
    """The encoder's one-layer (bi)directional GRU with the input gates looked up: a table
    ``W_ih E + b_ih`` with a row per source token and direction replaces the input
    product, and the directions step together. Gives the
    :class:`~nmt.models.encoder.Encoder`'s
    output (padding rows of the memory zero, each direction's final state at its last
    real token).

    The hidden product of a step is one batched matmul of both directions for batches of
    fewer than ``PACKED_ROWS`` sentences, else one :class:`PackedLinear` per direction,
    which is faster for large batches and slower for small ones (see docs/speed.md).
    """

    PACKED_ROWS = 16

    def __init__(self, encoder: torch.nn.Module) -> None:
        rnn = encoder.rnn
        suffixes = ["", "_reverse"][: encoder.directions]
        weights = [
            (getattr(rnn, f"weight_ih_l0{x}"), getattr(rnn, f"bias_ih_l0{x}")) for x in suffixes
        ]
        emb = encoder.embedding.weight
        # row token * D + d: the input gates of token in direction d
        gates = torch.stack([F.linear(emb, w, b) for w, b in weights], dim=1)  # (V, D, 3H)
        self.gates = gates.view(-1, gates.size(-1))
        hidden = [
            (getattr(rnn, f"weight_hh_l0{x}"), getattr(rnn, f"bias_hh_l0{x}")) for x in suffixes
        ]
        self.w_hh_t = torch.stack([w.t() for w, _ in hidden])
        self.b_hh = torch.stack([b for _, b in hidden]).unsqueeze(1)
        self.packed = [PackedLinear(w, b) for w, b in hidden]
        self.hidden = rnn.hidden_size
        self.directions = encoder.directions

    def __call__(self, src: Tensor, lengths: Tensor) -> EncoderOutput:
        b, s = src.shape
        h_dim, d = self.hidden, self.directions
        lengths = lengths.to(src.device)
        # Step t of direction 0 reads position t; of direction 1, position s - 1 - t: the
        # padded row backwards, so its padding comes first and is skipped (the state stays
        # zero until the last real token).
        t, dirs = torch.arange(s, device=src.device), torch.arange(d, device=src.device)
        pos = torch.stack([t, s - 1 - t])[:d]  # (D, S): the position each step reads
        gate_rows = src.t()[pos] * d + dirs.view(d, 1, 1)  # (D, S, B)
        x = self.gates.index_select(0, gate_rows.reshape(-1)).view(d, s, b, -1)
        real = (pos.unsqueeze(-1) < lengths).unsqueeze(-1)  # (D, S, B, 1)
        h = src.new_zeros(d, b, h_dim, dtype=self.gates.dtype)
        out = h.new_empty(d, s, b, h_dim)
        packed = b >= self.PACKED_ROWS
        for i in range(s):
            if packed:
                gh = torch.stack([lin(h[j]) for j, lin in enumerate(self.packed)])
            else:
                gh = torch.baddbmm(self.b_hh, h, self.w_hh_t)  # (D, B, 3H)
            i_rz, i_n = x[:, i].split([2 * h_dim, h_dim], dim=-1)
            h_rz, h_n = gh.split([2 * h_dim, h_dim], dim=-1)
            r, z = torch.sigmoid(i_rz + h_rz).chunk(2, dim=-1)
            n = tanh(torch.addcmul(i_n, r, h_n))
            h = torch.where(real[:, i], torch.lerp(n, h, z), h)
            torch.mul(h, real[:, i], out=out[:, i])
        # memory[b, p, d] is direction d's output at the step that read position p: that
        # is step pos[d, p] (reading backwards is its own inverse)
        out_rows = (dirs.view(d, 1) * s + pos).t() * b  # (S, D)
        out_rows = out_rows + torch.arange(b, device=src.device).view(b, 1, 1)  # (B, S, D)
        memory = out.view(d * s * b, h_dim).index_select(0, out_rows.reshape(-1))
        memory = memory.view(b, s, d * h_dim)
        return EncoderOutput(
            memory=memory, mask=length_mask(lengths, s), final=torch.cat(list(h), dim=-1)
        )
