"""Encoder-decoder models behind one contract (:class:`~nmt.models.base.Seq2SeqModel`),
built from their params by a registry of architectures.

A new architecture is its module, its params class in :mod:`nmt.config.model` (with its
``arch`` name in the :data:`~nmt.config.model.ModelParams` union) and an entry in
:data:`ARCHITECTURES`.
"""

from __future__ import annotations

from collections.abc import Callable

from nmt.config.model import ModelParams, RNNParams, TransformerParams
from nmt.models.base import Memory, SearchStep, Seq2SeqModel, State, count_parameters
from nmt.models.rnn import RNNSeq2Seq
from nmt.models.transformer import Transformer

#: ``arch`` -> (params class, model class taking (params, src vocab size, tgt vocab size))
ARCHITECTURES: dict[str, tuple[type, Callable[..., Seq2SeqModel]]] = {
    "rnn": (RNNParams, RNNSeq2Seq),
    "transformer": (TransformerParams, Transformer),
}


def build_model(params: ModelParams, src_vocab_size: int, tgt_vocab_size: int) -> Seq2SeqModel:
    """The model described by ``params`` for the given vocabulary sizes."""
    params_cls, model_cls = ARCHITECTURES[params.arch]
    if not isinstance(params, params_cls):
        raise TypeError(f"arch {params.arch!r} wants {params_cls.__name__}, got {type(params)}")
    return model_cls(params, src_vocab_size, tgt_vocab_size)


__all__ = [
    "ARCHITECTURES",
    "Memory",
    "SearchStep",
    "Seq2SeqModel",
    "State",
    "build_model",
    "count_parameters",
]
