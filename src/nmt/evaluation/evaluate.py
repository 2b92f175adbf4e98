"""Evaluate a trained model: decode every test set with greedy and beam search, score
the translations and write them with BLEU per source length."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from nmt.config.evaluate import EvaluateParams
from nmt.evaluation.scoring import (
    HELDOUT,
    bleu_by_length,
    read_test_set,
    score_corpus,
    sentence_chrf,
    write_translations,
)
from nmt.evaluation.slices import heldout_slices
from nmt.inference.search import SearchSettings
from nmt.inference.translate import Translator
from nmt.progress import ProgressMode
from nmt.utils import atomic_path

# ------------------------------------------------------------------------ a whole model


def search_settings(params: EvaluateParams) -> dict[str, SearchSettings]:
    """``{"greedy": ..., "beam": ...}``: the two searches every test set is decoded with."""
    common = {
        "length_penalty": params.length_penalty,
        "max_length_ratio": params.max_length_ratio,
        "max_length_extra": params.max_length_extra,
    }
    return {
        "greedy": SearchSettings(beam_size=1, **common),
        "beam": SearchSettings(beam_size=params.beam_size, **common),
    }


def evaluate_model(
    translator: Translator,
    test_sets: dict[str, Path],
    params: EvaluateParams,
    translations_dir: str | os.PathLike[str],
    lengths_dir: str | os.PathLike[str],
    progress: ProgressMode = "off",
    train_pairs: tuple[Sequence[str], Sequence[str]] | None = None,
) -> dict[str, object]:
    """Decode every test set with greedy and beam search, score, and write the details.

    Writes ``<translations_dir>/<test set>.<search>.parquet`` (source, reference,
    hypothesis, sentence chrF) and ``<lengths_dir>/<test set>.tsv`` (BLEU per
    source-length bucket, one column per search). Returns the metrics: per test set,
    the number of sentences and BLEU / chrF per search; the settings and the sacrebleu
    signatures (the same for every score) once, at the top. ``progress`` counts the
    sentences of each decoding, named ``<test set> <search>`` (see :class:`~nmt.progress.Progress`).

    With ``train_pairs`` (the training split's sources and targets), the held-out split's
    slices (:mod:`nmt.evaluation.slices`) are scored too, from the same translations, as
    ``heldout_<slice>`` entries beside ``heldout``.
    """
    searches = search_settings(params)
    metrics: dict[str, object] = {}
    signatures: dict[str, str] = {}
    Path(translations_dir).mkdir(parents=True, exist_ok=True)
    Path(lengths_dir).mkdir(parents=True, exist_ok=True)
    for name, path in test_sets.items():
        frame = read_test_set(path, params.max_sentences)
        sources, refs = frame["src"].tolist(), frame["ref"].tolist()
        entry: dict[str, object] = {"sentences": len(frame)}
        slices = {}
        if name == HELDOUT and train_pairs is not None:
            slices = {
                f"{name}_{slice_name}": (rows, {"sentences": len(rows)})
                for slice_name, rows in heldout_slices(sources, refs, *train_pairs).items()
            }
        by_length = None
        for search, settings in searches.items():
            hyps = translator.translate(
                sources, settings, normalized=True, progress=progress, desc=f"{name} {search}"
            )
            score = score_corpus(hyps, refs)
            entry[search] = {"bleu": score.bleu, "chrf": score.chrf}
            for rows, slice_entry in slices.values():
                part = score_corpus([hyps[i] for i in rows], [refs[i] for i in rows])
                slice_entry[search] = {"bleu": part.bleu, "chrf": part.chrf}
            signatures = {"bleu": score.bleu_signature, "chrf": score.chrf_signature}
            chrf = sentence_chrf(hyps, refs)
            write_translations(
                Path(translations_dir) / f"{name}.{search}.parquet", sources, refs, hyps, chrf
            )
            table = bleu_by_length(sources, hyps, refs).rename(columns={"bleu": search})
            by_length = table if by_length is None else by_length.merge(table)
        metrics[name] = entry
        metrics |= {slice_name: slice_entry for slice_name, (_, slice_entry) in slices.items()}
        if by_length is not None:
            with atomic_path(Path(lengths_dir) / f"{name}.tsv") as tmp:
                by_length.to_csv(tmp, sep="\t", index=False)
    metrics["settings"] = {
        "beam_size": params.beam_size,
        "length_penalty": params.length_penalty,
        "max_length_ratio": params.max_length_ratio,
        "max_length_extra": params.max_length_extra,
        "max_sentences": params.max_sentences,
    }
    metrics["signatures"] = signatures
    return metrics
