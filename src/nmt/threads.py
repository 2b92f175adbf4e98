"""How many threads torch computes with on a CPU, and how its OpenMP threads wait.

PyTorch's CPU kernels run on OpenMP threads (GNU libgomp in the PyPI wheels). Between two
parallel ops a thread spins before it sleeps: by default for about 300,000 iterations,
a few milliseconds. On cores of its own that is the fastest way to wait; on cores shared
with another CPU-bound job it is the slowest, because a thread spins on a core while the
thread it waits for is descheduled, and the step stalls until both hold a core at once.
Sleeping at once (``OMP_WAIT_POLICY=PASSIVE``) makes every parallel op pay a wake-up.
:func:`bound_openmp_spin` sets a short spin (:data:`SPIN_COUNT` iterations), which keeps
nearly all of the quiet speed and most of a fair share on a shared CPU; docs/speed.md has
the figures of each choice.

libgomp reads its settings once, when torch loads it, so :func:`bound_openmp_spin` must
run before ``import torch``; ``import nmt`` runs it. The thread count can change at any
time (:func:`use_threads`). It is not chosen from the machine's load: the number of
threads changes how sums are split, hence the last bits of every result, and the same
params on the same data must give the same metrics whatever else runs beside them.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Literal

# libgomp's iterations of its spin loop before a waiting thread sleeps, when neither
# variable below is set. Chosen with benchmarks/bench_threads.py (docs/speed.md).
SPIN_COUNT = 5000
OPENMP_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")

Threads = Literal["auto"] | int


def bound_openmp_spin(environ: MutableMapping[str, str] | None = None) -> None:
    """Set ``GOMP_SPINCOUNT`` to :data:`SPIN_COUNT` unless the environment already says how
    OpenMP threads wait (``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``: the user's choice wins).

    Only a process that has not loaded torch yet is affected, and the processes it starts.
    """
    environ = os.environ if environ is None else environ
    if not any(name in environ for name in OPENMP_VARIABLES):
        environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)


def describe_openmp_wait(
    environ: MutableMapping[str, str] | None = None, torch_loaded_first: bool = False
) -> str:
    """How this process's OpenMP threads wait, for metrics and logs, e.g. ``GOMP_SPINCOUNT=5000``
    or ``OMP_WAIT_POLICY=PASSIVE``; libgomp's default where neither is set."""
    if torch_loaded_first:
        return "unknown (torch was loaded before nmt)"
    environ = os.environ if environ is None else environ
    set_vars = [f"{name}={environ[name]}" for name in OPENMP_VARIABLES if name in environ]
    return ", ".join(set_vars) or "libgomp default"


def _cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The CPUs a cgroup quota allows (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``);
    None without a quota."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """The CPUs this process may run on: its affinity mask (``taskset``, a container's
    cpuset), capped by a cgroup CPU quota (``docker --cpus``, a CI runner's limit)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    limit = _cgroup_cpu_limit(cgroup_root)
    if limit is not None:
        cpus = min(cpus, max(1, math.ceil(limit)))
    return max(1, cpus)


def resolve_threads(setting: Threads, param: str = "threads") -> int:
    """``auto``: :func:`available_cpus`; else the number given (``param`` names it in errors)."""
    if setting == "auto":
        return available_cpus()
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise ValueError(f"{param} must be 'auto' or a whole number >= 1, not {setting!r}")
    return setting


def use_threads(setting: Threads, param: str = "threads") -> dict[str, int | str]:
    """Make torch compute with :func:`resolve_threads` threads; returns what is in effect,
    ``{"threads": n, "omp_wait": ...}``, for the metrics."""
    import torch  # not at module level: bound_openmp_spin must be importable before torch

    count = resolve_threads(setting, param)
    torch.set_num_threads(count)
    return {"threads": count, "omp_wait": describe_openmp_wait(torch_loaded_first=_TORCH_FIRST)}


_TORCH_FIRST = False


def _at_package_import() -> None:
    """Called once by ``import nmt``: bound the spin if torch is not loaded yet, and
    remember whether it was (then its OpenMP settings were fixed before nmt could act)."""
    global _TORCH_FIRST
    _TORCH_FIRST = "torch" in sys.modules
    bound_openmp_spin()
