"""The recurrent encoder-decoder (``arch: rnn``): embeddings, a recurrent encoder, the
decoder assembled from params (:class:`~nmt.models.decoder.RNNDecoder`), a readout and the
output layer."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.config.model import RNNParams
from nmt.models.base import Seq2SeqModel
from nmt.models.decoder import RNNDecoder, reorder_state
from nmt.models.encoder import Encoder, EncoderOutput, RNNState, token_inputs
from nmt.specials import EOS_ID, PAD_ID, SOS_ID


def add_markers(src: Tensor, lengths: Tensor, markers: str) -> tuple[Tensor, Tensor]:
    """src: (B, S) ids, lengths: (B,) -> the sources with ``<eos>`` after each (``eos``),
    and ``<sos>`` before (``sos_eos``): (B, S + 1 | S + 2) and their lengths."""
    b = src.size(0)
    out = torch.cat([src, src.new_full((b, 1), PAD_ID)], dim=1)
    out[torch.arange(b, device=src.device), lengths.to(src.device)] = EOS_ID
    lengths = lengths + 1
    if markers == "sos_eos":
        out = torch.cat([out.new_full((b, 1), SOS_ID), out], dim=1)
        lengths = lengths + 1
    return out, lengths


class RNNSeq2Seq(Seq2SeqModel):
    """Encoder + decoder + readout + output projection.

    The ``tanh`` readout maps the decoder's features [state; context] to the embedding
    size, so the output projection can share the target embedding matrix
    (``tie_embeddings``); readout ``none`` feeds the features to the output layer as they
    are.
    """

    def __init__(self, params: RNNParams, src_vocab_size: int, tgt_vocab_size: int) -> None:
        super().__init__()
        self.params = params
        where = params.dropout_on
        self.encoder = Encoder(
            src_vocab_size,
            params.embedding_dim,
            params.hidden_dim,
            params.encoder_layers,
            params.bidirectional,
            params.dropout,
            params.cell,
            pad_id=PAD_ID,
            inputs=params.inputs,
            input_dropout=params.dropout if "source" in where else 0.0,
        )
        self.tgt_embedding = token_inputs(
            params.inputs, tgt_vocab_size, params.embedding_dim, PAD_ID
        )
        self.decoder = RNNDecoder(params, self.encoder.output_dim, self.tgt_embedding.embedding_dim)
        self.dropout = nn.Dropout(params.dropout if "target" in where else 0.0)
        self.readout_dropout = nn.Dropout(params.dropout if "readout" in where else 0.0)
        readout_dim = self.decoder.feature_dim
        if params.readout == "tanh":
            self.pre_output = nn.Linear(self.decoder.feature_dim, params.embedding_dim)
            readout_dim = params.embedding_dim
        if params.tie_embeddings and readout_dim != params.embedding_dim:
            raise ValueError(
                f"tie_embeddings needs the readout to be embedding_dim ({params.embedding_dim})"
                f" wide, not {readout_dim}: use readout: tanh"
            )
        self.generator = nn.Linear(readout_dim, tgt_vocab_size, bias=params.output_bias)
        if params.tie_embeddings:
            self.generator.weight = self.tgt_embedding.weight

    @property
    def has_attention(self) -> bool:
        return self.decoder.attention is not None

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        """src: (B, S) ids, src_lengths: (B,) -> encoder output with the decoder's keys."""
        if self.params.source_markers != "none":
            src, src_lengths = add_markers(src, src_lengths, self.params.source_markers)
        return self.decoder.prepare(self.encoder(src, src_lengths))

    def init_state(self, memory: EncoderOutput) -> RNNState:
        return self.decoder.init_state(memory)

    def readout(self, features: Tensor) -> Tensor:
        """features: (..., F) -> the output layer's input."""
        features = self.readout_dropout(features)
        if self.params.readout == "tanh":
            return torch.tanh(self.pre_output(features))
        return features

    def logits(self, features: Tensor) -> Tensor:
        return self.generator(self.readout(features))

    def decode_step(
        self, prev: Tensor, state: RNNState, memory: EncoderOutput
    ) -> tuple[Tensor, RNNState, Tensor | None]:
        readout, state, attn = self.readout_step(prev, state, memory)
        return self.generator(readout), state, attn

    def readout_step(
        self, prev: Tensor, state: RNNState, memory: EncoderOutput
    ) -> tuple[Tensor, RNNState, Tensor | None]:
        """:meth:`decode_step` short of the output layer: its input instead of logits."""
        feats, state, attn = self.decoder.step(
            self.dropout(self.tgt_embedding(prev)), state, memory
        )
        if attn is not None and self.params.source_markers != "none":
            # the weights on the sentence's own tokens, as the caller gave it (the markers'
            # share left out)
            first = 1 if self.params.source_markers == "sos_eos" else 0
            width = memory.mask.size(1) - (2 if first else 1)
            own = memory.mask[:, first + 1 : first + 1 + width]  # not a marker nor padding
            attn = attn[:, first : first + width] * own
        return self.readout(feats), state, attn

    def reorder_state(self, state: RNNState, index: Tensor) -> RNNState:
        return reorder_state(state, index)

    def features(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        from nmt.models.kernels import choose

        enc = self.encode(src, src_lengths)
        state = self.init_state(enc)
        emb = self.dropout(self.tgt_embedding(tgt_in))
        kernel = choose(self).unroll
        if kernel is not None:
            return kernel(self.decoder, emb, state, enc)
        return self.decoder.unroll(emb, state, enc)
