"""The encoder-decoder: embeddings, encoder, decoder, and the output layers shared by
training (all steps at once) and search (one step at a time)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.config.model import ModelParams
from nmt.models.decoder import (
    BahdanauDecoder,
    LuongDecoder,
    PlainDecoder,
    RNNDecoder,
    reorder_state,
)
from nmt.models.encoder import Encoder, EncoderOutput, RNNState
from nmt.models.recurrence import tanh_grad

PAD_ID = 0


class Seq2Seq(nn.Module):
    """Encoder + decoder + pre-output (tanh) + output projection.

    The pre-output layer maps decoder features to the embedding size, so the output
    projection can share the target embedding matrix (``tie_embeddings``).
    """

    def __init__(self, params: ModelParams, src_vocab_size: int, tgt_vocab_size: int) -> None:
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
        self.decoder = _build_decoder(params, self.encoder.output_dim)
        self.dropout = nn.Dropout(params.dropout)
        self.pre_output = nn.Linear(self.decoder.feature_dim, params.embedding_dim)
        self.generator = nn.Linear(params.embedding_dim, tgt_vocab_size, bias=False)
        if params.tie_embeddings:
            self.generator.weight = self.tgt_embedding.weight

    # -- building blocks used by training and search ---------------------------------

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        """src: (B, S) ids, src_lengths: (B,) -> encoder output with decoder keys."""
        return self.decoder.prepare(self.encoder(src, src_lengths))

    def init_state(self, enc: EncoderOutput) -> RNNState:
        return self.decoder.init_state(enc)

    def logits(self, features: Tensor) -> Tensor:
        """features: (..., F) -> logits (..., V)."""
        return self.generator(self.readout(features))

    def readout(self, features: Tensor) -> Tensor:
        """features: (..., F) -> the generator's input (..., E), each value in [-1, 1]."""
        return tanh_grad(self.pre_output(self.dropout(features)))

    def decode_step(
        self, prev: Tensor, state: RNNState, enc: EncoderOutput
    ) -> tuple[Tensor, RNNState, Tensor | None]:
        """prev: (B,) previous tokens -> logits (B, V), new state, attention (B, S) or None."""
        feats, state, attn = self._step(prev, state, enc)
        return self.logits(feats), state, attn

    def decode_step_readout(
        self, prev: Tensor, state: RNNState, enc: EncoderOutput
    ) -> tuple[Tensor, RNNState, Tensor | None]:
        """:meth:`decode_step` short of the generator: the readout (B, E) instead of logits."""
        feats, state, attn = self._step(prev, state, enc)
        return self.readout(feats), state, attn

    def _step(
        self, prev: Tensor, state: RNNState, enc: EncoderOutput
    ) -> tuple[Tensor, RNNState, Tensor | None]:
        return self.decoder.step(self.dropout(self.tgt_embedding(prev)), state, enc)

    def reorder(
        self, state: RNNState, enc: EncoderOutput, index: Tensor
    ) -> tuple[RNNState, EncoderOutput]:
        """Take batch rows ``index`` (B',) of the state and encoder output (beam search)."""
        return reorder_state(state, index), enc.index_select(index)

    # -- training ----------------------------------------------------------------------

    def forward(
        self,
        src: Tensor,
        src_lengths: Tensor,
        tgt_in: Tensor,
        teacher_forcing: float = 1.0,
        tf_mode: str = "token",
    ) -> Tensor:
        """Logits (B, T, V) for decoder inputs tgt_in: (B, T) (``<sos>`` + target).

        With ``teacher_forcing`` < 1, each input after the first is the reference token
        with that probability, else the model's own previous argmax (scheduled sampling,
        Bengio et al. 2015), drawn per token or per sequence (``tf_mode``). With 1.0 the
        reference is fed throughout and the decoder takes its fast path: the output
        layers run once over all steps, and parallel decoders unroll in one call.
        """
        if teacher_forcing >= 1.0:
            return self.logits(self.features(src, src_lengths, tgt_in))
        enc = self.encode(src, src_lengths)
        state = self.init_state(enc)
        return self._forward_sampled(tgt_in, state, enc, teacher_forcing, tf_mode)

    def features(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Decoder features (B, T, F) under full teacher forcing; ``logits`` maps them.

        Training selects the features of real target positions before ``logits``, so the
        output projection (the largest matmul) never runs over padding.
        """
        enc = self.encode(src, src_lengths)
        state = self.init_state(enc)
        emb = self.dropout(self.tgt_embedding(tgt_in))
        return self.decoder.unroll(emb, state, enc)

    def _forward_sampled(
        self, tgt_in: Tensor, state: RNNState, enc: EncoderOutput, ratio: float, mode: str
    ) -> Tensor:
        b, t_len = tgt_in.shape
        if mode == "sequence":
            use_ref = (torch.rand(b, 1, device=tgt_in.device) < ratio).expand(b, t_len)
        elif mode == "token":
            use_ref = torch.rand(b, t_len, device=tgt_in.device) < ratio
        else:
            raise ValueError(f"unknown teacher-forcing mode {mode!r}")
        prev = tgt_in[:, 0]
        out = []
        for t in range(t_len):
            logits, state, _ = self.decode_step(prev, state, enc)
            out.append(logits)
            if t + 1 < t_len:
                guess = logits.detach().argmax(dim=-1)
                prev = torch.where(use_ref[:, t + 1], tgt_in[:, t + 1], guess)
        return torch.stack(out, dim=1)


def _build_decoder(params: ModelParams, memory_dim: int) -> RNNDecoder:
    args = (
        params.cell,
        params.embedding_dim,
        params.hidden_dim,
        memory_dim,
        params.decoder_layers,
        params.dropout,
    )
    if params.attention == "none":
        return PlainDecoder(*args)
    if params.attention == "bahdanau":
        return BahdanauDecoder(*args)
    return LuongDecoder(*args, score=params.attention)


def build_model(params: ModelParams, src_vocab_size: int, tgt_vocab_size: int) -> Seq2Seq:
    """The model described by ``params`` for the given vocabulary sizes."""
    return Seq2Seq(params, src_vocab_size, tgt_vocab_size)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, each shared tensor counted once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
