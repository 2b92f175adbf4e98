"""Small helpers shared by every stage: atomic writes, seeding, JSON output."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    Works for files and directories alike, so a failed stage never leaves a
    half-written output where a later stage (or DVC) would take it for a real one.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp_target = tmp / target.name
    try:
        yield tmp_target
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(tmp_target, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sweep_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Remove what :func:`atomic_path` left beside ``path`` when its process was killed
    mid-write (its ``finally`` never ran); return what was removed."""
    target = Path(path)
    if not target.parent.is_dir():
        return []
    left = sorted(target.parent.glob(f".{glob.escape(target.name)}.*"))
    for tmp in left:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
    return left


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as pretty, key-sorted JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def set_seed(seed: int) -> int:
    """Seed Python, NumPy and torch (all devices); return the seed.

    Called once at each entry point, never at import time.
    """
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return seed
