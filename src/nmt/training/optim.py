"""Optimizers and learning-rate schedules."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, ReduceLROnPlateau

from nmt.config.train import LRScheduleParams, TrainParams

Scheduler = LRScheduler | ReduceLROnPlateau


def build_optimizer(model: nn.Module, params: TrainParams) -> Optimizer:
    """The optimizer named by ``params.optimizer`` over the model's trainable parameters."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    lr, wd = params.lr, params.weight_decay
    # The fused kernels (one pass over each tensor) run on CPU and CUDA alike.
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in trainable)
    if params.optimizer == "adam":
        return torch.optim.Adam(trainable, lr=lr, weight_decay=wd, fused=fused)
    if params.optimizer == "adamw":
        return torch.optim.AdamW(trainable, lr=lr, weight_decay=wd, fused=fused)
    if params.optimizer == "adagrad":
        return torch.optim.Adagrad(trainable, lr=lr, weight_decay=wd)
    if params.optimizer == "sgd":
        return torch.optim.SGD(trainable, lr=lr, momentum=params.momentum, weight_decay=wd)
    raise ValueError(f"unknown optimizer {params.optimizer!r}")


def warmup_factor(step: int, params: LRScheduleParams) -> float:
    """Multiplier of the base lr after ``step`` optimizer steps (``warmup`` schedule).

    Linear from 1/warmup to 1 over the first ``warmup_steps`` steps, then 1/sqrt decay
    (``inverse_sqrt``) or flat (``constant``).
    """
    w = params.warmup_steps
    step = step + 1  # LambdaLR calls with 0 before the first step
    if step <= w:
        return step / w
    return math.sqrt(w / step) if params.after_warmup == "inverse_sqrt" else 1.0


class _WarmupLambda:
    """The warm-up multiplier for LambdaLR; rebuilt from params on resume, never saved."""

    def __init__(self, params: LRScheduleParams) -> None:
        self.params = params

    def __call__(self, step: int) -> float:
        return warmup_factor(step, self.params)


def build_scheduler(optimizer: Optimizer, params: LRScheduleParams) -> Scheduler | None:
    """``plateau``: stepped once per epoch with the validation loss; ``warmup``: stepped
    after every optimizer step; ``none``: None."""
    if params.kind == "none":
        return None
    if params.kind == "plateau":
        return ReduceLROnPlateau(
            optimizer, mode="min", factor=params.factor, patience=params.patience,
            min_lr=params.min_lr,
        )  # fmt: skip
    if params.kind == "warmup":
        return LambdaLR(optimizer, _WarmupLambda(params))
    raise ValueError(f"unknown lr schedule {params.kind!r}")


def scheduler_state(scheduler: Scheduler | None) -> dict | None:
    """A weights_only-safe state dict (LambdaLR's lambdas are rebuilt from params)."""
    if scheduler is None:
        return None
    state = scheduler.state_dict()
    if isinstance(scheduler, LambdaLR):
        state = {k: v for k, v in state.items() if k != "lr_lambdas"}
    return state


def load_scheduler_state(scheduler: Scheduler | None, state: dict | None) -> None:
    if scheduler is None or state is None:
        return
    if isinstance(scheduler, LambdaLR):
        state = {**state, "lr_lambdas": [None] * len(scheduler.lr_lambdas)}
    scheduler.load_state_dict(state)


def current_lr(optimizer: Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])
