"""Encoder-decoder models: a recurrent encoder, plain / Bahdanau / Luong decoders."""

from nmt.models.encoder import Encoder, EncoderOutput, RNNState
from nmt.models.seq2seq import PAD_ID, Seq2Seq, build_model, count_parameters

__all__ = [
    "PAD_ID",
    "Encoder",
    "EncoderOutput",
    "RNNState",
    "Seq2Seq",
    "build_model",
    "count_parameters",
]
