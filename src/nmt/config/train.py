"""Params of the train stage (shared by every model in ``models:``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nmt.config.base import StrictModel


class TeacherForcingParams(StrictModel):
    """Probability of feeding the reference token (rather than the model's own guess)."""

    ratio: float = Field(1.0, ge=0.0, le=1.0)
    mode: Literal["token", "sequence"] = "token"
    schedule: Literal["constant", "linear", "exponential", "inverse_sigmoid"] = "constant"
    min_ratio: float = Field(0.0, ge=0.0, le=1.0)
    decay: float = Field(0.9, gt=0.0)  # per epoch; meaning depends on the schedule


class TrainParams(StrictModel):
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    epochs: int = Field(10, ge=1)
    batch_tokens: int = Field(2000, ge=1)
    optimizer: Literal["adam", "adamw", "adagrad", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    clip_grad_norm: float | None = Field(1.0, gt=0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    teacher_forcing: TeacherForcingParams = TeacherForcingParams()
