"""The recurrent encoder-decoder (``arch: rnn``): embeddings, a recurrent encoder, the
decoder assembled from params (:class:`~nmt.models.decoder.RNNDecoder`), a readout and the
output layer."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.config.model import RNNParams
from nmt.models.base import Seq2SeqModel
from nmt.models.decoder import RNNDecoder, reorder_state
from nmt.models.encoder import Encoder, EncoderOutput, RNNState
from nmt.specials import PAD_ID


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
        self.encoder = Encoder(
            src_vocab_size,
            params.embedding_dim,
            params.hidden_dim,
            params.encoder_layers,
            params.bidirectional,
            params.dropout,
            params.cell,
            pad_id=PAD_ID,
        )
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, params.embedding_dim, padding_idx=PAD_ID)
        self.decoder = RNNDecoder(params, self.encoder.output_dim)
        self.dropout = nn.Dropout(params.dropout)
        readout_dim = self.decoder.feature_dim
        if params.readout == "tanh":
            self.pre_output = nn.Linear(self.decoder.feature_dim, params.embedding_dim)
            readout_dim = params.embedding_dim
        if params.tie_embeddings and readout_dim != params.embedding_dim:
            raise ValueError(
                f"tie_embeddings needs the readout to be embedding_dim ({params.embedding_dim})"
                f" wide, not {readout_dim}: use readout: tanh"
            )
        self.generator = nn.Linear(readout_dim, tgt_vocab_size, bias=False)
        if params.tie_embeddings:
            self.generator.weight = self.tgt_embedding.weight

    @property
    def has_attention(self) -> bool:
        return self.decoder.attention is not None

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        """src: (B, S) ids, src_lengths: (B,) -> encoder output with the decoder's keys."""
        return self.decoder.prepare(self.encoder(src, src_lengths))

    def init_state(self, memory: EncoderOutput) -> RNNState:
        return self.decoder.init_state(memory)

    def readout(self, features: Tensor) -> Tensor:
        """features: (..., F) -> the output layer's input."""
        features = self.dropout(features)
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
