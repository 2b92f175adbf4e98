import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sacrebleu.metrics import BLEU

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
