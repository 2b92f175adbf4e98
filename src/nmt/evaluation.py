"""Scoring with sacrebleu: corpus BLEU and chrF with their signatures, sentence chrF,
BLEU per source-length bucket, and paired bootstrap resampling between two systems.

Hypotheses are detokenised text and references are the raw target sentences (the
``ref`` column), so scores are comparable with published sacrebleu numbers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest

from nmt.config.evaluate import EvaluateParams
from nmt.decoding import SearchSettings
from nmt.translate import Translator
from nmt.utils import atomic_path

__all__ = [
    "HELDOUT",
    "LENGTH_EDGES",
    "TRANSLATION_SCHEMA",
    "CorpusScore",
    "EvaluationError",
    "bleu_by_length",
    "evaluate_model",
    "paired_bootstrap",
    "read_test_set",
    "read_translations",
    "score_corpus",
    "search_settings",
    "sentence_chrf",
    "find_test_sets",
    "write_translations",
]

#: The name under which ``test.parquet`` (the held-out split) is reported.
HELDOUT = "heldout"
#: Upper bounds of the source-length buckets (in whitespace words); the last is open.
LENGTH_EDGES: tuple[int, ...] = (10, 20, 30, 40, 50)

TRANSLATION_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("reference", pa.string()),
        ("hypothesis", pa.string()),
        ("chrf", pa.float64()),
    ]
)


class EvaluationError(ValueError):
    """A test set or translation file is missing or malformed; the message names it."""


@dataclass(frozen=True)
class CorpusScore:
    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str
    sentences: int


def _check(hyps: Sequence[str], refs: Sequence[str]) -> None:
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")


def score_corpus(hyps: Sequence[str], refs: Sequence[str]) -> CorpusScore:
    """Corpus BLEU (13a tokenisation) and chrF of ``hyps`` against one reference each."""
    _check(hyps, refs)
    bleu, chrf = BLEU(), CHRF()
    if not hyps:  # a signature exists only once a metric has scored something
        bleu.corpus_score([""], [[""]])
        chrf.corpus_score([""], [[""]])
        return CorpusScore(0.0, 0.0, str(bleu.get_signature()), str(chrf.get_signature()), 0)
    b = bleu.corpus_score(list(hyps), [list(refs)])
    c = chrf.corpus_score(list(hyps), [list(refs)])
    return CorpusScore(
        bleu=round(b.score, 4),
        chrf=round(c.score, 4),
        bleu_signature=str(bleu.get_signature()),
        chrf_signature=str(chrf.get_signature()),
        sentences=len(hyps),
    )


def sentence_chrf(hyps: Sequence[str], refs: Sequence[str]) -> list[float]:
    """chrF of each hypothesis against its reference."""
    _check(hyps, refs)
    chrf = CHRF()
    return [chrf.sentence_score(h, [r]).score for h, r in zip(hyps, refs, strict=True)]


def length_bucket(n: int, edges: Sequence[int] = LENGTH_EDGES) -> int:
    """The upper bound of the bucket holding length ``n`` (past the last edge: last + 10)."""
    for edge in edges:
        if n <= edge:
            return edge
    return edges[-1] + 10


def bleu_by_length(
    sources: Sequence[str],
    hyps: Sequence[str],
    refs: Sequence[str],
    edges: Sequence[int] = LENGTH_EDGES,
) -> pd.DataFrame:
    """Corpus BLEU per source-length bucket (whitespace words of the source).

    Returns one row per non-empty bucket: ``src_len`` (the bucket's upper bound; the open
    last bucket is labelled ``edges[-1] + 10``), ``sentences`` and ``bleu``.
    """
    _check(hyps, refs)
    if len(sources) != len(hyps):
        raise ValueError(f"{len(sources)} sources but {len(hyps)} hypotheses")
    frame = pd.DataFrame({"hyp": list(hyps), "ref": list(refs)})
    frame["src_len"] = [length_bucket(len(s.split()), edges) for s in sources]
    rows = []
    for bucket, group in frame.groupby("src_len", sort=True):
        score = BLEU().corpus_score(group["hyp"].tolist(), [group["ref"].tolist()])
        rows.append(
            {"src_len": int(bucket), "sentences": len(group), "bleu": round(score.score, 4)}
        )
    return pd.DataFrame(rows, columns=["src_len", "sentences", "bleu"])


def paired_bootstrap(
    baseline: Sequence[str],
    candidate: Sequence[str],
    refs: Sequence[str],
    resamples: int = 1000,
) -> dict[str, dict[str, float]]:
    """sacrebleu's paired bootstrap resampling (Koehn 2004) of candidate vs baseline.

    Returns, for ``bleu`` and ``chrf``: both scores and the p-value of the difference
    (the probability of a difference at least this large by chance), plus the test's
    sacrebleu signature (which records the seed, ``SACREBLEU_SEED``, default 12345).
    """
    _check(baseline, refs)
    _check(candidate, refs)
    if not refs:
        raise ValueError("paired bootstrap needs at least one sentence")
    test = PairedTest(
        [("baseline", list(baseline)), ("candidate", list(candidate))],
        {"BLEU": BLEU(), "chrF": CHRF()},
        references=[list(refs)],
        test_type="bs",
        n_samples=resamples,
    )
    signatures, scores = test()
    out: dict[str, dict[str, float]] = {}
    names = [n for n in scores if n != "System"]  # "BLEU", "chrF2": sacrebleu's own names
    for name, key in zip(names, ("bleu", "chrf"), strict=True):
        base, cand = scores[name]
        p = cand.p_value
        out[key] = {
            "baseline": round(base.score, 4),
            "candidate": round(cand.score, 4),
            "p_value": round(float(p), 4) if p is not None and not math.isnan(p) else 1.0,
        }
    out["signature"] = str(signatures[names[0]])  # type: ignore[assignment]
    return out


# ----------------------------------------------------------------------------- files


def find_test_sets(prepared: str | os.PathLike[str], test_sets: Sequence[str]) -> dict[str, Path]:
    """``{name: parquet}``: ``heldout`` (``test.parquet``), then each named test set."""
    root = Path(prepared)
    paths = {HELDOUT: root / "test.parquet"}
    for name in test_sets:
        if name == HELDOUT:
            raise EvaluationError(f"test set name {HELDOUT!r} is reserved for test.parquet")
        paths[name] = root / f"{name}.parquet"
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise EvaluationError(f"missing test set file(s): {', '.join(missing)}")
    return paths


def read_test_set(path: str | os.PathLike[str], max_sentences: int | None = None) -> pd.DataFrame:
    """The ``src`` and ``ref`` columns of a prepared parquet file (the first N rows)."""
    try:
        table = pq.read_table(path, columns=["src", "ref"])
    except (OSError, pa.ArrowInvalid, KeyError) as err:
        raise EvaluationError(
            f"{path}: not a prepared test set with src/ref columns ({err})"
        ) from None
    frame = table.to_pandas()
    if max_sentences is not None:
        frame = frame.head(max_sentences)
    return frame.reset_index(drop=True)


def write_translations(
    path: str | os.PathLike[str],
    sources: Sequence[str],
    refs: Sequence[str],
    hyps: Sequence[str],
    chrf: Sequence[float],
) -> None:
    """Write ``source, reference, hypothesis, chrf`` to a parquet file, atomically."""
    table = pa.table(
        {
            "source": list(sources),
            "reference": list(refs),
            "hypothesis": list(hyps),
            "chrf": list(chrf),
        },
        schema=TRANSLATION_SCHEMA,
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_translations(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A translations file written by :func:`write_translations`."""
    if not Path(path).is_file():
        raise EvaluationError(f"{path}: no such translations file")
    table = pq.read_table(path)
    missing = set(TRANSLATION_SCHEMA.names) - set(table.column_names)
    if missing:
        raise EvaluationError(f"{path}: missing column(s) {sorted(missing)}")
    return table.to_pandas()


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
    progress: bool = False,
) -> dict[str, object]:
    """Decode every test set with greedy and beam search, score, and write the details.

    Writes ``<translations_dir>/<test set>.<search>.parquet`` (source, reference,
    hypothesis, sentence chrF) and ``<lengths_dir>/<test set>.tsv`` (BLEU per
    source-length bucket, one column per search). Returns the metrics: per test set,
    the number of sentences and BLEU / chrF per search; the settings and the sacrebleu
    signatures (the same for every score) once, at the top.
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
        by_length = None
        for search, settings in searches.items():
            hyps = translator.translate(sources, settings, normalized=True, progress=progress)
            score = score_corpus(hyps, refs)
            entry[search] = {"bleu": score.bleu, "chrf": score.chrf}
            signatures = {"bleu": score.bleu_signature, "chrf": score.chrf_signature}
            chrf = sentence_chrf(hyps, refs)
            write_translations(
                Path(translations_dir) / f"{name}.{search}.parquet", sources, refs, hyps, chrf
            )
            table = bleu_by_length(sources, hyps, refs).rename(columns={"bleu": search})
            by_length = table if by_length is None else by_length.merge(table)
        metrics[name] = entry
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
