"""Tests of nmt.vocab: word, char and subword tokenizers, building, state, metrics."""

from __future__ import annotations

import io
import json
import pickle
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sentencepiece as spm

from nmt.config import VocabParams
from nmt.vocab import (
    EOS_ID,
    PAD_ID,
    SOS_ID,
    SPECIALS,
    UNK,
    UNK_ID,
    CharTokenizer,
    SubwordTokenizer,
    VocabError,
    WordTokenizer,
    build_table_tokens,
    build_tokenizers,
    iter_texts,
    load_tokenizers,
    save_tokenizers,
    tokenizer_from_state,
    vocab_metrics,
)

FR = [
    "le chat est noir .",
    "le chien est blanc .",
    "un chat et un chien jouent dans le jardin .",
    "je suis très content de te voir !",
    "elle mange une pomme rouge .",
    "nous allons à la plage demain .",
    "il fait beau aujourd'hui .",
    "où est la gare ?",
    "les enfants lisent des livres .",
    "tu as raison , c'est vrai .",
]
EN = [
    "the cat is black .",
    "the dog is white .",
    "a cat and a dog play in the garden .",
    "i am very happy to see you !",
    "she eats a red apple .",
    "we are going to the beach tomorrow .",
    "the weather is nice today .",
    "where is the station ?",
    "the children read books .",
    "you are right , it is true .",
]
SCHEMA = pa.schema(
    [
        ("src", pa.string()),
        ("tgt", pa.string()),
        ("ref", pa.string()),
        ("corpus", pa.dictionary(pa.int32(), pa.string())),
    ]
)
SMALL_SUBWORD = {"kind": "subword", "vocab_size": 50}


def write_pairs(path: Path, src: list[str], tgt: list[str]) -> Path:
    corpus = pa.array(["toy"] * len(src)).dictionary_encode().cast(SCHEMA.field("corpus").type)
    table = pa.table({"src": src, "tgt": tgt, "ref": tgt, "corpus": corpus}, schema=SCHEMA)
    pq.write_table(table, path)
    return path


@pytest.fixture
def train(tmp_path: Path) -> Path:
    return write_pairs(tmp_path / "train.parquet", FR * 3, EN * 3)


def params(**kw: object) -> VocabParams:
    return VocabParams(**kw)


KINDS = [
    {"kind": "word"},
    {"kind": "char"},
    SMALL_SUBWORD,
    {**SMALL_SUBWORD, "model_type": "unigram"},
]


@pytest.mark.parametrize("kw", KINDS, ids=["word", "char", "bpe", "unigram"])
def test_round_trip_of_known_text(train: Path, kw: dict) -> None:
    src_tok, tgt_tok = build_tokenizers(train, params(**kw), seed=1)
    for tok, texts in ((src_tok, FR), (tgt_tok, EN)):
        ids = tok.encode_batch(texts)
        assert ids == [tok.encode(t) for t in texts]
        assert all(UNK_ID not in x and min(x) >= 4 and max(x) < len(tok) for x in ids)
        assert [tok.decode(x) for x in ids] == texts


@pytest.mark.parametrize("kw", KINDS, ids=["word", "char", "bpe", "unigram"])
def test_specials_have_fixed_ids(train: Path, kw: dict) -> None:
    tok, _ = build_tokenizers(train, params(**kw), seed=1)
    assert (PAD_ID, SOS_ID, EOS_ID, UNK_ID) == (0, 1, 2, 3)
    if isinstance(tok, SubwordTokenizer):
        sp = spm.SentencePieceProcessor(model_proto=tok.model)
        assert [sp.id_to_piece(i) for i in range(4)] == list(SPECIALS)
    else:
        assert tok.itos[:4] == list(SPECIALS)
    # decode skips every special wherever it is, and does not stop at <eos>
    known = tok.encode(FR[0])
    noisy = [SOS_ID, *known[:2], EOS_ID, PAD_ID, UNK_ID, *known[2:], EOS_ID, PAD_ID]
    assert tok.decode(noisy) == tok.decode(known)


def test_decode_rejects_out_of_range_ids(train: Path) -> None:
    tok, _ = build_tokenizers(train, params(kind="word"), seed=1)
    with pytest.raises(VocabError, match=f"id {len(tok)} is out of range"):
        tok.decode([4, len(tok)])


