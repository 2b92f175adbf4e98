"""read_split reads and tokenises a split a chunk at a time, with the references in Arrow:
the same pairs, batches and training steps as tokenising the whole table at once."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sacrebleu
import torch

from nmt.config import TrainParams
from nmt.config.model import RNNParams
from nmt.models import build_model
from nmt.training import batching
from nmt.training.batching import (
    Texts,
    TokenizedPairs,
    collate,
    make_batches,
    nonempty,
    read_split,
    sample_indices,
    tokenize_pairs,
)
from nmt.training.loop import train_epoch
from nmt.training.optim import build_optimizer
from nmt.vocab import SPECIALS, WordTokenizer

WORDS = [f"w{i}" for i in range(30)]
TOK = WordTokenizer(list(SPECIALS) + WORDS[:25])  # w25..w29 are unknown
CPU = torch.device("cpu")


def whole_table(path, head=None, sample=None, seed=0) -> tuple[TokenizedPairs, list[str]]:
    """read_split as it was: the whole table, as Python strings, tokenised at once."""
    table = pq.read_table(path, columns=["src", "tgt", "ref"])
    if head is not None:
        table = table.slice(0, head)
    keep = sample_indices(table.num_rows, sample, seed)
    if len(keep) < table.num_rows:
        table = table.take(keep)
    pairs = tokenize_pairs(
        table.column("src").to_pylist(), table.column("tgt").to_pylist(), TOK, TOK
    )
    refs = table.column("ref").to_pylist()
    ok = nonempty(pairs)
    if len(ok) < len(pairs):
        pairs, refs = pairs.select(ok), [refs[i] for i in ok.tolist()]
    return pairs, refs


@pytest.fixture
def split(tmp_path):
    """500 pairs (some with an empty side) in row groups of 37 rows."""
    rng = np.random.default_rng(0)

    def side(lo: int) -> list[str]:
        return [" ".join(rng.choice(WORDS, size=rng.integers(lo, 15))) for _ in range(500)]

    src, tgt = side(0), side(0)
    path = tmp_path / "train.parquet"
    table = pa.table({"src": src, "tgt": tgt, "ref": [t.upper() + " ." for t in tgt]})
    pq.write_table(table, path, row_group_size=37)
    return path


@pytest.mark.parametrize(
    ("head", "sample"), [(None, None), (300, None), (None, 123), (200, 150), (1000, 499)]
)
def test_the_same_pairs_and_refs_as_the_whole_table(split, monkeypatch, head, sample):
    monkeypatch.setattr(batching, "ENCODE_CHUNK", 16)  # chunks across row groups
    want, want_refs = whole_table(split, head, sample, seed=7)
    got, refs = read_split(split, TOK, TOK, head=head, sample=sample, seed=7)
    for name in ("src", "src_offsets", "tgt", "tgt_offsets"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert isinstance(refs, Texts) and refs == want_refs and list(refs) == want_refs


def test_the_same_batches_and_training_steps(split):
    want, _ = whole_table(split)
    got, _ = read_split(split, TOK, TOK)
    params = TrainParams(batch_tokens=200)
    losses = []
    for pairs in (want, got):
        cut = {"batch_tokens": params.batch_tokens, "bucket_pool": params.bucket_pool}
        batches = make_batches(pairs.src_lengths, pairs.tgt_lengths, seed=3, epoch=1, **cut)
        torch.manual_seed(0)
        model = build_model(RNNParams(embedding_dim=8, hidden_dim=8), len(TOK), len(TOK))
        stats = train_epoch(
            model, pairs, batches[:5], build_optimizer(model, params), step_scheduler=None,
            params=params, ratio=1.0, device=CPU, dtype=None,
        )  # fmt: skip
        losses.append((batches, stats["loss"], collate(pairs, batches[0]).tgt_out))
    (b1, loss1, out1), (b2, loss2, out2) = losses
    assert len(b1) == len(b2) and all(np.array_equal(x, y) for x, y in zip(b1, b2, strict=True))
    assert loss1 == loss2 and torch.equal(out1, out2)


def test_texts_behave_as_a_list_of_strings():
    words = ["the cat sat on the mat", "a dog", "it is very cold this morning", "dd"]
    texts = Texts(pa.chunked_array([words[:3], words[3:]]))
    assert len(texts) == 4 and texts[1] == "a dog" and texts[-1] == "dd"
    assert texts[1:3] == words[1:3]
    assert list(texts) == words and texts == words and texts != words[:3]
    assert texts.take(np.array([3, 0])) == ["dd", words[0]]
    with pytest.raises(IndexError):
        texts[4]
    hyps = ["the cat sat on a mat", "a dog", "it is cold this morning", "dd"]
    assert sacrebleu.corpus_bleu(hyps, [texts]).score == sacrebleu.corpus_bleu(hyps, [words]).score


def test_a_missing_column_names_the_file(tmp_path):
    path = tmp_path / "valid.parquet"
    pq.write_table(pa.table({"src": ["w1"], "tgt": ["w2"]}), path)
    with pytest.raises(ValueError, match=r"valid\.parquet: cannot read .*ref"):
        read_split(path, TOK, TOK)
