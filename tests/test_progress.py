import io
import os
import select
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from nmt.progress import Progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def lines_progress(stream: io.StringIO, clock: FakeClock, total: int | None = 100) -> Progress:
    return Progress(total, "train epoch 1", "batches", "lines", 60.0, stream, clock)


def test_lines_come_once_per_interval_and_once_more_on_close():
    stream, clock = io.StringIO(), FakeClock()
    with lines_progress(stream, clock) as progress:
        for _ in range(59):
            clock.now += 1.0
            progress.update(loss="3.214")
        assert stream.getvalue() == ""  # 59 s: not yet
        clock.now += 1.0
        progress.update(loss="3.100", **{"tok/s": "2,050"})
        assert stream.getvalue().count("\n") == 1
        for _ in range(30):  # 30 more steps, 2 s each: one line a minute
            clock.now += 2.0
            progress.update()
        assert stream.getvalue().count("\n") == 2
        clock.now += 1.0
        progress.update(10)
    first, second, last = stream.getvalue().splitlines(keepends=True)
    assert "\r" not in stream.getvalue() and all(line.endswith("\n") for line in (first, second))
    assert first == (
        "train epoch 1: 60/100 batches (60%), 01:00 elapsed, 00:40 left, loss 3.100, tok/s 2,050\n"
    )
    assert second.startswith("train epoch 1: 90/100 batches (90%), 02:00 elapsed, ")
    assert last.startswith("train epoch 1: 100/100 batches (100%), 02:01 elapsed, 00:00 left")
    assert last.endswith(", loss 3.100, tok/s 2,050\n")


def test_lines_without_a_total_and_a_close_without_steps():
    stream, clock = io.StringIO(), FakeClock()
    with lines_progress(stream, clock, total=None) as progress:
        clock.now += 5.0
        progress.update(3)
    progress.close()  # a second close writes nothing
    assert stream.getvalue() == "train epoch 1: 3 batches, 00:05 elapsed\n"
    stream = io.StringIO()
    lines_progress(stream, clock).close()
    assert stream.getvalue().startswith("train epoch 1: 0/100 batches (0%), 00:00 elapsed")


def test_off_writes_nothing():
    stream = io.StringIO()
    with Progress(10, "heldout beam", "sentences", "off", 0.0, stream) as progress:
        progress.update(5, loss="1.0")
    assert stream.getvalue() == ""


def test_auto_is_lines_away_from_a_terminal_and_a_bar_on_one():
    stream = io.StringIO()
    with Progress(10, "heldout beam", "sentences", stream=stream) as progress:
        assert progress.mode == "lines"
        progress.update(10)
    assert stream.getvalue().startswith("heldout beam: 10/10 sentences (100%)")
    master, slave = os.openpty()
    try:
        with open(slave, "w") as tty:
            with Progress(10, "heldout beam", "sentences", stream=tty) as progress:
                assert progress.mode == "bar"
                progress.update(4, loss="2.5")
            drawn = b""
            while b"heldout beam" not in drawn and select.select([master], [], [], 10)[0]:
                drawn += os.read(master, 65536)  # a few hundred bytes: the pty holds them
    finally:
        os.close(master)
    assert b"heldout beam: " in drawn


def run_on_a_terminal(
    cmd: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> tuple[int, str]:
    """Run ``cmd`` with stdin, stdout and stderr on a pseudo-terminal; its exit status and
    what it wrote there. The terminal is drained as the command runs, so it never blocks."""
    master, slave = os.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every slave end is closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        done = subprocess.run(
            cmd, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, timeout=timeout
        )
    finally:
        os.close(slave)
        reader.join(10)
        os.close(master)
    return done.returncode, b"".join(chunks).decode(errors="replace")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_dvc_repro_runs_a_stage_on_its_terminal(tmp_path):
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    dvc = [sys.executable, "-m", "dvc"]
    setup = [
        ["git", "init", "-q"],
        [*dvc, "init", "-q"],
        [*dvc, "config", "core.analytics", "false"],
    ]
    for cmd in setup:
        subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True, timeout=120)
    script = 'import sys; open("out.txt", "w").write(str(sys.stderr.isatty()))'
    stage = {"cmd": f"{shlex.quote(sys.executable)} -c {shlex.quote(script)}", "outs": ["out.txt"]}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"tty": stage}}))
    code, shown = run_on_a_terminal([*dvc, "repro"], tmp_path, env, timeout=180)
    assert code == 0, shown
    assert (tmp_path / "out.txt").read_text() == "True"