@pytest.mark.parametrize("kw", KINDS, ids=["word", "char", "bpe", "unigram"])
def test_unknown_tokens_become_unk(train: Path, kw: dict) -> None:
    tok, _ = build_tokenizers(train, params(**kw), seed=1)
    text = "le chat 猫 zyxw"  # unseen word and unseen characters
    ids = tok.encode(text)
    assert UNK_ID in ids
    assert tok.encode_batch([text, "猫"]) == [ids, tok.encode("猫")]
    assert UNK_ID in tok.encode("猫") and tok.decode(tok.encode("猫")) == ""
    assert "猫" not in tok.decode(ids) and "le chat" in tok.decode(ids)


def test_word_unknowns_and_pieces() -> None:
    tok = WordTokenizer([*SPECIALS, "le", "chat"])
    assert tok.encode("le chien  chat") == [4, UNK_ID, 5]
    assert tok.pieces("le chien chat") == ["le", "chien", "chat"]
    assert tok.decode(tok.encode("le chien chat")) == "le chat"
    char = CharTokenizer([*SPECIALS, "a", " "])
    assert char.encode("a b") == [4, 5, UNK_ID]
    assert char.decode([4, 5, UNK_ID, 4]) == "a a"


def test_min_freq_and_max_size(train: Path, tmp_path: Path) -> None:
    path = write_pairs(tmp_path / "f.parquet", ["a a a b b c", "a b d"], ["x", "y"])
    tok, _ = build_tokenizers(path, params(kind="word", joint=False, min_freq=2), seed=1)
    assert tok.itos == [*SPECIALS, "a", "b"]
    tok, _ = build_tokenizers(path, params(kind="word", joint=False, max_size=6), seed=1)
    assert tok.itos == [*SPECIALS, "a", "b"] and len(tok) == 6
    char, _ = build_tokenizers(path, params(kind="char", joint=False, min_freq=3), seed=1)
    assert char.itos == [*SPECIALS, " ", "a", "b"]  # " " 7, a 4, b 3; c and d once


def test_ties_are_broken_by_token() -> None:
    counts = Counter({"b": 2, "a": 2, "c": 2, "z": 5, "y": 1})
    assert build_table_tokens(counts, 1, None) == [*SPECIALS, "z", "a", "b", "c", "y"]
    assert build_table_tokens(counts, 2, 6) == [*SPECIALS, "z", "a"]
    assert build_table_tokens(Counter({UNK: 9, "a": 1}), 1, None) == [*SPECIALS, "a"]
    with pytest.raises(VocabError, match="vocab.max_size=4"):
        build_table_tokens(counts, 1, 4)


def test_joint_or_separate(train: Path) -> None:
    src, tgt = build_tokenizers(train, params(kind="word", joint=True), seed=1)
    assert src == tgt and "chat" in src.stoi and "cat" in src.stoi
    src, tgt = build_tokenizers(train, params(kind="word", joint=False), seed=1)
    assert src != tgt
    assert "chat" in src.stoi and "chat" not in tgt.stoi and "cat" in tgt.stoi
    src, tgt = build_tokenizers(train, params(**SMALL_SUBWORD, joint=False), seed=1)
    assert len(src) == len(tgt) == 50 and src.model != tgt.model


@pytest.mark.parametrize("kw", KINDS, ids=["word", "char", "bpe", "unigram"])
def test_state_round_trip(train: Path, tmp_path: Path, kw: dict) -> None:
    src, tgt = build_tokenizers(train, params(**kw, joint=False), seed=1)
    state = json.loads(json.dumps(src.to_state()))  # JSON-safe
    back = tokenizer_from_state(state)
    assert type(back) is type(src) and back == src and len(back) == len(src)
    assert back.encode_batch(FR) == src.encode_batch(FR)
    assert pickle.loads(pickle.dumps(src)).encode(FR[2]) == src.encode(FR[2])
    save_tokenizers(tmp_path / "vocab", src, tgt)
    assert load_tokenizers(tmp_path / "vocab") == (src, tgt)


