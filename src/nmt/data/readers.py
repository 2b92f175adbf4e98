"""Streaming readers for the corpus formats of the registry: TSV, aligned text, WMT SGML.

Reading is split in two so that the costly half can run in worker processes: a reader
yields :class:`Chunk` objects (a few MiB of whole raw lines, as bytes: cheap to read and
to pickle), and :func:`decode_chunk` turns one into text. A line that cannot be decoded or
split is not an error: it gets a drop code (see :mod:`nmt.data.filters`) and the stage
goes on. Structural problems (a missing file, aligned files of unequal length) are errors
that name the files.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import compress, islice, repeat
from pathlib import Path
from typing import BinaryIO

import numpy as np

from nmt.data.corpora import Corpus
from nmt.data.filters import CODES, KEPT

__all__ = [
    "Chunk",
    "CorpusFormatError",
    "Decoded",
    "aligned_chunks",
    "corpus_chunks",
    "corpus_paths",
    "count_lines",
    "decode_chunk",
    "head_chunks",
    "sgml_chunks",
    "tsv_chunks",
]

CHUNK_BYTES = 1 << 22  # 4 MiB of raw text per chunk: ~20,000 Europarl lines
_SEG = re.compile(rb"<seg\b[^>]*>(.*)</seg>")
_BOM = "\ufeff"
_INVALID_UTF8 = CODES["invalid_utf8"]
_BAD_COLUMNS = CODES["bad_columns"]
_EMPTY = CODES["empty"]


class CorpusFormatError(ValueError):
    """A corpus's files do not fit together (e.g. aligned files of unequal length)."""


@dataclass(frozen=True)
class Chunk:
    """Consecutive whole lines of one corpus, undecoded (one ``bytes`` per side).

    ``tgt is None``: TSV, each line of ``src`` holds both sides and ``columns`` gives
    the index of the source and the target column. Otherwise line ``i`` of ``src`` and of
    ``tgt`` are the two sides of pair ``i`` (aligned text, or SGML segments with
    ``html``: entities to unescape).
    """

    src: bytes
    tgt: bytes | None = None
    columns: tuple[int, int] = (0, 1)
    html: bool = False


@dataclass
class Decoded:
    """The text of one chunk. ``codes``: (lines,) uint8, 0 where line ``i`` was read,
    else its drop code; ``src``/``tgt`` hold the sides of the lines read, in order (as
    many as zeros in ``codes``), with a BOM and the line end (LF or CRLF) removed."""

    src: list[str]
    tgt: list[str]
    codes: np.ndarray


def _lines(block: bytes) -> list[str | None]:
    """Split a block into decoded lines; ``None`` for a line that is not UTF-8."""
    lines = _decode_lines(block)
    if b"\r" in block:
        lines = [x[:-1] if x and x.endswith("\r") else x for x in lines]
    if b"\xef\xbb\xbf" in block:  # a byte-order mark, at the start of a file or a line
        lines = [x[1:] if x and x.startswith(_BOM) else x for x in lines]
    return lines


def _decode_lines(block: bytes) -> list[str | None]:
    """Decode the block in as few calls as there are bad lines, plus one.

    One decode of a whole block is much faster than one per line. A decoding error
    names its first bad byte; the line around it becomes ``None`` and decoding goes on
    after it ("\n" never occurs inside a UTF-8 sequence, so lines are independent).
    """
    out: list[str | None] = []
    pos, size = 0, len(block)
    while pos < size:
        try:
            text = block[pos:].decode("utf-8")
        except UnicodeDecodeError as err:
            bad = pos + err.start
            start = max(block.rfind(b"\n", pos, bad) + 1, pos)  # the bad line's first byte
            end = block.find(b"\n", bad)
            if start > pos:
                out.extend(block[pos : start - 1].decode("utf-8").split("\n"))
            out.append(None)
            pos = size + 1 if end == -1 else end + 1
            continue
        out.extend(text.split("\n"))
        if block.endswith(b"\n"):
            out.pop()
        break
    return out


