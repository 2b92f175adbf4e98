"""Per-chunk processing: hashing, split assignment and the chunk processor."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from nmt.config.data import FilterParams, NormalizeParams
from nmt.data.filters import CODES, KEPT
from nmt.data.process import (
    ChunkProcessor,
    _may_hold_invalid,
    assign_splits,
    pair_hash,
    seed_salt,
    text_hash,
)
from nmt.data.readers import Chunk


def test_text_hash_is_salted_blake2b_and_pinned() -> None:
    salt = seed_salt(1234)
    assert len(salt) == 16 and seed_salt(1234) == salt != seed_salt(1235)
    h = text_hash(["hello", "été"], salt)
    assert h.dtype == np.uint64
    want = hashlib.blake2b(b"hello", digest_size=8, salt=salt).digest()
    assert int(h[0]) == int.from_bytes(want, "little")
    # pinned: a change here silently moves sentences between splits
    assert int(h[0]) == 0x8D2C6FC2D2B50D71
    assert text_hash(["hello"], seed_salt(1235))[0] != h[0]
    assert len(text_hash([], salt)) == 0


def test_pair_hash_depends_on_order_and_both_sides() -> None:
    a, b = text_hash(["un", "one"], seed_salt(0))
    assert pair_hash(np.array([a]), np.array([b])) != pair_hash(np.array([b]), np.array([a]))
    assert pair_hash(np.array([a]), np.array([a])) != pair_hash(np.array([a]), np.array([b]))


def test_assign_splits_fractions_and_determinism() -> None:
    hashes = np.random.default_rng(0).integers(0, 2**64, 100_000, dtype=np.uint64)
    splits = assign_splits(hashes, valid=0.1, test=0.05)
    counts = np.bincount(splits, minlength=3) / len(hashes)
    assert counts == pytest.approx([0.85, 0.1, 0.05], abs=0.005)
    assert np.array_equal(splits, assign_splits(hashes.copy(), valid=0.1, test=0.05))


def test_assign_splits_extremes() -> None:
    hashes = np.array([0, 2**64 - 1], dtype=np.uint64)
    assert assign_splits(hashes, 0.02, 0.02).tolist() == [2, 0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Élève – «ça» 日本\tok\r\n", False),
        ("nul\x00", True),
        ("bell\x07", True),
        ("nel\x85", True),
        ("bad\ufffd", True),
    ],
)
def test_may_hold_invalid_sees_every_invalid_character(text: str, expected: bool) -> None:
    assert _may_hold_invalid(Chunk(f"a\t{text}\n".encode())) is expected
    assert _may_hold_invalid(Chunk(b"a\n", f"{text}\n".encode())) is expected


def test_sgml_chunks_are_always_checked() -> None:
    assert _may_hold_invalid(Chunk(b"a\n", b"b\n", html=True))


def processor(**filters: object) -> ChunkProcessor:
    return ChunkProcessor(
        NormalizeParams(lowercase=True), FilterParams(**filters), seed=1, english_side="tgt"
    )


def test_processor_codes_every_line_and_keeps_the_rest() -> None:
    data = (
        b"Bonjour  le monde\tHello   World\n"
        b"nul\x00\tnul\n"
        b"vide\t   \n"
        b"un deux trois quatre\tone\n"
        b"Paris\tparis\n"
        b"pas de tabulation\n"
    )
    res = processor(max_tokens=3)(Chunk(data, columns=(0, 1)))
    names = {v: k for k, v in CODES.items()} | {KEPT: "kept"}
    assert [names[c] for c in res.codes.tolist()] == [
        "kept",
        "invalid_chars",
        "empty",
        "too_long",
        "identical",
        "bad_columns",
    ]
    assert res.src.to_pylist() == ["bonjour le monde"]
    assert res.tgt.to_pylist() == ["hello world"]
    assert res.ref.to_pylist() == ["Hello   World"]  # as read, only trimmed
    assert res.src_hash.tolist() == text_hash(["bonjour le monde"], seed_salt(1)).tolist()


def test_processor_test_set_mode_drops_only_empty_and_scrubs_controls() -> None:
    long = " ".join(["mot"] * 80)
    data = f"{long}\tword\nParis\tParis\nvide\t\nles pompiers\x96 qui\tx\x00y\n".encode()
    res = processor(max_tokens=3)(Chunk(data), test_set=True)
    assert res.codes.tolist() == [KEPT, KEPT, CODES["empty"], KEPT]
    assert res.src.to_pylist() == [long, "paris", "les pompiers qui"]
    assert res.ref.to_pylist() == ["word", "Paris", "x y"]


def test_a_corpus_of_its_own_normalisation_runs_first() -> None:
    own = {"europarl": NormalizeParams(nfkc=False, ascii_fold="drop", alpha_tokens_only=True)}
    proc = ChunkProcessor(
        NormalizeParams(lowercase=True), FilterParams(), seed=1, corpus_normalize=own
    )
    chunk = Chunk(b"Voil\xc3\xa0 3 \xc3\xa9t\xc3\xa9s\tHere are 3 summers\n")
    res = proc(chunk, corpus="europarl")
    assert (res.src.to_pylist(), res.tgt.to_pylist()) == (["voila etes"], ["here are summers"])
    assert proc(chunk, corpus="tatoeba").src.to_pylist() == ["voilà 3 étés"]
    assert proc(chunk, test_set=True, corpus="europarl").src.to_pylist() == ["voila etes"]
