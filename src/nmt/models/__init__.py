"""Encoder-decoder models: a recurrent encoder, plain / Bahdanau / Luong decoders."""

from nmt.models.encoder import Encoder, EncoderOutput, RNNState
from nmt.models.search_step import FoldedStep, SearchStep
from nmt.models.seq2seq import PAD_ID, Seq2Seq, build_model, count_parameters

__all__ = [
    "PAD_ID",
    "Encoder",
    "EncoderOutput",
    "FoldedStep",
    "RNNState",
    "SearchStep",
    "Seq2Seq",
    "build_model",
    "count_parameters",
]
