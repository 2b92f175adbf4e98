import itertools

import numpy as np
import pytest
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest

from nmt.evaluation.bootstrap import (
    BOOTSTRAP_SEED,
    bootstrap_metric,
    paired_bootstrap,
    resample_counts,
)
from test_scoring import REFS

BAD = "the the the"  # no word of any reference: BLEU 0


def test_paired_bootstrap_identical_outputs_give_p_one():
    refs = REFS * 10
    partial = ["The cat is white.", "A dog sleeps in a house.", "We go to market.", "She reads."]
    for hyps in ([BAD] * len(refs), partial * 10):  # BLEU 0, and BLEU about 8
        result = paired_bootstrap(hyps, list(hyps), refs, resamples=200)
        for metric in ("bleu", "chrf"):
            assert result[metric]["p_value"] == 1.0  # every resample is a tie
            assert result[metric]["difference"] == 0.0
            assert result[metric]["difference_ci95"] == [0.0, 0.0]
    assert result["bleu"]["baseline"] == pytest.approx(8.2106, abs=1e-4)


def test_paired_bootstrap_hand_worked_case():
    # The candidate fixes sentence 0 (same length, every n-gram now right); the other
    # sentences are the same in both. So the candidate scores higher on a resample
    # exactly when the resample draws sentence 0, and ties otherwise: the exact p is
    # P(sentence 0 never drawn in 4 draws) = (3/4)^4 = 81/256.
    baseline = ["A dog was white !", *REFS[1:3], "She reads."]
    candidate = [REFS[0], *baseline[1:]]
    every = np.array(list(itertools.product(range(4), repeat=4)))  # all 256 resamples
    counts = np.stack([np.bincount(row, minlength=4) for row in every])
    for metric in (BLEU(), CHRF()):
        result = bootstrap_metric(metric, baseline, candidate, REFS, counts)
        assert ((result.differences > 0) == (counts[:, 0] > 0)).all()
        assert ((result.differences == 0) == (counts[:, 0] == 0)).all()
        assert result.p_value == 81 / 256

    # Seeded Monte Carlo: p is the share of drawn resamples without sentence 0.
    sampled = paired_bootstrap(baseline, candidate, REFS, resamples=4000, seed=7)
    draws = np.random.default_rng(7).choice(4, size=(4000, 4), replace=True)
    assert sampled["bleu"]["p_value"] == round(float(np.mean((draws != 0).all(1))), 4)
    assert sampled["bleu"]["p_value"] == pytest.approx(81 / 256, abs=0.025)  # 3.4 sd
    assert sampled == paired_bootstrap(baseline, candidate, REFS, resamples=4000, seed=7)


def test_paired_bootstrap_better_worse_and_similar_systems():
    refs = REFS * 10
    bad = [BAD] * len(refs)
    result = paired_bootstrap(bad, list(refs), refs, resamples=200)
    assert result["bleu"]["candidate"] > result["bleu"]["baseline"]
    assert result["bleu"]["p_value"] == 0.0  # the candidate wins every resample
    assert result["bleu"]["difference_ci95"][0] > 0
    assert "bs:200" in result["signature"] and "seed:12345" in result["signature"]
    assert "one-sided" in result["significance_test"]
    # The other way round the candidate is worse: H0 (no better) holds in every resample.
    assert paired_bootstrap(list(refs), bad, refs, resamples=200)["bleu"]["p_value"] == 1.0
    # Equally good systems, wrong on different sentences: no evidence either way.
    half_a = [r if i % 2 else BAD for i, r in enumerate(refs)]
    half_b = [r if i % 2 == 0 else BAD for i, r in enumerate(refs)]
    similar = paired_bootstrap(half_a, half_b, refs, resamples=200)
    assert 0.05 < similar["bleu"]["p_value"] < 0.95
    with pytest.raises(ValueError):
        paired_bootstrap([], [], [])
    with pytest.raises(ValueError, match="3 hypotheses but 4 references"):
        paired_bootstrap(REFS[:3], REFS, REFS)


def test_paired_bootstrap_agrees_with_sacrebleu(monkeypatch):
    monkeypatch.delenv("SACREBLEU_SEED", raising=False)  # sacrebleu's seed: 12345
    refs = REFS * 10
    baseline = [BAD if i % 3 == 0 else r for i, r in enumerate(refs)]
    candidate = [BAD if i % 7 == 0 else r for i, r in enumerate(refs)]
    ours = paired_bootstrap(baseline, candidate, refs, resamples=1000)
    test = PairedTest(
        [("baseline", baseline), ("candidate", candidate)],
        {"BLEU": BLEU(), "chrF": CHRF()},
        references=[refs],
        test_type="bs",
        n_samples=1000,
    )
    signatures, scores = test()
    assert ours["signature"] == str(signatures["BLEU"])
    for key, name in (("bleu", "BLEU"), ("chrf", "chrF2")):
        base, cand = scores[name]
        assert ours[key]["baseline"] == pytest.approx(base.score, abs=1e-4)
        assert ours[key]["candidate"] == pytest.approx(cand.score, abs=1e-4)
        # The same resamples: the mean resampled difference is sacrebleu's mean
        # candidate score less its mean baseline score (it sums in float32).
        mean = bootstrap_metric(
            BLEU() if key == "bleu" else CHRF(),
            baseline,
            candidate,
            refs,
            resample_counts(len(refs), 1000, BOOTSTRAP_SEED),
        ).differences.mean()
        assert mean == pytest.approx(cand.mean - base.mean, abs=1e-3)
        # A clear difference (p about 0.03): here sacrebleu's count, d* - mean > d on the
        # absolute differences, is about P(d* > 2d), which for a symmetric bootstrap
        # distribution around d is our P(d* <= 0). (Near a tie its centring of |d*|
        # breaks that: p = 1/(n+1) for identical systems.)
        assert ours[key]["p_value"] == pytest.approx(cand.p_value, abs=0.01)
    assert BLEU().corpus_score(candidate, [refs]).score == pytest.approx(
        ours["bleu"]["candidate"], abs=1e-4
    )
