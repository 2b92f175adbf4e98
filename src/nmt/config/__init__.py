"""Typed, validated parameters.

``params.yaml`` is parsed once, at a stage's start, into the models below. An unknown
key, a wrong type or an impossible value raises :class:`ParamsError` naming the key,
before the stage does any work. Library code receives these objects, never the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nmt.config.base import StrictModel
from nmt.config.data import DataParams, DownloadParams, PrepareParams
from nmt.config.evaluate import EvaluateParams
from nmt.config.model import ModelParams
from nmt.config.train import AverageParams, TrainParams
from nmt.config.vocab import VocabParams

__all__ = [
    "AverageParams",
    "DataParams",
    "DownloadParams",
    "EvaluateParams",
    "ModelParams",
    "Params",
    "ParamsError",
    "PrepareParams",
    "StrictModel",
    "TrainParams",
    "VocabParams",
    "load_params",
]


class ParamsError(ValueError):
    """params.yaml is unreadable or does not validate; the message names the key."""


class Params(BaseModel):
    """The whole of params.yaml. Sections a stage does not read may be absent."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # Python, NumPy (whose legacy seeding takes 32 bits) and torch all take it unchanged.
    seed: int = Field(1234, ge=0, lt=2**32)
    data: DataParams = DataParams()
    download: DownloadParams = DownloadParams()
    prepare: PrepareParams = PrepareParams()
    vocab: VocabParams = VocabParams()
    models: dict[str, ModelParams] = {}
    train: TrainParams = TrainParams()
    average: AverageParams = AverageParams()
    evaluate: EvaluateParams = EvaluateParams()

    @model_validator(mode="after")
    def _averaged_epochs_are_kept(self) -> Params:
        # Checked only where both sections are read (check_params reads the whole file);
        # the average stage also checks the epochs it finds on disk.
        both = {"average", "train"} <= self.model_fields_set
        if both and self.average.last > self.train.keep_epochs:
            raise ValueError(
                f"average.last ({self.average.last}) must not exceed train.keep_epochs "
                f"({self.train.keep_epochs}): only the kept epochs can be averaged"
            )
        return self


def _key(loc: tuple[int | str, ...], raw: Any, missing: bool = False) -> str:
    """An error's location as the dotted key it has in the file.

    Pydantic also puts the member of a tagged union in the path (``models.m.rnn.cell``
    for ``models: {m: {cell: ...}}``); a step that is no key of the input is left out,
    unless it is the last one under a mapping of an error that a key is ``missing``.
    """
    parts: list[str] = []
    node = raw
    for i, step in enumerate(loc):
        if isinstance(node, dict):
            present = step in node
        else:
            present = isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)
        if present:
            node = node[step]
        elif missing and i == len(loc) - 1 and isinstance(node, dict):
            node = None
        else:
            continue
        parts.append(str(step))
    return ".".join(parts) or "<root>"


def _format_error(err: ValidationError, source: str, raw: Any) -> str:
    lines = [f"invalid parameters in {source}:"]
    for e in err.errors():
        key = _key(tuple(e["loc"]), raw, missing=e["type"] == "missing")
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"  {key}: {msg} (got {e.get('input')!r})")
    return "\n".join(lines)


def parse_params(raw: dict[str, Any], source: str = "params") -> Params:
    """Validate an already-loaded params mapping."""
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ParamsError(_format_error(err, source, raw)) from None


def load_params(
    path: str | os.PathLike[str] = "params.yaml", sections: Iterable[str] | None = None
) -> Params:
    """Read and validate ``path``; raise :class:`ParamsError` naming the bad key.

    With ``sections``, only those top-level sections are validated (the rest take their
    defaults): a stage checks exactly the params it declares in dvc.yaml, so a mistake in
    a section it does not read cannot stop it. Unknown top-level keys are always errors.
    """
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ParamsError(f"{p}: file not found") from None
    except yaml.YAMLError as err:
        raise ParamsError(f"{p}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{p}: expected a mapping at the top level")
    if sections is not None:
        wanted = set(sections)
        unknown = (set(raw) | wanted) - set(Params.model_fields)
        if unknown:
            raise ParamsError(f"invalid parameters in {p}:\n  {sorted(unknown)[0]}: unknown key")
        raw = {k: v for k, v in raw.items() if k in wanted}
    return parse_params(raw, str(p))
