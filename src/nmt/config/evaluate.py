"""Params of the evaluate stage."""

from __future__ import annotations

from pydantic import Field

from nmt.config.base import StrictModel


class EvaluateParams(StrictModel):
    beam_size: int = Field(5, ge=1)
    length_penalty: float = Field(1.0, ge=0.0)
    max_length_ratio: float = Field(2.0, gt=0.0)
    batch_size: int = Field(64, ge=1)
