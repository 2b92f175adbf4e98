"""The per-chunk work of prepare: decode, check, normalise, filter, hash.

A :class:`ChunkProcessor` is a pure function of one :class:`~nmt.data.readers.Chunk`,
so chunks can be processed in any process; :class:`ChunkPool` runs it on a process pool
and hands results back in input order, which keeps the output independent of the
number of workers. Hashes are 64-bit blake2b digests salted with the seed: stable
across runs, machines and Python versions, unlike ``hash()``.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from itertools import compress
from typing import Literal

import numpy as np
import pyarrow as pa

from nmt.config.data import FilterParams, NormalizeParams
from nmt.data.filters import CODES, KEPT, PairFilter, empty_side, invalid_chars, scrub_invalid
from nmt.data.normalize import Normalizer
from nmt.data.readers import Chunk, decode_chunk

__all__ = [
    "SPLITS",
    "ChunkPool",
    "ChunkProcessor",
    "ChunkResult",
    "assign_splits",
    "pair_hash",
    "seed_salt",
    "text_hash",
]

SPLITS: tuple[str, ...] = ("train", "valid", "test")
_INVALID_CHARS = CODES["invalid_chars"]
# What invalid_chars looks for, in UTF-8: C0 controls (bar tab, LF, CR), DEL, C1
# controls (\xc2\x80-\xc2\x9f) and U+FFFD (\xef\xbf\xbd).
_INVALID_UTF8_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\xc2[\x80-\x9f]|\xef\xbf\xbd")
_ALLOWED_ASCII = bytes(range(0x20, 0x7F)) + b"\t\n\r"


@dataclass
class ChunkResult:
    """What survives of one chunk. ``codes``: (lines,) uint8, 0 where a pair was kept,
    else its drop code; the other fields hold the kept pairs, (kept,) each, in order."""

    codes: np.ndarray
    src: pa.Array  # normalised source
    tgt: pa.Array  # normalised target
    ref: pa.Array  # target as read, whitespace-trimmed
    src_hash: np.ndarray  # uint64, text_hash of src
    tgt_hash: np.ndarray  # uint64, text_hash of tgt


def text_hash(texts: Sequence[str], salt: bytes) -> np.ndarray:
    """(len(texts),) uint64: the 8-byte blake2b digest of each UTF-8 text, salted.

    A salt (up to 16 bytes, see :func:`seed_salt`) costs nothing, where a key would
    add a whole compression block to every short sentence.
    """
    digests = b"".join(
        hashlib.blake2b(t.encode("utf-8"), digest_size=8, salt=salt).digest() for t in texts
    )
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


def pair_hash(src_hash: np.ndarray, tgt_hash: np.ndarray) -> np.ndarray:
    """Combine two (n,) uint64 hashes into one per pair (odd multiply: a bijection of tgt)."""
    return src_hash ^ (tgt_hash * np.uint64(0x9E3779B97F4A7C15) + np.uint64(0x632BE59BD9B4E019))


def assign_splits(src_hash: np.ndarray, valid: float, test: float) -> np.ndarray:
    """(n,) uint8 split index into :data:`SPLITS` from (n,) uint64 source hashes.

    The top 53 bits give a uniform number in [0, 1): below ``test`` is test, below
    ``test + valid`` is valid, the rest train; equal sources always share a split.
    """
    u = (src_hash >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return np.where(u < test, 2, np.where(u < test + valid, 1, 0)).astype(np.uint8)


def _may_hold_invalid(chunk: Chunk) -> bool:
    """False when no line of the chunk can fail :func:`invalid_chars` (most chunks).

    Deleting printable ASCII first leaves only whole multi-byte sequences and control
    bytes, so the search runs over a few percent of the chunk and still sees each
    sequence intact. Entities in SGML could decode to anything: always check those.
    """
    if chunk.html:
        return True
    return any(
        _INVALID_UTF8_BYTES.search(block.translate(None, _ALLOWED_ASCII))
        for block in (chunk.src, chunk.tgt)
        if block is not None
    )


def seed_salt(seed: int) -> bytes:
    """The 16-byte blake2b salt that makes every hash depend on the seed."""
    return hashlib.blake2b(str(seed).encode("ascii"), digest_size=16).digest()


class ChunkProcessor:
    """Turn a raw chunk into a :class:`ChunkResult` (callable; picklable arguments)."""

    def __init__(
        self,
        normalize: NormalizeParams,
        filters: FilterParams,
        seed: int,
        english_side: Literal["src", "tgt"] | None = None,
        corpus_normalize: Mapping[str, NormalizeParams] | None = None,
    ) -> None:
        self.normalizer = Normalizer(normalize)
        # Steps of a corpus's own, before the shared ones: {corpus name: Normalizer}.
        self.corpus_normalizers = {
            name: Normalizer(params) for name, params in (corpus_normalize or {}).items()
        }
        self.filter = PairFilter(filters, english_side)
        self.salt = seed_salt(seed)

    def __call__(self, chunk: Chunk, test_set: bool = False, corpus: str = "") -> ChunkResult:
        """``test_set``: keep every readable, non-empty pair (no length/prefix filters).
        ``corpus``: the chunk's corpus, whose own normalisation (if any) runs first."""
        dec = decode_chunk(chunk)
        codes = dec.codes
        rows = np.flatnonzero(codes == KEPT)  # the line of each pair in dec.src/dec.tgt
        src, tgt = dec.src, dec.tgt
        # Whole-list steps (map, comprehensions) rather than one loop: half the overhead.
        if test_set and _may_hold_invalid(chunk):
            # A test set is kept whole, so its segment count matches the published one:
            # stray control characters (e.g. a mis-decoded dash) become spaces instead.
            src, tgt = scrub_invalid(src), scrub_invalid(tgt)
        elif _may_hold_invalid(chunk):
            pairs = zip(src, tgt, strict=True)
            bad = [bool(invalid_chars(s) or invalid_chars(t)) for s, t in pairs]
            rows, (src, tgt) = _drop(codes, rows, bad, [_INVALID_CHARS] * sum(bad), src, tgt)
        ref = [t.strip() for t in tgt]
        own = self.corpus_normalizers.get(corpus)
        if own is not None:
            src, tgt = list(map(own, src)), list(map(own, tgt))
        src = list(map(self.normalizer, src))
        tgt = list(map(self.normalizer, tgt))
        reasons = list(map(empty_side if test_set else self.filter, src, tgt))
        if any(reasons):
            drop = [r is not None for r in reasons]
            dropped = [CODES[r] for r in reasons if r is not None]
            _, (src, tgt, ref) = _drop(codes, rows, drop, dropped, src, tgt, ref)
        return ChunkResult(
            codes=codes,
            src=pa.array(src, pa.string()),
            tgt=pa.array(tgt, pa.string()),
            ref=pa.array(ref, pa.string()),
            src_hash=text_hash(src, self.salt),
            tgt_hash=text_hash(tgt, self.salt),
        )