def decode_chunk(chunk: Chunk) -> Decoded:
    """Decode a chunk line by line; bad lines get a drop code instead of stopping."""
    if chunk.tgt is None:
        return _decode_tsv(_lines(chunk.src), chunk.columns)
    return _decode_aligned(_lines(chunk.src), _lines(chunk.tgt), chunk.html)


def _decode_tsv(lines: list[str | None], columns: tuple[int, int]) -> Decoded:
    n = len(lines)
    codes = np.zeros(n, dtype=np.uint8)
    if None in lines:
        bad = [line is None for line in lines]
        codes[np.flatnonzero(bad)] = _INVALID_UTF8
        lines = ["" if line is None else line for line in lines]
    text: list[str] = lines  # type: ignore[assignment]  # no None left
    tabs = np.fromiter(map(str.count, text, repeat("\t", n)), dtype=np.int64, count=n)
    odd = np.flatnonzero(tabs != 1)  # not exactly two columns: rare, one by one
    if len(odd):
        text = list(text)
        for i in odd.tolist():
            if tabs[i] == 2:  # a third column (attribution) is ignored
                text[i] = text[i][: text[i].rindex("\t")]
            elif codes[i] == KEPT:
                codes[i] = _EMPTY if not text[i].strip() else _BAD_COLUMNS
        text = list(compress(text, (codes == KEPT).tolist()))
    # Every line left has one tab: split them all at once, two fields per line in order.
    fields = "\t".join(text).split("\t") if text else []
    s_col, t_col = columns
    return Decoded(fields[s_col::2], fields[t_col::2], codes)


def _decode_aligned(src: list[str | None], tgt: list[str | None], unescape: bool) -> Decoded:
    if len(src) != len(tgt):  # only if a file changed after its lines were counted
        raise CorpusFormatError(f"chunk sides differ in length: {len(src)} != {len(tgt)}")
    codes = np.zeros(len(src), dtype=np.uint8)
    if None in src or None in tgt:
        bad = [s is None or t is None for s, t in zip(src, tgt, strict=True)]
        codes[np.flatnonzero(bad)] = _INVALID_UTF8
        good = [not b for b in bad]
        src, tgt = list(compress(src, good)), list(compress(tgt, good))
    text_src: list[str] = src  # type: ignore[assignment]  # no None left
    text_tgt: list[str] = tgt  # type: ignore[assignment]
    if unescape:
        text_src = [html.unescape(s) for s in text_src]
        text_tgt = [html.unescape(t) for t in text_tgt]
    return Decoded(text_src, text_tgt, codes)


def count_lines(path: str | os.PathLike[str]) -> int:
    """Lines in a file, counting a last line without a newline; reads in 1 MiB blocks."""
    n, last = 0, b"\n"
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            n += block.count(b"\n")
            last = block[-1:]
    return n + (last != b"\n")


def _blocks(f: BinaryIO, chunk_bytes: int) -> Iterator[bytes]:
    """Blocks of about ``chunk_bytes`` that end at a line end (or the end of the file)."""
    while block := f.read(chunk_bytes):
        if not block.endswith(b"\n"):
            block += f.readline()
        yield block


