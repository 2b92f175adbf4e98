"""Device and precision, resolved once at the entry point.

Library code receives the :class:`torch.device` and the autocast dtype chosen here and
never asks again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Literal

import torch

DeviceName = Literal["auto", "cpu", "cuda"]
PrecisionName = Literal["auto", "fp32", "bf16"]


class DeviceError(RuntimeError):
    """The requested device or precision is not available here."""


def resolve_device(name: str, cuda_available: Callable[[], bool] | None = None) -> torch.device:
    """``auto``: CUDA when present, else CPU; ``cuda`` without a GPU is an error."""
    has_cuda = (cuda_available or torch.cuda.is_available)()
    if name == "auto":
        return torch.device("cuda" if has_cuda else "cpu")
    if name == "cuda":
        if not has_cuda:
            raise DeviceError("device 'cuda' was asked for but no CUDA device is available")
        return torch.device("cuda")
    if name == "cpu":
        return torch.device("cpu")
    raise DeviceError(f"unknown device {name!r} (expected auto, cpu or cuda)")


def resolve_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32.

    ``auto``: bf16 autocast on CUDA (when the GPU supports it), fp32 on CPU, where bf16
    pays only on processors with bf16 instructions; ``bf16`` asks for it on either.
    """
    if name == "fp32":
        return None
    if name == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise DeviceError("train.precision is 'bf16' but this GPU does not support bf16")
        return torch.bfloat16
    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None
    raise DeviceError(f"unknown precision {name!r} (expected auto, fp32 or bf16)")


def autocast(
    device: torch.device, dtype: torch.dtype | None
) -> contextlib.AbstractContextManager[object]:
    """An autocast context for ``dtype`` on ``device``; a no-op context for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def describe(device: torch.device, dtype: torch.dtype | None) -> str:
    """E.g. ``cpu/fp32`` or ``cuda/bf16``: for logs and metrics."""
    return f"{device.type}/{'fp32' if dtype is None else str(dtype).removeprefix('torch.')}"
