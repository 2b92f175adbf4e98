"""What every benchmark prints first: the CPU, the vector and matrix extensions that
PyTorch finds on it and its measured matmul peak, so that a figure can be read against
the machine that gave it.

    python benchmarks/machine.py        # the same lines on their own
"""

from __future__ import annotations

import nmt  # noqa: F401  (first: it sets how OpenMP threads wait, before torch loads them)

# isort: split

import contextlib
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch

from nmt.threads import describe_openmp_wait

# (name printed, torch's probe): what PyTorch, oneDNN and MKL can use here
EXTENSIONS = (
    ("AVX2", "_is_avx2_supported"),
    ("AVX-512", "_is_avx512_supported"),
    ("AVX-512 VNNI", "_is_vnni_supported"),
    ("AVX-512 BF16", "_is_avx512_bf16_supported"),
    ("AMX", "_is_amx_tile_supported"),
)
# An AVX2-only CPU approximated on a newer one: PyTorch's kernels, oneDNN and MKL capped.
AVX2_ONLY = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
}


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_extensions() -> list[str]:
    """The extensions of :data:`EXTENSIONS` this CPU has, as torch's probes report them."""
    found = []
    for name, probe in EXTENSIONS:
        check = getattr(torch.cpu, probe, None)
        if check is not None and check():
            found.append(name)
    return found


def native_bf16(extensions: list[str], environ: Mapping[str, str] = os.environ) -> bool:
    """Whether bf16 products run in hardware (else they are emulated, far below fp32): the
    CPU has the instructions and ``ONEDNN_MAX_CPU_ISA`` does not cap oneDNN below them
    (e.g. ``AVX2``, as when an AVX2-only CPU is approximated)."""
    cap = environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    capped = bool(cap) and not any(tag in cap for tag in ("BF16", "AMX", "AVX10", "ALL", "DEFAULT"))
    return not capped and ("AVX-512 BF16" in extensions or "AMX" in extensions)


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5, device: str = "cpu") -> float:
    """Best FLOP/s of an n x n x n matmul in ``dtype`` on ``device`` over ``repeats`` timed
    runs (on CUDA each waits for the GPU to finish)."""
    a, b = (torch.randn(n, n).to(device=device, dtype=dtype) for _ in range(2))
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    a @ b
    sync()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def cuda_peaks() -> dict[str, float | None]:
    """The GPU's measured fp32 and bf16 matmul peaks (8192^3; fp32 without TF32, as
    torch multiplies by default), after printing its name."""
    props = torch.cuda.get_device_properties(0)
    peaks: dict[str, float | None] = {
        name: matmul_peak(dtype, 8192, device="cuda")
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))
    }
    print(
        f"GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB, {torch.cuda.device_count()} "
        f"device(s); CUDA {torch.version.cuda}; matmul peak (8192^3): fp32 "
        f"{peaks['fp32'] / 1e12:,.1f} TFLOP/s, bf16 {peaks['bf16'] / 1e12:,.1f} TFLOP/s",
        flush=True,
    )
    return peaks


def describe_machine(threads: int | None = None) -> tuple[list[str], dict[str, float | None]]:
    """The lines to print and the peaks (FLOP/s) by dtype name; bf16's is None, and not
    measured, on a CPU without bf16 instructions (an emulated 2048^3 product takes
    minutes there)."""
    if threads is not None:
        torch.set_num_threads(threads)
    extensions = cpu_extensions()
    peaks: dict[str, float | None] = {"fp32": matmul_peak(torch.float32), "bf16": None}
    if native_bf16(extensions):
        peaks["bf16"] = matmul_peak(torch.bfloat16)
    bf16 = (
        f"bf16 {peaks['bf16'] / 1e9:,.0f} GFLOP/s"
        if peaks["bf16"] is not None
        else "bf16 not measured (no bf16 instructions: emulated, far slower than fp32)"
    )
    lines = [
        f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs, {torch.get_num_threads()} torch "
        f"threads; PyTorch kernels {torch.backends.cpu.get_cpu_capability()}",
        f"extensions: {', '.join(extensions) or 'none of ' + ', '.join(n for n, _ in EXTENSIONS)}",
        f"matmul peak (2048^3): fp32 {peaks['fp32'] / 1e9:,.0f} GFLOP/s, {bf16}",
        f"OpenMP threads wait: {describe_openmp_wait()}",
    ]
    return lines, peaks


def print_machine(threads: int | None = None) -> dict[str, float | None]:
    """Print :func:`describe_machine`'s lines; return its peaks."""
    lines, peaks = describe_machine(threads)
    for line in lines:
        print(line, flush=True)
    return peaks


# A CPU-bound competitor: pure Python arithmetic at a niceness, until terminated.
_SPIN = """
import os, sys
os.nice(int(sys.argv[1]))
x = 0
while True:
    x = (x * 1103515245 + 12345) % 2147483648
"""


def autogroup() -> bool | None:
    """Whether the kernel groups processes by session for scheduling (Linux autogroup):
    then niceness orders processes within a session only, and a job started from another
    terminal or by another service gets an equal share whatever its niceness. None where
    the kernel does not say."""
    try:
        return Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        return None


@contextlib.contextmanager
def competitors(n: int, niceness: int = 19, own_session: bool = True) -> Iterator[None]:
    """``n`` CPU-bound processes at ``niceness`` (19: the lowest priority) for the
    duration of the block, as other jobs on a shared machine; stopped on the way out.

    ``own_session``: each in a session of its own, like a job started from another
    terminal, by cron or by a CI runner (under autogroup its niceness then counts for
    nothing against the benchmark); else in the benchmark's session.
    """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SPIN, str(niceness)], start_new_session=own_session
        )
        for _ in range(n)
    ]
    try:
        time.sleep(0.5 if n else 0.0)  # running before the timing starts
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait()


def describe_competitors(n: int, niceness: int, own_session: bool) -> str:
    """What :func:`competitors` starts, in words, with the scheduler's grouping."""
    where = "each in its own session" if own_session else "in the benchmark's session"
    group = {True: "autogroup on", False: "autogroup off", None: "autogroup unknown"}
    return f"{n} CPU-bound process(es) at nice {niceness}, {where} ({group[autogroup()]})"


if __name__ == "__main__":
    print_machine()
