import itertools

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest

from nmt.config.evaluate import CompareParams, ComparisonPair, EvaluateParams
from nmt.evaluation.bootstrap import (
    BOOTSTRAP_SEED,
    bootstrap_metric,
    paired_bootstrap,
    resample_counts,
)
from nmt.evaluation.evaluate import search_settings
from nmt.evaluation.scoring import (
    HELDOUT,
    EvaluationError,
    bleu_by_length,
    find_test_sets,
    length_bucket,
    read_test_set,
    read_translations,
    score_corpus,
    sentence_chrf,
    write_translations,
)

REFS = [
    "The cat is black.",
    "A big dog sleeps in the house.",
    "We will go to the market tomorrow morning.",
    "She reads a book every evening before bed.",
]


def test_score_corpus_uses_sacrebleu_with_signatures():
    perfect = score_corpus(REFS, REFS)
    assert perfect.bleu == pytest.approx(100.0) and perfect.chrf == pytest.approx(100.0)
    assert perfect.sentences == 4
    assert perfect.bleu_signature.startswith("nrefs:1|") and "tok:13a" in perfect.bleu_signature
    assert "chrF2" in perfect.chrf_signature or "nc:6" in perfect.chrf_signature
    hyps = ["The cat is white.", "A dog sleeps in a house.", "We go to market.", "She reads."]
    partial = score_corpus(hyps, REFS)
    assert partial.bleu == pytest.approx(BLEU().corpus_score(hyps, [REFS]).score, abs=1e-4)
    assert 0 < partial.bleu < 100 and 0 < partial.chrf < 100
    assert score_corpus([], []).sentences == 0
    with pytest.raises(ValueError, match="3 hypotheses but 4 references"):
        score_corpus(hyps[:3], REFS)


def test_sentence_chrf_orders_sentences():
    scores = sentence_chrf(["The cat is black.", "nothing alike"], REFS[:2])
    assert scores[0] == pytest.approx(100.0)
    assert 0 <= scores[1] < 20


def test_bleu_by_length_buckets():
    assert [length_bucket(n) for n in (1, 10, 11, 50, 51, 400)] == [10, 10, 20, 50, 60, 60]
    sources = ["a b c", "a " * 15, "x y", "w " * 70]
    hyps = [REFS[0], "wrong words only here", REFS[2], REFS[3]]
    table = bleu_by_length(sources, hyps, REFS)
    assert table["src_len"].tolist() == [10, 20, 60]
    assert table["sentences"].tolist() == [2, 1, 1]
    assert table["bleu"].tolist()[0] == pytest.approx(100.0)
    assert table["bleu"].tolist()[1] == pytest.approx(0.0)


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


def test_test_set_files(tmp_path):
    table = pa.table({"src": ["a", "b", "c"], "tgt": ["x", "y", "z"], "ref": ["X", "Y", "Z"]})
    pq.write_table(table, tmp_path / "test.parquet")
    with pytest.raises(EvaluationError, match="newstest2014.parquet"):
        find_test_sets(tmp_path, ["newstest2014"])
    pq.write_table(table, tmp_path / "newstest2014.parquet")
    paths = find_test_sets(tmp_path, ["newstest2014"])
    assert list(paths) == [HELDOUT, "newstest2014"]
    frame = read_test_set(paths[HELDOUT], max_sentences=2)
    assert frame.columns.tolist() == ["src", "ref"] and frame["ref"].tolist() == ["X", "Y"]
    pq.write_table(pa.table({"src": ["a"]}), tmp_path / "bad.parquet")
    with pytest.raises(EvaluationError, match="bad.parquet"):
        read_test_set(tmp_path / "bad.parquet")


def test_translations_round_trip(tmp_path):
    path = tmp_path / "t.parquet"
    write_translations(path, ["s1", "s2"], ["r1", "r2"], ["h\t1", ""], [1.5, 0.0])
    frame = read_translations(path)
    assert frame.columns.tolist() == ["source", "reference", "hypothesis", "chrf"]
    assert frame["hypothesis"].tolist() == ["h\t1", ""]
    with pytest.raises(EvaluationError, match="no such"):
        read_translations(tmp_path / "missing.parquet")


def test_search_settings_and_params():
    params = EvaluateParams(beam_size=3, length_penalty=0.6, max_length_extra=4)
    searches = search_settings(params)
    assert searches["greedy"].beam_size == 1 and searches["beam"].beam_size == 3
    assert searches["greedy"].max_length_extra == searches["beam"].max_length_extra == 4
    with pytest.raises(ValueError, match="different"):
        ComparisonPair(baseline="gru", candidate="gru")
    assert CompareParams().pairs["attention_vs_gru"].candidate == "attention"
    assert CompareParams(pairs={}).pairs == {}
    with pytest.raises(ValueError, match="pair names"):
        CompareParams(pairs={"a b": {"baseline": "x", "candidate": "y"}})
    with pytest.raises(ValueError):
        EvaluateParams(beam_size=0)
