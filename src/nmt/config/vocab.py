"""Params of the vocab stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nmt.config.base import StrictModel


class VocabParams(StrictModel):
    """Token vocabularies: word, character or subword (sentencepiece)."""

    kind: Literal["word", "char", "subword"] = "subword"
    joint: bool = True  # one vocabulary built from both sides, or one per side
    vocab_size: int = Field(8000, ge=16)  # subword only; specials included
    model_type: Literal["bpe", "unigram"] = "bpe"  # subword only
    character_coverage: float = Field(1.0, gt=0.9, le=1.0)  # subword only
    # subword only: train on a seeded random sample of at most this many sentences
    # (per model); None: all of them. Caps sentencepiece's memory on a large corpus.
    max_sentences: int | None = Field(None, gt=100)  # sentencepiece's own lower bound
    min_freq: int = Field(1, ge=1)  # word and char
    max_size: int | None = Field(None, ge=5)  # word and char; specials included; None: no cap
