"""Scoring with sacrebleu: corpus BLEU and chrF with their signatures, sentence chrF,
BLEU per source-length bucket; the test-set and translation files they read and write.

Hypotheses are detokenised text and references are the raw target sentences (the
``ref`` column), so scores are comparable with published sacrebleu numbers. Nothing here
imports torch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sacrebleu.metrics import BLEU, CHRF

from nmt.utils import atomic_path

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


def check_aligned(hyps: Sequence[str], refs: Sequence[str]) -> None:
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")


def score_corpus(hyps: Sequence[str], refs: Sequence[str]) -> CorpusScore:
    """Corpus BLEU (13a tokenisation) and chrF of ``hyps`` against one reference each."""
    check_aligned(hyps, refs)
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
    check_aligned(hyps, refs)
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
    check_aligned(hyps, refs)
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


def read_train_pairs(prepared: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """The ``src`` and ``tgt`` columns of the prepared training split (``train.parquet``)."""
    path = Path(prepared) / "train.parquet"
    try:
        table = pq.read_table(path, columns=["src", "tgt"])
    except (OSError, pa.ArrowInvalid, KeyError) as err:
        raise EvaluationError(
            f"{path}: not a prepared split with src/tgt columns ({err})"
        ) from None
    return table["src"].to_pylist(), table["tgt"].to_pylist()


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
