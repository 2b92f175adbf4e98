"""benchmarks/bench_corpus.py on a small corpus: every stage runs and is reported."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_small_corpus_goes_through_every_stage(tmp_path: Path):
    args = [sys.executable, str(ROOT / "benchmarks" / "bench_corpus.py"), "--pairs", "2000"]
    args += ["--steps", "3", "--vocab-size", "500", "--workers", "1"]
    proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    rows = dict(
        re.findall(r"^\| (prepare|vocab|train) \| [\d.,]+ s \| ([\d,]+) MiB \|$", out, re.M)
    )
    assert set(rows) == {"prepare", "vocab", "train"}, out
    assert all(int(mib.replace(",", "")) > 0 for mib in rows.values())
    assert re.search(r"train: .* 3 steps in [\d.]+ s", out), out
    assert re.search(r"training peak [\d.]+ GiB: (within|OVER) the 4 GB target", out), out
    assert not list(tmp_path.iterdir())  # its corpus lived in a temporary folder
