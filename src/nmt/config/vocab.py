"""Params of the vocab stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nmt.config.base import StrictModel


class VocabParams(StrictModel):
    """Token vocabularies: word, character or subword (sentencepiece)."""

    kind: Literal["word", "char", "subword"] = "subword"
    joint: bool = True  # one vocabulary for both sides (subword) or one per side
    vocab_size: int = Field(8000, ge=16)  # subword only
    model_type: Literal["bpe", "unigram"] = "bpe"  # subword only
    character_coverage: float = Field(1.0, gt=0.9, le=1.0)  # subword only
    min_freq: int = Field(1, ge=1)  # word and char
    max_size: int | None = Field(None, ge=1)  # word and char; None: no cap
