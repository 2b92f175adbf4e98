"""The README's commands work as written after the set-up command."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
README = (ROOT / "README.md").read_text(encoding="utf-8")


def bash_blocks(text: str) -> list[list[str]]:
    """The commands of each ```bash block: its lines without their trailing comments."""
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [
        [line.split("  #")[0].strip() for line in b.splitlines() if line.strip()] for b in blocks
    ]


def _clean_env() -> dict[str, str]:
    """The environment of a new terminal: no venv activated, the system's PATH."""
    path = [p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != VENV_BIN]
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    return {**env, "PATH": os.pathsep.join(path)}


CHECK = "command -v dvc; command -v nmt; command -v python; python -c 'import nmt, torch'"


def _tools_found(out: str) -> None:
    assert out.split() == [str(VENV_BIN / "dvc"), str(VENV_BIN / "nmt"), str(VENV_BIN / "python")]


def test_the_readme_activation_line_puts_the_projects_tools_first():
    (activate,) = [c for b in bash_blocks(README) for c in b if ".venv/bin/activate" in c]
    assert activate == "source .venv/bin/activate"
    proc = subprocess.run(
        ["bash", "-c", f"{activate} && {CHECK}"],
        cwd=ROOT, env=_clean_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    _tools_found(proc.stdout)


def test_make_shell_gives_a_shell_with_the_projects_tools():
    proc = subprocess.run(
        ["make", "-s", "shell"], input=CHECK + "\n", cwd=ROOT,
        env={**_clean_env(), "SHELL": "/bin/bash"}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    _tools_found(proc.stdout)
    assert "make shell" in README
