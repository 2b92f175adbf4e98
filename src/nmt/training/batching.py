"""Tokenised pairs held compactly, length-bucketed batches, and padding.

Sentences are tokenised once (``encode_batch``) and kept as two flat int32 arrays with
offsets (the CSR layout), not as millions of Python lists. Each epoch's batches are cut
from an order drawn from ``seed + epoch``, so a resumed run sees the same batches as an
uninterrupted one:

1. shuffle all pairs;
2. sort by length inside pools of ``bucket_pool`` batches (bucketing: little padding,
   while batches still differ from epoch to epoch);
3. cut batches: either ``batch_size`` sentences, or as many sentences as keep the padded
   size ``n * (max src len + max tgt len + 1)`` within ``batch_tokens``;
4. shuffle the batches.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import torch
from torch import Tensor

from nmt.specials import EOS_ID, PAD_ID, SOS_ID
from nmt.vocab import Tokenizer

ENCODE_CHUNK = 10_000  # sentences handed to encode_batch at a time


@dataclass(frozen=True)
class TokenizedPairs:
    """Token ids of N pairs: ``src[src_offsets[i]:src_offsets[i + 1]]`` is pair i's source.

    Ids carry no ``<sos>``/``<eos>``; :func:`collate` adds them.
    """

    src: np.ndarray  # (total src tokens,) int32
    src_offsets: np.ndarray  # (N + 1,) int64
    tgt: np.ndarray  # (total tgt tokens,) int32
    tgt_offsets: np.ndarray  # (N + 1,) int64

    def __len__(self) -> int:
        return len(self.src_offsets) - 1

    @property
    def src_lengths(self) -> np.ndarray:
        return np.diff(self.src_offsets)

    @property
    def tgt_lengths(self) -> np.ndarray:
        return np.diff(self.tgt_offsets)

    def select(self, indices: np.ndarray | Sequence[int]) -> TokenizedPairs:
        """The pairs at ``indices``, in that order."""
        idx = np.asarray(indices, dtype=np.int64)
        src, src_off = _gather(self.src, self.src_offsets, idx)
        tgt, tgt_off = _gather(self.tgt, self.tgt_offsets, idx)
        return TokenizedPairs(src, src_off, tgt, tgt_off)


def _gather(flat: np.ndarray, offsets: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, ...]:
    lengths = offsets[idx + 1] - offsets[idx]
    new_offsets = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    # Position j of the output reads flat[start of its row + j - start of its output row].
    rows = np.repeat(np.arange(len(idx)), lengths)
    pos = np.arange(new_offsets[-1]) - new_offsets[rows] + offsets[idx][rows]
    return flat[pos], new_offsets


def _flatten(lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    offsets = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int32, count=offsets[-1])
    return flat, offsets


def _encode(texts: Sequence[str], tok: Tokenizer) -> tuple[np.ndarray, np.ndarray]:
    flats, offsets, base = [], [np.zeros(1, dtype=np.int64)], 0
    for start in range(0, len(texts), ENCODE_CHUNK):
        flat, off = _flatten(tok.encode_batch(list(texts[start : start + ENCODE_CHUNK])))
        flats.append(flat)
        offsets.append(off[1:] + base)
        base += int(off[-1])
    flat = np.concatenate(flats) if flats else np.zeros(0, dtype=np.int32)
    return flat, np.concatenate(offsets)


def tokenize_pairs(
    src_texts: Sequence[str],
    tgt_texts: Sequence[str],
    src_tokenizer: Tokenizer,
    tgt_tokenizer: Tokenizer,
) -> TokenizedPairs:
    """Encode both sides once, in chunks, into a :class:`TokenizedPairs`."""
    if len(src_texts) != len(tgt_texts):
        raise ValueError(f"{len(src_texts)} sources but {len(tgt_texts)} targets")
    src, src_off = _encode(src_texts, src_tokenizer)
    tgt, tgt_off = _encode(tgt_texts, tgt_tokenizer)
    return TokenizedPairs(src, src_off, tgt, tgt_off)


def nonempty(pairs: TokenizedPairs) -> np.ndarray:
    """Indices of the pairs whose source and target both have at least one token."""
    return np.flatnonzero((pairs.src_lengths > 0) & (pairs.tgt_lengths > 0))


def sample_indices(n: int, k: int | None, seed: int) -> np.ndarray:
    """A seeded sample of ``min(k, n)`` indices of ``range(n)``, in increasing order."""
    if k is None or k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def make_batches(
    src_lengths: np.ndarray,
    tgt_lengths: np.ndarray,
    *,
    batch_tokens: int | None = None,
    batch_size: int | None = None,
    bucket_pool: int = 50,
    seed: int = 0,
    epoch: int = 0,
    shuffle: bool = True,
    passes: int = 1,
) -> list[np.ndarray]:
    """Index arrays of the batches of one epoch (see the module doc).

    With ``shuffle=False`` the pairs are sorted by length once and the batches come in
    that order (validation). A pair larger than ``batch_tokens`` on its own makes a batch
    of one. ``passes`` > 1 makes the epoch that many passes over the pairs, each ordered
    as an epoch of its own (for tiny data trained for thousands of passes: one validation
    and checkpoint per epoch, not per pass).
    """
    if passes > 1:
        return [
            batch
            for r in range(passes)
            for batch in make_batches(
                src_lengths, tgt_lengths, batch_tokens=batch_tokens, batch_size=batch_size,
                bucket_pool=bucket_pool, seed=seed, epoch=epoch * passes + r, shuffle=shuffle,
            )
        ]  # fmt: skip
    if (batch_tokens is None) == (batch_size is None):
        raise ValueError("give exactly one of batch_tokens and batch_size")
    n = len(src_lengths)
    if n == 0:
        return []
    src_lengths = np.asarray(src_lengths, dtype=np.int64)
    tgt_lengths = np.asarray(tgt_lengths, dtype=np.int64)
    cost = src_lengths + tgt_lengths + 1
    if batch_size is not None:
        per_batch = batch_size
    else:
        per_batch = max(1, int(batch_tokens // max(1.0, float(cost.mean()))))
    rng = np.random.default_rng(seed + epoch)
    order = rng.permutation(n) if shuffle else np.arange(n)
    pool = n if not shuffle else per_batch * bucket_pool
    if pool > 1 and (bucket_pool > 1 or not shuffle):
        # Sort each pool by (src len, tgt len), stably, so ties keep the shuffled order.
        key = src_lengths * (int(tgt_lengths.max()) + 1) + tgt_lengths
        order = np.concatenate(
            [
                chunk[np.argsort(key[chunk], kind="stable")]
                for chunk in np.array_split(order, range(pool, n, pool))
            ]
        )
    if batch_size is not None:
        batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    else:
        batches = _cut_by_tokens(order, src_lengths, tgt_lengths, batch_tokens)
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def _cut_by_tokens(
    order: np.ndarray, src_lengths: np.ndarray, tgt_lengths: np.ndarray, budget: int
) -> list[np.ndarray]:
    batches, start, max_s, max_t = [], 0, 0, 0
    s_len, t_len = src_lengths[order].tolist(), tgt_lengths[order].tolist()
    for i in range(len(order)):
        new_s, new_t = max(max_s, s_len[i]), max(max_t, t_len[i])
        if i > start and (i - start + 1) * (new_s + new_t + 1) > budget:
            batches.append(order[start:i])
            start, new_s, new_t = i, s_len[i], t_len[i]
        max_s, max_t = new_s, new_t
    batches.append(order[start:])
    return batches


@dataclass
class Batch:
    """A padded batch. ``tgt_in`` = ``<sos>`` + target, ``tgt_out`` = target + ``<eos>``.

    src: (B, S) long; src_lengths: (B,) long (on CPU, as packing wants);
    tgt_in, tgt_out: (B, T) long, T = longest target + 1; indices: (B,) rows of the pairs.
    """

    src: Tensor
    src_lengths: Tensor
    tgt_in: Tensor
    tgt_out: Tensor
    indices: np.ndarray
    n_tokens: int  # real target tokens, <eos> included: what the loss is averaged over

    def to(self, device: torch.device) -> Batch:
        nb = device.type == "cuda"
        return Batch(
            self.src.to(device, non_blocking=nb),
            self.src_lengths,
            self.tgt_in.to(device, non_blocking=nb),
            self.tgt_out.to(device, non_blocking=nb),
            self.indices,
            self.n_tokens,
        )


def _pad(flat: np.ndarray, offsets: np.ndarray, idx: np.ndarray, extra: int) -> np.ndarray:
    """Rows ``idx`` padded to the longest + ``extra`` columns: (B, L + extra) int64."""
    starts, lengths = offsets[idx], offsets[idx + 1] - offsets[idx]
    width = int(lengths.max()) + extra
    cols = np.arange(width)
    mask = cols[None, :] < lengths[:, None]
    pos = np.minimum(starts[:, None] + cols[None, :], max(len(flat) - 1, 0))
    out = flat[pos].astype(np.int64) if len(flat) else np.zeros(mask.shape, np.int64)
    out[~mask] = PAD_ID
    return out


def collate(pairs: TokenizedPairs, indices: np.ndarray) -> Batch:
    """Pad the pairs at ``indices`` into a :class:`Batch`."""
    idx = np.asarray(indices, dtype=np.int64)
    src = _pad(pairs.src, pairs.src_offsets, idx, 0)
    tgt = _pad(pairs.tgt, pairs.tgt_offsets, idx, 1)
    tgt_len = pairs.tgt_offsets[idx + 1] - pairs.tgt_offsets[idx]
    tgt_out = tgt.copy()
    tgt_out[np.arange(len(idx)), tgt_len] = EOS_ID
    tgt_in = np.empty_like(tgt)
    tgt_in[:, 0] = SOS_ID
    tgt_in[:, 1:] = tgt[:, :-1]
    return Batch(
        src=torch.from_numpy(src),
        src_lengths=torch.from_numpy(pairs.src_offsets[idx + 1] - pairs.src_offsets[idx]),
        tgt_in=torch.from_numpy(tgt_in),
        tgt_out=torch.from_numpy(tgt_out),
        indices=idx,
        n_tokens=int(tgt_len.sum()) + len(idx),
    )


class Texts(Sequence[str]):
    """Strings kept in an Arrow array (one buffer, no Python object per string); indexing
    makes the Python string of the element asked for, iteration a chunk at a time."""

    def __init__(self, array: Any) -> None:
        self._array = array  # pyarrow Array or ChunkedArray of strings

    def __len__(self) -> int:
        return len(self._array)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return self._array[i % len(self)].as_py()

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self), ENCODE_CHUNK):
            yield from self._array.slice(start, ENCODE_CHUNK).to_pylist()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def take(self, indices: np.ndarray) -> Texts:
        return Texts(self._array.take(indices))


class _Flat:
    """Token ids appended a chunk of sentences at a time: flat int32 arrays and offsets."""

    def __init__(self) -> None:
        self.flats: list[np.ndarray] = []
        self.offsets: list[np.ndarray] = [np.zeros(1, dtype=np.int64)]
        self.base = 0

    def add(self, ids: list[list[int]]) -> None:
        flat, off = _flatten(ids)
        self.flats.append(flat)
        self.offsets.append(off[1:] + self.base)
        self.base += int(off[-1])

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        flat = np.concatenate(self.flats) if self.flats else np.zeros(0, dtype=np.int32)
        self.flats = []
        return flat, np.concatenate(self.offsets)


def _pair_chunks(file: Any, keep: np.ndarray, rows: int) -> Iterable[tuple[list[str], list[str]]]:
    """(sources, targets) of the rows ``keep`` (increasing) among the first ``rows``, read
    a batch of about :data:`ENCODE_CHUNK` rows at a time."""
    start = 0
    for batch in file.iter_batches(batch_size=ENCODE_CHUNK, columns=["src", "tgt"]):
        if start >= rows:
            break
        lo, hi = np.searchsorted(keep, [start, min(start + batch.num_rows, rows)])
        if hi > lo:
            picked = batch.take(keep[lo:hi] - start)
            yield picked.column("src").to_pylist(), picked.column("tgt").to_pylist()
        start += batch.num_rows


def read_split(
    path: str | os.PathLike[str],
    src_tokenizer: Tokenizer,
    tgt_tokenizer: Tokenizer,
    *,
    head: int | None = None,
    sample: int | None = None,
    seed: int = 0,
) -> tuple[TokenizedPairs, Texts]:
    """Tokenise a prepared parquet split (``src``, ``tgt``, ``ref`` columns).

    ``head`` keeps the first rows, ``sample`` a seeded sample (both None: every row).
    Pairs with an empty side after tokenisation are dropped. Returns the pairs and the
    matching ``ref`` strings (the BLEU references, kept in Arrow). The texts are read and
    tokenised a chunk at a time, so the whole corpus is never held as Python strings.
    """
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
        missing = {"src", "tgt", "ref"} - set(file.schema_arrow.names)
        if missing:
            raise KeyError(f"no column {', '.join(sorted(missing))}")
        rows = file.metadata.num_rows if head is None else min(head, file.metadata.num_rows)
        keep = sample_indices(rows, sample, seed)
        refs = Texts(file.read(columns=["ref"]).column("ref").slice(0, rows)).take(keep)
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f"{path}: cannot read src/tgt/ref columns: {err}") from None
    src, tgt = _Flat(), _Flat()
    for sources, targets in _pair_chunks(file, keep, rows):
        src.add(src_tokenizer.encode_batch(sources))
        tgt.add(tgt_tokenizer.encode_batch(targets))
    pairs = TokenizedPairs(*src.arrays(), *tgt.arrays())
    ok = nonempty(pairs)
    if len(ok) < len(pairs):
        pairs, refs = pairs.select(ok), refs.take(ok)
    return pairs, refs
