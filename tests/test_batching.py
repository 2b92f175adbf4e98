import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from nmt.training.batching import (
    TokenizedPairs,
    collate,
    make_batches,
    nonempty,
    read_split,
    sample_indices,
    tokenize_pairs,
)
from nmt.vocab import EOS_ID, PAD_ID, SOS_ID, SPECIALS, WordTokenizer

WORDS = [f"w{i}" for i in range(20)]
TOK = WordTokenizer(list(SPECIALS) + WORDS)


def texts(n: int, seed: int = 0, lo: int = 1, hi: int = 12) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(lo, hi))) for _ in range(n)]


def pairs(n: int = 200) -> tuple[TokenizedPairs, list[str], list[str]]:
    src, tgt = texts(n, 1), texts(n, 2)
    return tokenize_pairs(src, tgt, TOK, TOK), src, tgt


def test_tokenize_keeps_ids_compact_and_exact():
    p, src, tgt = pairs(50)
    assert len(p) == 50
    assert p.src.dtype == np.int32 and p.src_offsets.dtype == np.int64
    for i in (0, 17, 49):
        assert p.src[p.src_offsets[i] : p.src_offsets[i + 1]].tolist() == TOK.encode(src[i])
        assert p.tgt[p.tgt_offsets[i] : p.tgt_offsets[i + 1]].tolist() == TOK.encode(tgt[i])
    picked = p.select([5, 2, 5])
    assert picked.src_lengths.tolist() == [p.src_lengths[5], p.src_lengths[2], p.src_lengths[5]]
    assert picked.tgt[: picked.tgt_offsets[1]].tolist() == TOK.encode(tgt[5])


def test_collate_pads_to_batch_max_with_sos_and_eos():
    p, src, tgt = pairs(10)
    idx = np.array([3, 0, 7])
    b = collate(p, idx)
    s_len = [len(TOK.encode(src[i])) for i in idx]
    t_len = [len(TOK.encode(tgt[i])) for i in idx]
    assert b.src.shape == (3, max(s_len)) and b.src.dtype == torch.long
    assert b.tgt_in.shape == b.tgt_out.shape == (3, max(t_len) + 1)
    assert b.src_lengths.tolist() == s_len
    assert b.n_tokens == sum(t_len) + 3
    for row, i in enumerate(idx):
        ids = TOK.encode(tgt[i])
        n = len(ids)
        assert b.src[row, : s_len[row]].tolist() == TOK.encode(src[i])
        assert (b.src[row, s_len[row] :] == PAD_ID).all()
        assert b.tgt_in[row, : n + 1].tolist() == [SOS_ID, *ids]
        assert b.tgt_out[row, : n + 1].tolist() == [*ids, EOS_ID]
        assert (b.tgt_out[row, n + 1 :] == PAD_ID).all() and (b.tgt_in[row, n + 1 :] == 0).all()


def test_token_batches_cover_every_pair_once_within_budget():
    p, _, _ = pairs(300)
    batches = make_batches(p.src_lengths, p.tgt_lengths, batch_tokens=120, seed=3, epoch=0)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(300))
    for b in batches:
        cost = len(b) * (p.src_lengths[b].max() + p.tgt_lengths[b].max() + 1)
        assert cost <= 120 or len(b) == 1


def test_bucketing_reduces_padding():
    p, _, _ = pairs(400)

    def padding(batches):
        return sum(len(b) * p.src_lengths[b].max() - p.src_lengths[b].sum() for b in batches)

    kw = dict(batch_size=16, seed=0, epoch=0)
    bucketed = make_batches(p.src_lengths, p.tgt_lengths, bucket_pool=25, **kw)
    plain = make_batches(p.src_lengths, p.tgt_lengths, bucket_pool=1, **kw)
    assert sorted(len(b) for b in plain) == sorted(len(b) for b in bucketed)
    assert padding(bucketed) < padding(plain) / 2


def test_batch_order_is_a_function_of_seed_plus_epoch():
    p, _, _ = pairs(200)
    kw = dict(batch_tokens=100)

    def run(seed, epoch):
        return [
            b.tolist()
            for b in make_batches(p.src_lengths, p.tgt_lengths, seed=seed, epoch=epoch, **kw)
        ]

    assert run(5, 2) == run(5, 2) == run(6, 1)  # seed + epoch is what counts
    assert run(5, 2) != run(5, 3)


def test_sentence_batches_and_sorted_validation_order():
    p, _, _ = pairs(50)
    batches = make_batches(p.src_lengths, p.tgt_lengths, batch_size=8, shuffle=False)
    assert [len(b) for b in batches] == [8] * 6 + [2]
    lengths = p.src_lengths[np.concatenate(batches)]
    assert (np.diff(lengths) >= 0).all()
    with pytest.raises(ValueError, match="exactly one"):
        make_batches(p.src_lengths, p.tgt_lengths, batch_size=8, batch_tokens=100)
    assert make_batches(np.zeros(0), np.zeros(0), batch_size=4) == []


def test_sample_indices_and_nonempty():
    assert sample_indices(10, None, 0).tolist() == list(range(10))
    s = sample_indices(100, 10, 7)
    assert len(s) == 10 and (np.diff(s) > 0).all()
    assert s.tolist() == sample_indices(100, 10, 7).tolist()
    p = tokenize_pairs(["w1", "", "w2 w3"], ["w4", "w5", ""], TOK, TOK)
    assert nonempty(p).tolist() == [0]


def test_read_split_keeps_refs_aligned(tmp_path):
    path = tmp_path / "valid.parquet"
    src, tgt = ["w1 w2", "", "w3", "w4 w5 w6"], ["w2 w1", "w0", "w3", "w6"]
    pq.write_table(pa.table({"src": src, "tgt": tgt, "ref": [t.upper() for t in tgt]}), path)
    p, refs = read_split(path, TOK, TOK, head=3)
    assert len(p) == 2 and refs == ["W2 W1", "W3"]
    with pytest.raises(ValueError, match="valid.parquet"):
        read_split(tmp_path / "nope" / "valid.parquet", TOK, TOK)


def test_passes_make_one_epoch_of_several_shuffled_passes():
    src, tgt = np.array([3, 5, 2, 7, 4, 6]), np.array([2, 4, 3, 5, 1, 6])
    kw = dict(batch_size=2, bucket_pool=1, seed=3)
    three = make_batches(src, tgt, epoch=1, passes=3, **kw)
    # each pass is the epoch a one-pass run would have at index epoch * passes + r
    expect = [b for r in range(3) for b in make_batches(src, tgt, epoch=3 + r, **kw)]
    assert len(three) == 9 and all(np.array_equal(a, b) for a, b in zip(three, expect, strict=True))
    for r in range(3):  # every pair once per pass
        assert sorted(np.concatenate(three[3 * r : 3 * r + 3]).tolist()) == list(range(6))
    one = make_batches(src, tgt, epoch=1, passes=1, **kw)
    plain = make_batches(src, tgt, epoch=1, **kw)
    assert all(np.array_equal(a, b) for a, b in zip(one, plain, strict=True))
