"""benchmarks/machine.py: what every benchmark prints about its machine first."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
# importable by name, as the benchmarks import it: spawned competitors import it again
sys.path.insert(0, str(ROOT / "benchmarks"))
machine = importlib.import_module("machine")


def _probes(monkeypatch, present: set[str]) -> None:
    for name, probe in machine.EXTENSIONS:
        monkeypatch.setattr(torch.cpu, probe, lambda name=name: name in present, raising=False)


def test_extensions_are_what_torch_probes_report(monkeypatch):
    _probes(monkeypatch, {"AVX2", "AVX-512 BF16"})
    assert machine.cpu_extensions() == ["AVX2", "AVX-512 BF16"]
    assert machine.native_bf16(["AVX2", "AMX"]) and not machine.native_bf16(["AVX2"])


def test_a_cpu_without_bf16_gets_no_bf16_peak_and_says_why(monkeypatch):
    _probes(monkeypatch, {"AVX2"})
    measured = []
    monkeypatch.setattr(machine, "matmul_peak", lambda dtype: measured.append(dtype) or 1e11)
    lines, peaks = machine.describe_machine()
    assert measured == [torch.float32]  # an emulated bf16 product would take minutes
    assert peaks == {"fp32": 1e11, "bf16": None}
    assert lines[1] == "extensions: AVX2"
    assert lines[2] == (
        "matmul peak (2048^3): fp32 100 GFLOP/s, bf16 not measured "
        "(no bf16 instructions: emulated, far slower than fp32)"
    )
    assert lines[0].startswith("CPU: ") and "torch threads" in lines[0]


def test_a_cpu_with_bf16_gets_both_peaks(monkeypatch):
    _probes(monkeypatch, {"AVX2", "AVX-512", "AVX-512 BF16"})
    monkeypatch.setattr(
        machine, "matmul_peak", lambda dtype: 4e11 if dtype == torch.bfloat16 else 1e11
    )
    lines, peaks = machine.describe_machine()
    assert peaks == {"fp32": 1e11, "bf16": 4e11}
    assert lines[2] == "matmul peak (2048^3): fp32 100 GFLOP/s, bf16 400 GFLOP/s"


def test_the_matmul_peak_is_a_positive_rate():
    assert machine.matmul_peak(torch.float32, n=64, repeats=2) > 0


def _children(monkeypatch) -> list:
    """The competitors' Popen objects, as machine.competitors makes them."""
    made = []
    popen = machine.subprocess.Popen

    def record(*args, **kwargs):
        made.append(popen(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(machine.subprocess, "Popen", record)
    return made


@pytest.mark.parametrize("own_session", [True, False])
def test_competitors_run_during_the_block_and_stop_after_it(monkeypatch, own_session):
    made = _children(monkeypatch)
    with machine.competitors(2, niceness=19, own_session=own_session):
        assert len(made) == 2 and all(p.poll() is None for p in made)
        for proc in made:
            assert os.getpriority(os.PRIO_PROCESS, proc.pid) == 19
            assert (os.getsid(proc.pid) == proc.pid) is own_session  # a session's leader
    assert all(p.poll() is not None for p in made)


def test_describe_competitors_names_the_session_and_autogroup(monkeypatch):
    monkeypatch.setattr(machine, "autogroup", lambda: True)
    assert machine.describe_competitors(1, 19, True) == (
        "1 CPU-bound process(es) at nice 19, each in its own session (autogroup on)"
    )
    monkeypatch.setattr(machine, "autogroup", lambda: None)
    assert machine.describe_competitors(2, 0, False).endswith(
        "in the benchmark's session (autogroup unknown)"
    )


def test_the_machine_lines_say_how_openmp_threads_wait(monkeypatch):
    monkeypatch.setattr(machine, "matmul_peak", lambda dtype: 1e11)
    lines, _ = machine.describe_machine()
    assert lines[3].startswith("OpenMP threads wait: ")


def test_bf16_is_not_native_where_onednn_is_capped_below_it():
    assert machine.native_bf16(["AVX2", "AMX"], {})
    assert not machine.native_bf16(["AVX2", "AMX"], {"ONEDNN_MAX_CPU_ISA": "AVX2"})
    assert not machine.native_bf16(["AVX-512 BF16"], {"ONEDNN_MAX_CPU_ISA": "avx512_core"})
    assert machine.native_bf16(["AMX"], {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"})
    assert not machine.native_bf16(["AVX2"], {})
