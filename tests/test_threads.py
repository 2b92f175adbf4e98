"""nmt.threads: the CPU thread count and how OpenMP threads wait."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nmt import threads
from nmt.config import ParamsError, TrainParams, load_params
from nmt.config.evaluate import EvaluateParams

ROOT = Path(__file__).resolve().parents[1]


def test_bound_openmp_spin_sets_the_short_spin_only_where_the_user_said_nothing() -> None:
    env: dict[str, str] = {}
    threads.bound_openmp_spin(env)
    assert env == {"GOMP_SPINCOUNT": str(threads.SPIN_COUNT)}
    for name, value in (("OMP_WAIT_POLICY", "PASSIVE"), ("GOMP_SPINCOUNT", "123")):
        env = {name: value}
        threads.bound_openmp_spin(env)
        assert env == {name: value}


def test_describe_openmp_wait() -> None:
    assert threads.describe_openmp_wait({}) == "libgomp default"
    assert threads.describe_openmp_wait({"GOMP_SPINCOUNT": "5000"}) == "GOMP_SPINCOUNT=5000"
    both = {"GOMP_SPINCOUNT": "7", "OMP_WAIT_POLICY": "PASSIVE"}
    assert threads.describe_openmp_wait(both) == "OMP_WAIT_POLICY=PASSIVE, GOMP_SPINCOUNT=7"
    assert threads.describe_openmp_wait({}, torch_loaded_first=True).startswith("unknown")


def _cgroup_v2(root: Path, cpu_max: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cpu.max").write_text(cpu_max + "\n")
    return root


def test_cgroup_quota_v2_and_v1(tmp_path: Path) -> None:
    assert threads._cgroup_cpu_limit(_cgroup_v2(tmp_path / "a", "max 100000")) is None
    assert threads._cgroup_cpu_limit(_cgroup_v2(tmp_path / "b", "150000 100000")) == 1.5
    v1 = tmp_path / "c" / "cpu"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert threads._cgroup_cpu_limit(tmp_path / "c") == 3.0
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    assert threads._cgroup_cpu_limit(tmp_path / "c") is None
    assert threads._cgroup_cpu_limit(tmp_path / "nothing") is None


def test_available_cpus_is_the_affinity_capped_by_the_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert threads.available_cpus(tmp_path / "none") == 4
    assert threads.available_cpus(_cgroup_v2(tmp_path / "q25", "250000 100000")) == 3
    assert threads.available_cpus(_cgroup_v2(tmp_path / "q01", "10000 100000")) == 1
    assert threads.available_cpus(_cgroup_v2(tmp_path / "q8", "800000 100000")) == 4


def test_resolve_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "available_cpus", lambda: 3)
    assert threads.resolve_threads("auto") == 3
    assert threads.resolve_threads(5) == 5
    for bad in (0, True, "2", 1.0):
        with pytest.raises(ValueError, match="train.threads must be 'auto'"):
            threads.resolve_threads(bad, "train.threads")  # type: ignore[arg-type]


def test_use_threads_sets_torch_and_reports_it(one_thread: None) -> None:
    used = threads.use_threads(2)
    assert torch.get_num_threads() == 2
    assert used["threads"] == 2 and isinstance(used["omp_wait"], str)


def test_threads_params(tmp_path: Path) -> None:
    assert TrainParams().threads == "auto" and EvaluateParams().threads == "auto"
    assert TrainParams(threads=1).threads == 1
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  threads: 0\n")
    with pytest.raises(ParamsError, match=r"train\.threads"):
        load_params(path, sections=["train"])


ENTRY_POINTS = sorted(
    [*(ROOT / "stages").glob("*.py"), *(ROOT / "benchmarks").glob("*.py")], key=str
)
WATCH = """
import importlib.abc, importlib.util, os, sys
seen = {}
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and name not in seen:
            seen[name] = os.environ.get("GOMP_SPINCOUNT", "unset")
sys.meta_path.insert(0, Watch())
sys.path.insert(0, os.path.dirname(sys.argv[1]))
spec = importlib.util.spec_from_file_location("entry", sys.argv[1])
sys.modules["entry"] = module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(seen.get("torch", "not loaded"))
"""


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_entry_point_bounds_the_spin_before_torch_loads(entry: Path) -> None:
    """libgomp reads how to wait once, when torch loads it: nmt must be imported first."""
    env = {k: v for k, v in os.environ.items() if k not in threads.OPENMP_VARIABLES}
    out = subprocess.run(
        [sys.executable, "-c", WATCH, str(entry)],
        capture_output=True, text=True, env=env, cwd=ROOT, check=True,
    )  # fmt: skip
    assert out.stdout.strip() in (str(threads.SPIN_COUNT), "not loaded"), out.stdout
