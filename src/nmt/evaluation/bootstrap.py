"""The paired bootstrap test between two systems' translations of one test set."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.metrics.base import Metric

from nmt.evaluation.scoring import check_aligned

#: The seed of the paired bootstrap's resamples (sacrebleu's default ``SACREBLEU_SEED``).
BOOTSTRAP_SEED = 12345
#: What :func:`paired_bootstrap`'s ``p_value`` is the p-value of (written to the JSON).
BOOTSTRAP_TEST = (
    "paired bootstrap, one-sided; H0: candidate scores no higher than baseline; "
    "p_value = share of resamples in which candidate - baseline <= 0 (ties count for H0)"
)


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
    check_aligned(baseline, refs)
    check_aligned(candidate, refs)
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
