"""Params of the evaluate and compare stages (the ``evaluate:`` section)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from nmt.config.base import StrictModel, Threads


class ComparisonPair(StrictModel):
    """Two models (names under ``models:``) to compare: candidate against baseline."""

    baseline: str
    candidate: str

    @model_validator(mode="after")
    def _differ(self) -> ComparisonPair:
        if self.baseline == self.candidate:
            raise ValueError("baseline and candidate must be different models")
        return self


class CompareParams(StrictModel):
    """Paired bootstrap resampling; one ``compare@<name>`` stage per entry of ``pairs``."""

    search: Literal["greedy", "beam"] = "beam"
    resamples: int = Field(1000, ge=10)
    pairs: dict[str, ComparisonPair] = Field(
        default_factory=lambda: {
            "attention_vs_gru": ComparisonPair(baseline="gru", candidate="attention")
        }
    )

    @field_validator("pairs")
    @classmethod
    def _names(cls, v: dict[str, ComparisonPair]) -> dict[str, ComparisonPair]:
        for name in v:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                raise ValueError(f"{name!r}: pair names are letters, digits, '_', '.', '-'")
        return v


class EvaluateParams(StrictModel):
    """How test sets are decoded (greedy and beam search) and scored.

    The output for a source of n tokens is capped at
    ``ceil(max_length_ratio * n) + max_length_extra`` tokens. ``length_penalty`` is GNMT's
    alpha: beam hypotheses are ranked by log P / ((5 + |Y|) / 6) ** alpha.
    """

    beam_size: int = Field(5, ge=1, le=100)
    length_penalty: float = Field(1.0, ge=0.0)
    max_length_ratio: float = Field(2.0, gt=0.0)
    max_length_extra: int = Field(10, ge=0)
    # Hypotheses per batch. 192 measured 3-7% faster than 128 and 256 for greedy search
    # on 2 CPU cores (512: 10% slower), and the same for beam search.
    batch_size: int = Field(192, ge=1)
    # And at most this many source tokens per batch of hypotheses, padding included; null:
    # no cap. Keeps a test set's few long sentences from padding a whole batch.
    max_tokens: int | None = Field(6144, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: Threads = "auto"  # torch's CPU threads, as train.threads
    # Decode at most this many sentences of each test set (the first ones); null: all.
    max_sentences: int | None = Field(None, ge=1)
    # Attention heatmaps for this many held-out sentences (the first short ones).
    heatmaps: int = Field(4, ge=0, le=50)
    compare: CompareParams = CompareParams()