def test_state_loads_with_torch_weights_only(train: Path) -> None:
    torch = pytest.importorskip("torch")
    tok, _ = build_tokenizers(train, params(**SMALL_SUBWORD), seed=1)
    buf = io.BytesIO()
    torch.save({"src_vocab": tok.to_state()}, buf)
    buf.seek(0)
    assert tokenizer_from_state(torch.load(buf, weights_only=True)["src_vocab"]) == tok


def test_bad_states_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(VocabError, match="unknown tokenizer kind 'bpe'"):
        tokenizer_from_state({"kind": "bpe", "version": 1})
    with pytest.raises(VocabError, match="must start with"):
        tokenizer_from_state({"kind": "word", "version": 1, "tokens": ["a", "b"]})
    with pytest.raises(VocabError, match="appears twice"):
        WordTokenizer([*SPECIALS, "a", "a"])
    (tmp_path / "src.json").write_text("{not json")
    with pytest.raises(VocabError, match="src.json: not valid JSON"):
        load_tokenizers(tmp_path)
    with pytest.raises(VocabError, match="src.json: file not found"):
        load_tokenizers(tmp_path / "missing")


def test_subword_is_deterministic(tmp_path: Path) -> None:
    train = write_pairs(tmp_path / "big.parquet", FR * 15, EN * 15)  # 300 sentences
    for kw in ({}, {"model_type": "unigram"}, {"max_sentences": 150}):
        p = params(**SMALL_SUBWORD, **kw)
        a, _ = build_tokenizers(train, p, seed=7)
        b, _ = build_tokenizers(train, p, seed=7)
        assert a.model == b.model and len(a.model) > 100


def test_subword_vocab_size_too_large_names_the_key(train: Path) -> None:
    with pytest.raises(VocabError, match=r"vocab\.vocab_size=5000 is too large .* at most \d+"):
        build_tokenizers(train, params(kind="subword", vocab_size=5000), seed=1)
    with pytest.raises(VocabError, match=r"vocab\.vocab_size=16 is too small"):
        build_tokenizers(train, params(kind="subword", vocab_size=16), seed=1)


def test_iter_texts_streams_and_checks(tmp_path: Path) -> None:
    path = write_pairs(tmp_path / "t.parquet", [f"s{i}" for i in range(10)], ["t"] * 10)
    batches = list(iter_texts(path, "src", batch_rows=4))
    assert [len(b) for b in batches] == [4, 4, 2] and batches[2] == ["s8", "s9"]
    with pytest.raises(VocabError, match=r"t\.parquet: no column 'text'"):
        next(iter_texts(path, "text"))
    with pytest.raises(VocabError, match="nope.parquet: file not found"):
        next(iter_texts(tmp_path / "nope.parquet", "src"))
    nulls = tmp_path / "n.parquet"
    pq.write_table(pa.table({"src": ["a", None, "b"]}), nulls)
    with pytest.raises(VocabError, match="n.parquet: column 'src' is null at row 1"):
        list(iter_texts(nulls, "src"))


def test_metrics(train: Path, tmp_path: Path) -> None:
    valid = write_pairs(tmp_path / "valid.parquet", ["le chat zz .", "le chien"], ["the cat", "a"])
    src, tgt = build_tokenizers(train, params(kind="word", joint=False), seed=1)
    m = vocab_metrics(src, tgt, {"train": train, "valid": valid})
    assert m["kind"] == "word" and m["joint"] is False
    assert m["src_vocab_size"] == len(src) and m["tgt_vocab_size"] == len(tgt)
    assert m["sentences_valid"] == 2 and m["sentences_train"] == 30
    assert m["src_unk_rate_valid"] == pytest.approx(1 / 6, abs=1e-6)
    assert m["tgt_unk_rate_valid"] == 0.0 and m["src_unk_rate_train"] == 0.0
    assert m["src_tokens_per_sentence_valid"] == 3.0 and m["tgt_tokens_per_sentence_valid"] == 1.5
    words = sum(len(t.split()) for t in EN) / len(EN)
    assert m["tgt_tokens_per_sentence_train"] == pytest.approx(words, abs=1e-4)
    assert all(isinstance(v, str | int | float) for v in m.values())
