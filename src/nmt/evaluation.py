"""Scoring with sacrebleu: corpus BLEU and chrF with their signatures, sentence chrF,
BLEU per source-length bucket, and a paired bootstrap test between two systems.

Hypotheses are detokenised text and references are the raw target sentences (the
``ref`` column), so scores are comparable with published sacrebleu numbers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.metrics.base import Metric

from nmt.config.evaluate import EvaluateParams
from nmt.decoding import SearchSettings
from nmt.translate import Translator
from nmt.utils import atomic_path

__all__ = [
    "BOOTSTRAP_SEED",
    "BOOTSTRAP_TEST",
    "HELDOUT",
    "LENGTH_EDGES",
    "TRANSLATION_SCHEMA",
    "CorpusScore",
    "EvaluationError",
    "PairedBootstrap",
    "bleu_by_length",
    "bootstrap_metric",
    "evaluate_model",
    "paired_bootstrap",
    "read_test_set",
    "read_translations",
    "resample_counts",
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
#: The seed of the paired bootstrap's resamples (sacrebleu's default ``SACREBLEU_SEED``).
BOOTSTRAP_SEED = 12345
#: What :func:`paired_bootstrap`'s ``p_value`` is the p-value of (written to the JSON).
BOOTSTRAP_TEST = (
    "paired bootstrap, one-sided; H0: candidate scores no higher than baseline; "
    "p_value = share of resamples in which candidate - baseline <= 0 (ties count for H0)"
)

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


def resample_counts(sentences: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, sentences): how often each sentence is drawn in each resample.

    The draws are sacrebleu's (``default_rng(seed).choice``, sentences with replacement),
    so its paired bootstrap with the same seed sees the same resamples.
    """
    rng = np.random.default_rng(seed)
    draws = rng.choice(sentences, size=(resamples, sentences), replace=True)
    flat = draws + sentences * np.arange(resamples)[:, None]  # one bin per (resample, sentence)
    return np.bincount(flat.ravel(), minlength=resamples * sentences).reshape(resamples, -1)


def _sentence_stats(metric: Metric, hyps: Sequence[str], refs: Sequence[str]) -> np.ndarray:
    """(sentences, statistics): sacrebleu's sufficient statistics of each hypothesis."""
    # The private methods sacrebleu's own significance tests use: scoring a resample
    # from summed statistics is its corpus score without re-tokenising the text.
    stats = metric._extract_corpus_statistics(list(hyps), [list(refs)])
    return np.asarray(stats, dtype=np.float64)  # integer counts: sums stay exact


def _scores(metric: Metric, totals: np.ndarray) -> np.ndarray:
    """The metric's corpus score from each row of summed statistics ``(rows, statistics)``."""
    return np.array([metric._compute_score_from_stats(row).score for row in totals])


@dataclass(frozen=True, eq=False)  # eq would compare arrays elementwise
class PairedBootstrap:
    """One metric's paired bootstrap: observed scores and the resampled differences.

    ``differences: (resamples,)`` holds candidate minus baseline score on each resample.
    """

    baseline: float
    candidate: float
    differences: np.ndarray

    @property
    def p_value(self) -> float:
        """The share of resamples in which the candidate does not beat the baseline.

        The one-sided p-value of H0 "the candidate scores no higher than the baseline":
        a resample with a zero difference supports H0. Identical outputs give 1; a
        candidate better in every resample gives 0, i.e. p < 1 / resamples.
        """
        return float(np.mean(self.differences <= 0))

    def summary(self) -> dict[str, float | list[float]]:
        """The JSON form: scores, observed difference, its 95% interval, p-value."""
        low, high = np.percentile(self.differences, [2.5, 97.5])
        return {
            "baseline": round(self.baseline, 4),
            "candidate": round(self.candidate, 4),
            "difference": round(self.candidate - self.baseline, 4),
            "difference_ci95": [round(float(low), 4), round(float(high), 4)],
            "p_value": round(self.p_value, 4),
        }


def bootstrap_metric(
    metric: Metric,
    baseline: Sequence[str],
    candidate: Sequence[str],
    refs: Sequence[str],
    counts: np.ndarray,
) -> PairedBootstrap:
    """Score both systems on every resample ``counts: (resamples, sentences)``.

    A resample's score is the metric's corpus score of the sentence statistics summed
    with ``counts`` as weights: the score of the resampled corpus, without re-scoring text.
    """
    base = _sentence_stats(metric, baseline, refs)
    cand = _sentence_stats(metric, candidate, refs)
    observed = _scores(metric, np.stack([base.sum(0), cand.sum(0)]))
    differences = _scores(metric, counts @ cand) - _scores(metric, counts @ base)
    return PairedBootstrap(float(observed[0]), float(observed[1]), differences)


def paired_bootstrap(
    baseline: Sequence[str],
    candidate: Sequence[str],
    refs: Sequence[str],
    resamples: int = 1000,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, object]:
    """Paired bootstrap test (Koehn 2004) of whether the candidate beats the baseline.

    Each of ``resamples`` resamples draws ``len(refs)`` sentences with replacement
    (seeded by ``seed``); both systems are scored on the same draws, BLEU and chrF
    computed by sacrebleu from the sentences' sufficient statistics. ``p_value`` is
    one-sided, for H0 "the candidate scores no higher than the baseline": the share of
    resamples in which candidate minus baseline is <= 0. A tie counts for H0, not as a
    difference, so identical outputs give p = 1; a worse candidate gives p near 1 (swap
    the two to test the other direction); p = 0 means the candidate won every resample
    (p < 1 / resamples).

    (sacrebleu's ``PairedTest`` is not used: it counts the resamples whose absolute
    difference, less the mean absolute difference, strictly exceeds the observed one,
    and returns (count + 1) / (resamples + 1): 1 / (resamples + 1) for identical systems.)

    Returns, for ``bleu`` and ``chrf``, :meth:`PairedBootstrap.summary` (both scores, the
    difference and the 2.5-97.5 percentiles of the resampled differences, the p-value);
    ``significance_test``, the test in words (:data:`BOOTSTRAP_TEST`); and ``signature``,
    the BLEU signature with ``bs`` (resamples) and ``seed``.
    """
    _check(baseline, refs)
    _check(candidate, refs)
    if not refs:
        raise ValueError("paired bootstrap needs at least one sentence")
    counts = resample_counts(len(refs), resamples, seed)
    bleu = BLEU()
    out: dict[str, object] = {
        "bleu": bootstrap_metric(bleu, baseline, candidate, refs, counts).summary(),
        "chrf": bootstrap_metric(CHRF(), baseline, candidate, refs, counts).summary(),
        "significance_test": BOOTSTRAP_TEST,
    }
    signature = bleu.get_signature()  # complete once the metric has seen the references
    signature.update("bs", resamples)
    signature.update("seed", seed)
    out["signature"] = str(signature)
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
