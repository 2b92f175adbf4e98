"""Device and precision, resolved once at the entry point.

Library code receives the :class:`torch.device` and the autocast dtype chosen here and
never asks again.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, MutableMapping
from typing import Literal

import torch

DeviceName = Literal["auto", "cpu", "cuda"]
PrecisionName = Literal["auto", "fp32", "bf16"]


class DeviceError(RuntimeError):
    """The requested device or precision is not available here."""


# cuBLAS reduces in a fixed order only with a workspace of its own per stream; it reads
# this when it first starts, so it must be set before the first CUDA product.
CUBLAS_WORKSPACE_CONFIG = ":4096:8"


def resolve_device(
    name: str,
    cuda_available: Callable[[], bool] | None = None,
    *,
    deterministic: bool = False,
) -> torch.device:
    """``auto``: CUDA when present, else CPU; ``cuda`` without a GPU is an error.

    ``deterministic`` (``train.deterministic``): on CUDA, :func:`use_deterministic` before
    any CUDA work, so that the same params and data give the same weights there too. On
    CPU it changes nothing: the CPU paths are deterministic already.
    """
    has_cuda = (cuda_available or torch.cuda.is_available)()
    if name == "auto":
        device = torch.device("cuda" if has_cuda else "cpu")
    elif name == "cuda":
        if not has_cuda:
            raise DeviceError("device 'cuda' was asked for but no CUDA device is available")
        device = torch.device("cuda")
    elif name == "cpu":
        device = torch.device("cpu")
    else:
        raise DeviceError(f"unknown device {name!r} (expected auto, cpu or cuda)")
    if deterministic and device.type == "cuda":
        use_deterministic()
    return device


def use_deterministic(environ: MutableMapping[str, str] = os.environ) -> dict[str, object]:
    """Deterministic CUDA kernels: torch's deterministic algorithms (an op without one
    raises instead of running), cuDNN's deterministic choices without autotuning
    (``benchmark`` picks kernels by timing), and cuBLAS's fixed workspace
    (``CUBLAS_WORKSPACE_CONFIG``, unless already set). Returns :func:`determinism`."""
    environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return determinism(environ)


def determinism(environ: MutableMapping[str, str] = os.environ) -> dict[str, object]:
    """The settings in force, for logs and metrics."""
    return {
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cublas_workspace_config": environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (AVX-512 BF16 or AMX tiles).

    Without either, bf16 matmuls fall back to a software path far slower than fp32. Where
    this torch build cannot tell, the answer is True (nothing is refused on a guess).
    """
    probes = [
        getattr(torch.cpu, name, None)
        for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    ]
    known = [probe for probe in probes if probe is not None]
    return not known or any(probe() for probe in known)


def resolve_precision(
    name: str,
    device: torch.device,
    cpu_bf16: Callable[[], bool] | None = None,
    param: str = "train.precision",
) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32.

    ``auto``: bf16 autocast on CUDA (when the GPU supports it), fp32 on CPU, where bf16
    pays only on processors with bf16 instructions; ``bf16`` asks for it on either, and is
    refused on a CPU without bf16 instructions (``cpu_bf16``, default :func:`cpu_has_bf16`)
    rather than run many times slower than fp32 or silently changed to fp32. ``param``
    names the setting in errors.
    """
    if name == "fp32":
        return None
    if name == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise DeviceError(f"{param} is 'bf16' but this GPU does not support bf16")
        if device.type == "cpu" and not (cpu_bf16 or cpu_has_bf16)():
            capability = torch.backends.cpu.get_cpu_capability()
            raise DeviceError(
                f"{param} is 'bf16' but this CPU ({capability}) has no bf16 instructions "
                "(AVX-512 BF16 or AMX): bf16 would be emulated, many times slower than "
                f"fp32. Set {param} to fp32 or auto."
            )
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