def _drop(
    codes: np.ndarray, rows: np.ndarray, drop: list[bool], reasons: list[int], *cols: list[str]
) -> tuple[np.ndarray, list[list[str]]]:
    """Give line ``rows[j]`` the next code of ``reasons`` where ``drop[j]``; return the
    rows and the columns (lists aligned with ``rows``) that are left."""
    mask = np.array(drop, dtype=bool)
    codes[rows[mask]] = reasons
    keep = [not d for d in drop]
    return rows[~mask], [list(compress(col, keep)) for col in cols]


_WORKER: ChunkProcessor | None = None


def _init_worker(*args: object) -> None:
    global _WORKER
    _WORKER = ChunkProcessor(*args)  # type: ignore[arg-type]


def _run(chunk: Chunk, test_set: bool, corpus: str) -> ChunkResult:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER(chunk, test_set, corpus)


class ChunkPool:
    """Run a :class:`ChunkProcessor` over chunks with ``workers`` processes, in order.

    ``workers <= 1`` runs in this process (no pool). Use as a context manager.
    """

    def __init__(
        self,
        normalize: NormalizeParams,
        filters: FilterParams,
        seed: int,
        english_side: Literal["src", "tgt"] | None = None,
        workers: int = 1,
        corpus_normalize: Mapping[str, NormalizeParams] | None = None,
    ) -> None:
        self._args = (normalize, filters, seed, english_side, dict(corpus_normalize or {}))
        self.workers = workers
        # Built here even when workers do the work: bad settings fail before any process.
        self._local = ChunkProcessor(*self._args)
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> ChunkPool:
        if self.workers > 1:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                # spawn: no fork of a process whose libraries may hold threads
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=self._args,
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def map(
        self, chunks: Iterable[Chunk], test_set: bool = False, corpus: str = ""
    ) -> Iterator[ChunkResult]:
        """Results in chunk order; at most ``2 * workers`` chunks are in flight.
        ``corpus`` names the corpus the chunks come from (see :class:`ChunkProcessor`)."""
        if self.workers <= 1:
            for chunk in chunks:
                yield self._local(chunk, test_set, corpus)
            return
        assert self._pool is not None, "use ChunkPool as a context manager"
        pending: deque[Future[ChunkResult]] = deque()
        try:
            for chunk in chunks:
                pending.append(self._pool.submit(_run, chunk, test_set, corpus))
                if len(pending) >= 2 * self.workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # a consumer that stops early (max_pairs) leaves nothing running
            for future in pending:
                future.cancel()
