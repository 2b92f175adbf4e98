"""Combine corpora into train/valid/test tables and keep the test sets clean.

:func:`prepare` streams every corpus chunk by chunk (its first ``head`` lines, if set)
through a :class:`~nmt.data.process.ChunkPool` (decode, normalise, filter), then in this
process: drops exact duplicate pairs (unless ``drop_duplicates`` is off), caps a corpus
at ``max_pairs``, and assigns each pair to a split by a hash of its normalised source
(or, with ``split.kind: train``, every pair to train, valid and test alike). Kept pairs
wait in an on-disk spool (Arrow IPC) until every test sentence is known; a second pass
then removes from train and valid each pair whose source or target occurs in a test
set, and writes Parquet files with :data:`~nmt.data.schema.PAIR_SCHEMA`. Memory stays
bounded by a few chunks plus one 64-bit hash per kept pair.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nmt.config.data import DataParams, PrepareParams, SplitParams
from nmt.data.corpora import get_corpus
from nmt.data.filters import CODES, KEPT, REASONS, TEST_SET_REASONS
from nmt.data.process import SPLITS, ChunkPool, ChunkResult, assign_splits, pair_hash
from nmt.data.readers import CHUNK_BYTES, Chunk, corpus_chunks, head_chunks
from nmt.data.schema import PAIR_SCHEMA
from nmt.utils import atomic_path

__all__ = ["Counts", "prepare"]

ROW_GROUP_ROWS = 100_000
_DUPLICATE = CODES["duplicate"]
_SPOOL_SCHEMA = pa.schema(
    [
        ("src", pa.string()),
        ("tgt", pa.string()),
        ("ref", pa.string()),
        ("corpus_id", pa.int32()),
        ("src_hash", pa.uint64()),
        ("tgt_hash", pa.uint64()),
    ]
)


@dataclass
class Counts:
    """Lines read and kept from one corpus, and drops per reason."""

    reasons: tuple[str, ...] = REASONS
    read: int = 0
    by_code: np.ndarray = field(default_factory=lambda: np.zeros(len(REASONS) + 1, np.int64))

    def add(self, codes: np.ndarray) -> None:
        """Count (lines,) uint8 codes: 0 kept, else the drop code of each line."""
        self.read += len(codes)
        self.by_code += np.bincount(codes, minlength=len(REASONS) + 1)

    @property
    def kept(self) -> int:
        return int(self.by_code[KEPT])

    def as_dict(self) -> dict[str, int]:
        out = {"read": self.read, "kept": self.kept, "dropped": self.read - self.kept}
        out.update({f"dropped_{r}": int(self.by_code[CODES[r]]) for r in self.reasons})
        return out


class _RowGroupWriter:
    """A Parquet writer that gathers small tables into row groups of ~ROW_GROUP_ROWS."""

    def __init__(self, path: Path) -> None:
        self._writer = pq.ParquetWriter(path, PAIR_SCHEMA)
        self._tables: list[pa.Table] = []
        self._rows = 0
        self.written = 0

    def write(self, table: pa.Table) -> None:
        self._tables.append(table)
        self._rows += table.num_rows
        self.written += table.num_rows
        if self._rows >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._tables:
            table = pa.concat_tables(self._tables).combine_chunks()
            self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self._tables, self._rows = [], 0

    def close(self) -> None:
        self._flush()
        self._writer.close()


def _pairs(src: pa.Array, tgt: pa.Array, ref: pa.Array, ids: Any, names: pa.Array) -> pa.Table:
    corpus = pa.DictionaryArray.from_arrays(pa.array(ids, pa.int32()), names)
    return pa.Table.from_arrays([src, tgt, ref, corpus], schema=PAIR_SCHEMA)


class _Combiner:
    """Deduplicate, cap and split the training corpora into a spool, one file per split.

    ``dedup`` off keeps every pair, repeats included. ``split.kind: train`` routes every
    pair to train (valid and test are copies of it, made when the spool is written out).
    """

    def __init__(self, spool_dir: Path, split: SplitParams, dedup: bool = True) -> None:
        self.split, self.dedup = split, dedup
        self.paths = {s: spool_dir / f"{s}.arrow" for s in SPLITS}
        self._writers = {s: pa.ipc.new_file(p, _SPOOL_SCHEMA) for s, p in self.paths.items()}
        self._seen: set[int] = set()  # pair hashes kept so far, across corpora
        self.test_src: list[np.ndarray] = []  # hashes of the held-out split
        self.test_tgt: list[np.ndarray] = []

    def add(self, results: Iterator[ChunkResult], corpus_id: int, cap: int | None) -> Counts:
        """Take a corpus's chunk results in order; stop after its ``cap``-th kept pair."""
        counts = Counts()
        for res in results:
            codes, keep, pairs = self._dedup(res)
            left = None if cap is None else cap - counts.kept
            full = left is not None and len(keep) >= left
            if full:  # count the lines up to the last pair the cap allows, no further
                keep = keep[:left]
                codes = codes[: int(np.flatnonzero(codes == KEPT)[left - 1]) + 1]
            counts.add(codes)
            if self.dedup:
                self._seen.update(pairs[keep].tolist())
            self._route(res, keep, corpus_id)
            if full:
                break
        return counts

    def _dedup(self, res: ChunkResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mark repeats (in this chunk or kept earlier) as duplicates. Returns the codes,
        the indices of the result rows left and the pair hash of every result row."""
        pairs = pair_hash(res.src_hash, res.tgt_hash)
        if not self.dedup:
            return res.codes, np.arange(len(pairs)), pairs
        fresh = np.zeros(len(pairs), dtype=bool)
        fresh[np.unique(pairs, return_index=True)[1]] = True  # first in this chunk
        new = set(pairs.tolist()) - self._seen  # C-speed set work, no Python loop
        fresh &= np.isin(pairs, np.fromiter(new, np.uint64, len(new)))
        codes = res.codes.copy()
        codes[np.flatnonzero(codes == KEPT)[~fresh]] = _DUPLICATE
        return codes, np.flatnonzero(fresh), pairs

    def _route(self, res: ChunkResult, keep: np.ndarray, corpus_id: int) -> None:
        if self.split.kind == "train":
            splits = np.zeros(len(keep), np.uint8)  # SPLITS[0]: train
        else:
            splits = assign_splits(res.src_hash[keep], self.split.valid, self.split.test)
        for code, name in enumerate(SPLITS):
            rows = keep[splits == code]
            if not len(rows):
                continue
            idx = pa.array(rows)
            src_hash, tgt_hash = res.src_hash[rows], res.tgt_hash[rows]
            if name == "test":
                self.test_src.append(src_hash)
                self.test_tgt.append(tgt_hash)
            batch = pa.record_batch(
                [
                    res.src.take(idx),
                    res.tgt.take(idx),
                    res.ref.take(idx),
                    pa.array(np.full(len(rows), corpus_id, np.int32)),
                    pa.array(src_hash),
                    pa.array(tgt_hash),
                ],
                schema=_SPOOL_SCHEMA,
            )
            self._writers[name].write_batch(batch)

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()


def _write_test_set(
    results: Iterator[ChunkResult], path: Path, corpus_id: int, names: pa.Array
) -> tuple[Counts, np.ndarray, np.ndarray]:
    """Write an external test set whole; return its counts and (src, tgt) hashes."""
    counts = Counts(reasons=TEST_SET_REASONS)
    src_hashes, tgt_hashes = [], []
    writer = _RowGroupWriter(path)
    try:
        for res in results:
            counts.add(res.codes)
            ids = np.full(len(res.src), corpus_id, np.int32)
            writer.write(_pairs(res.src, res.tgt, res.ref, ids, names))
            src_hashes.append(res.src_hash)
            tgt_hashes.append(res.tgt_hash)
    finally:
        writer.close()
    empty = np.zeros(0, np.uint64)
    return counts, np.concatenate([empty, *src_hashes]), np.concatenate([empty, *tgt_hashes])


def _write_splits(
    spool: dict[str, Path], out: Path, test_src: np.ndarray, test_tgt: np.ndarray, names: pa.Array
) -> tuple[dict[str, int], dict[str, int]]:
    """Copy the spool to Parquet, dropping from train/valid every pair whose source or
    target occurs in a test set. Returns rows written and rows removed, per split."""
    test_src, test_tgt = np.unique(test_src), np.unique(test_tgt)
    sizes, leaked = {}, {}
    for split, path in spool.items():
        writer = _RowGroupWriter(out / f"{split}.parquet")
        removed = 0
        with pa.OSFile(str(path)) as source:  # not mmap: mapped pages count as RSS
            reader = pa.ipc.open_file(source)
            for i in range(reader.num_record_batches):
                b = reader.get_batch(i)
                table = _pairs(b["src"], b["tgt"], b["ref"], b["corpus_id"], names)
                if split != "test":
                    leak = np.isin(b["src_hash"].to_numpy(), test_src) | np.isin(
                        b["tgt_hash"].to_numpy(), test_tgt
                    )
                    removed += int(leak.sum())
                    table = table.filter(pa.array(~leak))
                writer.write(table)
        writer.close()
        sizes[split] = writer.written
        if split != "test":
            leaked[split] = removed
    return sizes, leaked


def _check_names(params: PrepareParams, data: DataParams) -> None:
    """Every corpus a prepare mapping names must be one the run reads."""
    known = {"head": data.corpora, "max_pairs": data.corpora}
    known["normalize_corpora"] = [*data.corpora, *data.test_sets]
    for key, names in known.items():
        unknown = sorted(set(getattr(params, key)) - set(names))
        if unknown:
            where = "data.corpora" if key != "normalize_corpora" else "data.corpora or test_sets"
            raise ValueError(f"prepare.{key} names {unknown}, which {where} does not list")


def _english_side(src_lang: str, tgt_lang: str) -> Literal["src", "tgt"] | None:
    return "src" if src_lang == "en" else "tgt" if tgt_lang == "en" else None


def prepare(
    raw_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    data: DataParams,
    params: PrepareParams,
    seed: int,
    workers: int = 1,
    chunk_bytes: int = CHUNK_BYTES,
) -> dict[str, Any]:
    """Read ``raw_dir/<corpus>/<member>``, write ``out_dir`` (atomically, as a whole):
    ``train``, ``valid``, ``test`` and one ``<test set>.parquet`` per ``data.test_sets``.

    Returns the metrics: per corpus and test set ``read``, ``kept`` and
    ``dropped_<reason>``; rows per output file (``splits``); pairs removed from train and
    valid because a test set holds their source or target (``leaked``); with
    ``split.kind: train``, also ``split: {kind: train}`` (valid and test are copies of
    train). The result does not depend on ``workers`` or ``chunk_bytes``.
    """
    src, tgt = data.src_lang, data.tgt_lang
    names = [*data.corpora, *data.test_sets]
    _check_names(params, data)
    # Open every source first: a missing file or misaligned pair fails before any work.
    chunks: dict[str, Iterator[Chunk]] = {
        name: corpus_chunks(get_corpus(name, src, tgt), raw_dir, src, tgt, chunk_bytes)
        for name in names
    }
    for name, lines in params.head.items():
        chunks[name] = head_chunks(chunks[name], lines)
    dictionary = pa.array(names, pa.string())
    pool = ChunkPool(
        params.normalize,
        params.filters,
        seed,
        _english_side(src, tgt),
        workers=workers,
        corpus_normalize=params.normalize_corpora,
    )
    metrics: dict[str, Any] = {"corpora": {}, "test_sets": {}, "splits": {}, "leaked": {}}
    with pool, atomic_path(out_dir) as tmp, tempfile.TemporaryDirectory(dir=tmp.parent) as sp:
        tmp.mkdir()
        test_src, test_tgt = [], []
        for name in data.test_sets:
            path = tmp / f"{name}.parquet"
            results = pool.map(chunks[name], test_set=True, corpus=name)
            counts, s_hash, t_hash = _write_test_set(results, path, names.index(name), dictionary)
            metrics["test_sets"][name] = counts.as_dict()
            metrics["splits"][name] = counts.kept
            test_src.append(s_hash)
            test_tgt.append(t_hash)
        combiner = _Combiner(Path(sp), params.split, params.drop_duplicates)
        try:
            for i, name in enumerate(data.corpora):
                with contextlib.closing(pool.map(chunks[name], corpus=name)) as results:
                    counts = combiner.add(results, i, params.max_pairs.get(name))
                metrics["corpora"][name] = counts.as_dict()
        finally:
            combiner.close()
        sizes, leaked = _write_splits(
            combiner.paths,
            tmp,
            np.concatenate([*test_src, *combiner.test_src, np.zeros(0, np.uint64)]),
            np.concatenate([*test_tgt, *combiner.test_tgt, np.zeros(0, np.uint64)]),
            dictionary,
        )
        if params.split.kind == "train":  # judged on the training pairs themselves
            for split in ("valid", "test"):
                shutil.copyfile(tmp / "train.parquet", tmp / f"{split}.parquet")
                sizes[split] = sizes["train"]
            leaked = {"train": leaked["train"]}
            metrics["split"] = {"kind": "train"}
        metrics["splits"].update(sizes)
        metrics["leaked"] = leaked
    return metrics
