"""Params of one model (an entry of ``models:`` in params.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nmt.config.base import StrictModel


class ModelParams(StrictModel):
    """Architecture of an encoder-decoder; saved inside every checkpoint."""

    cell: Literal["gru", "lstm", "rnn"] = "gru"
    embedding_dim: int = Field(256, ge=1)
    hidden_dim: int = Field(256, ge=1)
    encoder_layers: int = Field(1, ge=1)
    decoder_layers: int = Field(1, ge=1)
    bidirectional: bool = True
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    # none: the context is the encoder's final state (Sutskever/Cho);
    # bahdanau: additive; dot / general: Luong's multiplicative scores.
    attention: Literal["none", "bahdanau", "dot", "general"] = "bahdanau"
    tie_embeddings: bool = False
