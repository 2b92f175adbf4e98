"""Comparing two evaluated models: a paired bootstrap test per test set.

Reads the translation files the evaluate stage wrote for two models
(``<folder>/<test set>.<search>.parquet``, see
:func:`nmt.evaluation.scoring.write_translations`) and tests, for every test set the
baseline was evaluated on, whether the candidate scores higher on the same references
(:func:`nmt.evaluation.bootstrap.paired_bootstrap`). Nothing here imports torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nmt.config.evaluate import CompareParams, ComparisonPair
from nmt.evaluation.bootstrap import paired_bootstrap
from nmt.evaluation.scoring import EvaluationError, read_translations

#: The keys of :func:`compare_translations`'s result that are not test sets.
META_KEYS = ("models", "search", "signature", "significance_test")


def translation_suffix(search: str) -> str:
    """How the evaluate stage's files for ``search`` (greedy or beam) end."""
    return f".{search}.parquet"


def baseline_test_sets(baseline: str | os.PathLike[str], search: str) -> list[str]:
    """The test sets (sorted) with ``search`` translations in the folder ``baseline``."""
    folder = Path(baseline)
    suffix = translation_suffix(search)
    names = sorted(p.name.removesuffix(suffix) for p in folder.glob(f"*{suffix}"))
    if not names:
        why = "" if folder.is_dir() else " (no such folder)"
        raise EvaluationError(f"{folder}: no *{suffix} translations{why}")
    return names


def compare_translations(
    baseline: str | os.PathLike[str],
    candidate: str | os.PathLike[str],
    params: CompareParams,
    models: ComparisonPair,
) -> dict[str, Any]:
    """The paired bootstrap of ``candidate``'s translations against ``baseline``'s.

    For every test set the folder ``baseline`` holds ``params.search`` translations of,
    the same file must be in ``candidate``, with the same references in the same order.
    Returns, per test set, :func:`~nmt.evaluation.bootstrap.paired_bootstrap`'s ``bleu``
    and ``chrf`` entries; and once (the keys in :data:`META_KEYS`): ``models`` (the two
    names), ``search``, the BLEU ``signature`` (with resamples and seed) and the
    ``significance_test`` in words. Raises :class:`EvaluationError` naming the folder or
    file when a translation file is missing or malformed or the references differ.
    """
    baseline, candidate = Path(baseline), Path(candidate)
    suffix = translation_suffix(params.search)
    results: dict[str, Any] = {}
    signature = test = ""
    for name in baseline_test_sets(baseline, params.search):
        base_path, cand_path = baseline / f"{name}{suffix}", candidate / f"{name}{suffix}"
        if not cand_path.is_file():
            raise EvaluationError(
                f"{cand_path}: no such translations file, but {baseline} has {name}{suffix} "
                "(evaluate both models on the same test sets)"
            )
        base = read_translations(base_path)
        cand = read_translations(cand_path)
        if base["reference"].tolist() != cand["reference"].tolist():
            raise EvaluationError(
                f"{name}: {base_path} and {cand_path} hold different references "
                "(evaluated with different settings?)"
            )
        result = paired_bootstrap(
            base["hypothesis"].tolist(),
            cand["hypothesis"].tolist(),
            base["reference"].tolist(),
            params.resamples,
        )
        signature = result.pop("signature")  # the same for every test set: kept once
        test = result.pop("significance_test")
        results[name] = result
    results["models"] = {"baseline": models.baseline, "candidate": models.candidate}
    results["search"] = params.search
    results["signature"] = signature
    results["significance_test"] = test
    return results