def tsv_chunks(
    path: str | os.PathLike[str], src_col: int, tgt_col: int, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[Chunk]:
    """Chunks of a tab-separated file whose columns ``src_col``/``tgt_col`` hold the sides."""
    with open(path, "rb") as f:
        for block in _blocks(f, chunk_bytes):
            yield Chunk(block, columns=(src_col, tgt_col))


def aligned_chunks(
    src_path: str | os.PathLike[str],
    tgt_path: str | os.PathLike[str],
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[Chunk]:
    """Chunks of two line-aligned files; unequal line counts raise here, before any chunk."""
    n_src, n_tgt = count_lines(src_path), count_lines(tgt_path)
    if n_src != n_tgt:
        raise CorpusFormatError(
            f"aligned files differ in length: {src_path} has {n_src} lines, {tgt_path} has {n_tgt}"
        )
    return _aligned(src_path, tgt_path, chunk_bytes)


def _aligned(
    src_path: str | os.PathLike[str], tgt_path: str | os.PathLike[str], chunk_bytes: int
) -> Iterator[Chunk]:
    with open(src_path, "rb") as fs, open(tgt_path, "rb") as ft:
        for block in _blocks(fs, chunk_bytes):
            lines = block.count(b"\n") + (not block.endswith(b"\n"))
            yield Chunk(block, b"".join(islice(ft, lines)))


def _segments(path: str | os.PathLike[str]) -> Iterator[bytes]:
    with open(path, "rb") as f:
        for line in f:
            m = _SEG.search(line)
            if m:
                yield m.group(1)


def sgml_chunks(
    src_path: str | os.PathLike[str],
    tgt_path: str | os.PathLike[str],
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[Chunk]:
    """Chunks of two WMT SGML files, paired by ``<seg>`` order (as sacrebleu does);
    unequal segment counts raise here, before any chunk."""
    n_src = sum(1 for _ in _segments(src_path))
    n_tgt = sum(1 for _ in _segments(tgt_path))
    if n_src != n_tgt:
        raise CorpusFormatError(
            f"SGML files differ in segments: {src_path} has {n_src}, {tgt_path} has {n_tgt}"
        )
    return _sgml(src_path, tgt_path, chunk_bytes)


def _sgml(
    src_path: str | os.PathLike[str], tgt_path: str | os.PathLike[str], chunk_bytes: int
) -> Iterator[Chunk]:
    src: list[bytes] = []
    tgt: list[bytes] = []
    size = 0
    for s, t in zip(_segments(src_path), _segments(tgt_path), strict=True):
        src.append(s + b"\n")  # a segment holds no newline: the regex stops at one
        tgt.append(t + b"\n")
        size += len(s)
        if size >= chunk_bytes:
            yield Chunk(b"".join(src), b"".join(tgt), html=True)
            src, tgt, size = [], [], 0
    if src:
        yield Chunk(b"".join(src), b"".join(tgt), html=True)


def _first_lines(block: bytes, n: int) -> bytes:
    """The first ``n`` lines of ``block`` (all of it when it has no more)."""
    end = -1
    for _ in range(n):
        end = block.find(b"\n", end + 1)
        if end == -1:
            return block
    return block[: end + 1]


def head_chunks(chunks: Iterable[Chunk], lines: int) -> Iterator[Chunk]:
    """The chunks of the first ``lines`` raw lines (pairs, for aligned and SGML chunks);
    reading stops there."""
    left = lines
    for chunk in chunks:
        n = chunk.src.count(b"\n") + (not chunk.src.endswith(b"\n"))
        if n < left:
            left -= n
            yield chunk
            continue
        src = _first_lines(chunk.src, left)
        tgt = None if chunk.tgt is None else _first_lines(chunk.tgt, left)
        yield Chunk(src, tgt, chunk.columns, chunk.html)
        break
    close = getattr(chunks, "close", None)
    if close is not None:  # a reader's generator: close its files now, not at collection
        close()


def corpus_paths(
    corpus: Corpus, raw_dir: str | os.PathLike[str], src_lang: str, tgt_lang: str
) -> tuple[Path, Path]:
    """The raw files holding the source and the target side; missing ones raise."""
    members = corpus.members_for(src_lang, tgt_lang)
    paths = tuple(Path(raw_dir) / corpus.name / members[lang] for lang in (src_lang, tgt_lang))
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"corpus {corpus.name!r}: {path} not found (run download)")
    return paths[0], paths[1]


def corpus_chunks(
    corpus: Corpus,
    raw_dir: str | os.PathLike[str],
    src_lang: str,
    tgt_lang: str,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[Chunk]:
    """Chunks of ``corpus`` in the direction src_lang -> tgt_lang, whatever its format."""
    src_path, tgt_path = corpus_paths(corpus, raw_dir, src_lang, tgt_lang)
    if corpus.format == "tsv":
        cols = corpus.columns
        return tsv_chunks(src_path, cols.index(src_lang), cols.index(tgt_lang), chunk_bytes)
    if corpus.format == "aligned":
        return aligned_chunks(src_path, tgt_path, chunk_bytes)
    return sgml_chunks(src_path, tgt_path, chunk_bytes)
