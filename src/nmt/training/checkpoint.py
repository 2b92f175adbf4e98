"""Self-describing checkpoints, written atomically and loaded without unpickling code.

A checkpoint is a plain dict of tensors and JSON-like values (so ``torch.load`` runs with
``weights_only=True``): the model's weights, the params it was built from,
both tokenizers' states and the normalisation settings, so evaluation and ``nmt translate``
rebuild everything from the file alone. Training state (optimizer, scheduler, RNG, epoch)
rides along in ``training`` for resuming.

A training run's folder holds ``last.pt`` (to resume from), ``best.pt`` (the best epoch)
and ``epoch-<n>.pt`` (the weights of the last few epochs); the model it delivers,
``model.pt``, is its best epoch or the average of its last epochs
(:func:`average_checkpoints`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nmt.config.data import NormalizeParams
from nmt.config.model import parse_model_params
from nmt.models import Seq2SeqModel, build_model
from nmt.utils import atomic_path

FORMAT_VERSION = 1
MODEL_FILE = "model.pt"  # the model a run delivers
_EPOCH_FILE = re.compile(r"epoch-(\d+)\.pt")


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or incompatible; the message names the file."""


@dataclass
class LoadedModel:
    model: Seq2SeqModel
    src_tokenizer: Any  # nmt.vocab.Tokenizer
    tgt_tokenizer: Any
    normalize: NormalizeParams
    src_lang: str
    tgt_lang: str
    meta: dict[str, Any]


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> None:
    """Write ``payload`` (plus the format version) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT_VERSION, **payload}, tmp)


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint dict safely; a directory means its ``model.pt``, or its
    ``best.pt`` when it is a training run's folder."""
    p = Path(path)
    if p.is_dir():
        delivered = p / MODEL_FILE
        p = delivered if delivered.is_file() or not (p / "best.pt").is_file() else p / "best.pt"
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt file, or it holds objects we refuse to unpickle
        raise CheckpointError(f"{p}: not a readable checkpoint ({err})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{p}: not a checkpoint of format {FORMAT_VERSION}")
    missing = {"model_params", "model_state", "src_tokenizer", "tgt_tokenizer"} - ckpt.keys()
    if missing:
        raise CheckpointError(f"{p}: incompatible checkpoint, missing {sorted(missing)}")
    return ckpt


def model_payload(
    model: Seq2SeqModel,
    src_tokenizer: Any,
    tgt_tokenizer: Any,
    normalize: NormalizeParams,
    src_lang: str,
    tgt_lang: str,
    train_max_src_tokens: int | None = None,
) -> dict[str, Any]:
    """The self-describing part of a checkpoint (weights, architecture, vocabularies).

    ``train_max_src_tokens``: the longest training source in tokens, which translation
    takes as its default cap on input length (a model has never seen longer input).
    """
    extra = {} if train_max_src_tokens is None else {"train_max_src_tokens": train_max_src_tokens}
    return {
        **extra,
        "model_params": model.params.model_dump(),
        "model_state": model.state_dict(),
        "src_tokenizer": src_tokenizer.to_state(),
        "tgt_tokenizer": tgt_tokenizer.to_state(),
        "normalize": normalize.model_dump(),
        "src_lang": src_lang,
        "tgt_lang": tgt_lang,
    }


def epoch_path(folder: str | os.PathLike[str], epoch: int) -> Path:
    """Where a run keeps the weights of its (1-based) ``epoch``."""
    return Path(folder) / f"epoch-{epoch}.pt"


def epoch_checkpoints(folder: str | os.PathLike[str]) -> dict[int, Path]:
    """The epochs whose weights ``folder`` keeps, in order: {epoch: path}."""
    found = {}
    for p in Path(folder).glob("epoch-*.pt"):
        m = _EPOCH_FILE.fullmatch(p.name)
        if m:
            found[int(m.group(1))] = p
    return dict(sorted(found.items()))


def average_checkpoints(paths: Sequence[str | os.PathLike[str]]) -> dict[str, Any]:
    """One checkpoint whose weights are the element-wise mean of those of ``paths``.

    Everything else (architecture, tokenizers, settings) is the last one's, and it must
    be the same in all of them: a checkpoint of another model is refused, naming it.
    Tensors that are not floating point (counters, if a model had any) are the last's.
    """
    if not paths:
        raise CheckpointError("no checkpoints to average")
    ckpts = [read_checkpoint(p) for p in paths]
    last = ckpts[-1]
    same = ("model_params", "src_tokenizer", "tgt_tokenizer", "normalize")
    for p, ckpt in zip(paths, ckpts, strict=True):
        if any(ckpt.get(k) != last.get(k) for k in same) or ckpt["model_state"].keys() != (
            last["model_state"].keys()
        ):
            raise CheckpointError(f"{p}: another model than {paths[-1]}; cannot average them")
    state = {}
    for key, value in last["model_state"].items():
        if value.is_floating_point():
            total = torch.zeros_like(value, dtype=torch.float64)
            for ckpt in ckpts:
                total += ckpt["model_state"][key]
            value = (total / len(ckpts)).to(value.dtype)
        state[key] = value
    out = {k: v for k, v in last.items() if k not in ("format", "training", "metrics")}
    return {**out, "model_state": state}


def delivered_model(folder: str | os.PathLike[str], last: int = 1) -> dict[str, Any]:
    """The checkpoint a training run in ``folder`` delivers: its best epoch (``last``
    1) or the average of its last ``last`` epochs' weights, without training state, with
    ``delivered: {"epochs": [...], "average_last": last}`` saying which."""
    folder = Path(folder)
    if last == 1:
        payload = read_checkpoint(folder / "best.pt")
        epochs = [int(payload.get("metrics", {}).get("epoch", 0))]
    else:
        kept = epoch_checkpoints(folder)
        if len(kept) < last:
            raise CheckpointError(
                f"average.last is {last} but {folder} keeps the weights of {len(kept)} "
                f"epoch(s) ({', '.join(map(str, kept)) or 'none'}): train more epochs or "
                f"raise train.keep_epochs"
            )
        epochs = list(kept)[-last:]
        payload = average_checkpoints([kept[e] for e in epochs])
    payload = {k: v for k, v in payload.items() if k not in ("format", "training")}
    return {**payload, "delivered": {"epochs": epochs, "average_last": last}}


def load_model(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> LoadedModel:
    """Rebuild the model and its tokenizers from a checkpoint (a file or a model dir)."""
    from nmt.vocab import tokenizer_from_state

    ckpt = read_checkpoint(path)
    src_tok = tokenizer_from_state(ckpt["src_tokenizer"])
    tgt_tok = tokenizer_from_state(ckpt["tgt_tokenizer"])
    model = build_model(parse_model_params(ckpt["model_params"]), len(src_tok), len(tgt_tok))
    try:
        model.load_state_dict(ckpt["model_state"])
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit the saved architecture: {err}") from None
    model.to(device).eval()
    meta = {
        k: v
        for k, v in ckpt.items()
        if k not in ("model_state", "src_tokenizer", "tgt_tokenizer", "training")
    }
    return LoadedModel(
        model=model,
        src_tokenizer=src_tok,
        tgt_tokenizer=tgt_tok,
        normalize=NormalizeParams(**ckpt.get("normalize", {})),
        src_lang=ckpt.get("src_lang", ""),
        tgt_lang=ckpt.get("tgt_lang", ""),
        meta=meta,
    )
