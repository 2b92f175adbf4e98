"""Named parameter sets: partial params files under ``profiles/`` layered over params.yaml.

A profile names only what it changes. It can be applied to params.yaml in place (CI's
tiny run), or turned into ``dvc exp run -S key=value`` arguments so an experiment records
exactly those changes (the reference systems).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from nmt.config import ParamsError, parse_params
from nmt.utils import atomic_path


class ProfileError(ValueError):
    """A profile is missing or does not validate over the base params."""


def profile_path(name: str, profiles_dir: str | os.PathLike[str] = "profiles") -> Path:
    path = Path(profiles_dir) / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in Path(profiles_dir).glob("*.yaml"))
        raise ProfileError(f"no profile {name!r} in {profiles_dir}/; known: {', '.join(known)}")
    return path


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: expected a mapping at the top level")
    return data


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` into a copy of ``base``; mappings merge, all else replaces.

    Named entries (``models:``, ``evaluate.compare.pairs:``) merge too, so a profile can
    change one field of one model; a mapping set to null is removed (a model, a pair).
    """
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if value is None and isinstance(out.get(key), dict):
            out.pop(key)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _is_mapping(tree: dict[str, Any], dotted: str) -> bool:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return isinstance(node, dict)


def leaves(tree: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted keys and values of every non-mapping leaf (an empty mapping is a leaf)."""
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from leaves(value, dotted + ".")
        else:
            yield dotted, value


def apply_profile(base: dict[str, Any], profile: dict[str, Any], source: str) -> dict[str, Any]:
    """Merge and validate; raise :class:`ProfileError` naming the bad key."""
    merged = merge(base, profile)
    try:
        parse_params(merged, source)
    except ParamsError as err:
        raise ProfileError(str(err)) from None
    return merged


def set_args(base: dict[str, Any], profile: dict[str, Any]) -> list[str]:
    """``-S`` arguments for ``dvc exp run`` that turn ``base`` into base + profile.

    Uses the override grammar ``dvc exp run -S`` accepts: ``++key=value`` sets a key
    (adding it if new), ``~key`` deletes one (a model or pair the profile sets to null).
    """
    args: list[str] = []
    for key, value in leaves(profile):
        if value is None and _is_mapping(base, key):
            args += ["-S", f"~{key}"]
        else:
            args += ["-S", f"++{key}={json.dumps(value)}"]
    return args


def write_params(path: str | os.PathLike[str], params: dict[str, Any]) -> None:
    """Write a params mapping as YAML, atomically, keeping key order."""
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))
