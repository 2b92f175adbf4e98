"""Benchmark the prepare library on a synthetic TSV corpus of realistic shape.

    python benchmarks/bench_prepare.py                       # 2,000,000 pairs, all CPUs
    python benchmarks/bench_prepare.py --pairs 200000 --workers 1

Builds, in a temporary folder, ``raw/tatoeba/fra-eng/fra.txt`` (English<TAB>French;
sentence lengths drawn to look like Europarl: a median near 20 words and a tail past
the 50-token filter, accented French, ~2% repeated pairs, ~0.1% broken lines of every
kind: no tab, an empty side, invalid UTF-8, NUL, a BOM, CRLF, 5,000-word lines) and a
3,000-segment SGML test set, then times :func:`nmt.data.prepare.prepare` with the
default ``prepare`` params. Prints wall time, pairs per second, and peak memory: the
largest resident set of this process and of any worker (``ru_maxrss``), and the peak
of their sum (sampled from /proc every 50 ms).
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
import threading
import time
from pathlib import Path

import click
import numpy as np

from machine import print_machine
from nmt.config.data import DataParams, PrepareParams
from nmt.data.prepare import prepare

LETTERS_EN = "abcdefghijklmnopqrstuvwxyz"
LETTERS_FR = "abcdefghijklmnopqrstuvwxyzéèàçêô"
HALVES = 20_000  # pairs = first half x second half: many distinct pairs, few repeats


def _words(rng: np.random.Generator, letters: str, n: int) -> list[str]:
    lengths = rng.integers(1, 10, n)
    chars = np.array(list(letters))
    return ["".join(rng.choice(chars, k)) for k in lengths]


def _lengths(rng: np.random.Generator, n: int, median: float) -> np.ndarray:
    return np.clip(rng.lognormal(np.log(median), 0.6, n).astype(int), 1, 80)


def _halves(rng: np.random.Generator, vocab: list[str], counts: np.ndarray) -> list[str]:
    idx = rng.integers(0, len(vocab), counts.sum())
    out, pos = [], 0
    for k in counts:
        out.append(" ".join(vocab[i] for i in idx[pos : pos + k]))
        pos += k
    return out


def _bad_line(rng: np.random.Generator, en: str, fr: str) -> bytes:
    kind = rng.integers(0, 7)
    if kind == 0:
        return f"{en} {fr}\n".encode()  # no tab
    if kind == 1:
        return f"{en}\t\n".encode()  # empty side
    if kind == 2:
        return en.encode() + b"\t\xff\xfe" + fr.encode()[:10] + b"\n"  # invalid UTF-8
    if kind == 3:
        return f"{en}\t{fr}\x00\n".encode()  # NUL
    if kind == 4:
        return f"\ufeff{en}\t{fr}\n".encode()  # BOM (kept after stripping)
    if kind == 5:
        return f"{en}\t{fr}\r\n".encode()  # CRLF (kept after stripping)
    return ("word " * 5000 + f"\t{fr}\n").encode()  # a 5,000-word line


def make_corpus(raw: Path, pairs: int, seed: int = 0) -> None:
    """Write the synthetic corpus and test set under ``raw`` (streamed, in blocks)."""
    rng = np.random.default_rng(seed)
    en_vocab, fr_vocab = _words(rng, LETTERS_EN, 30_000), _words(rng, LETTERS_FR, 30_000)
    halves = []
    for _ in range(2):  # French runs ~15% longer than the English it translates
        en_len = _lengths(rng, HALVES, 9)
        fr_len = np.clip(np.rint(en_len * rng.normal(1.15, 0.15, HALVES)), 1, 90).astype(int)
        halves.append((_halves(rng, en_vocab, en_len), _halves(rng, fr_vocab, fr_len)))
    (en_a, fr_a), (en_b, fr_b) = halves
    path = raw / "tatoeba" / "fra-eng" / "fra.txt"
    path.parent.mkdir(parents=True)
    block = 100_000
    with open(path, "wb") as f:
        for start in range(0, pairs, block):
            n = min(block, pairs - start)
            i, j = rng.integers(0, HALVES, n), rng.integers(0, HALVES, n)
            repeat = np.flatnonzero(rng.random(n) < 0.02)  # repeat a pair seen before
            earlier = rng.integers(0, 1000, len(repeat))
            i[repeat], j[repeat] = i[earlier], j[earlier]
            bad = rng.random(n) < 0.001
            lines = []
            for k in range(n):
                en = f"{en_a[i[k]]} {en_b[j[k]]}."
                fr = f"{fr_a[i[k]]} {fr_b[j[k]]} ."
                lines.append(_bad_line(rng, en, fr) if bad[k] else f"{en}\t{fr}\n".encode())
            f.write(b"".join(lines))
    _make_test_set(raw / "newstest2014" / "test-full", rng, en_vocab, fr_vocab)


def _make_test_set(folder: Path, rng: np.random.Generator, en: list[str], fr: list[str]) -> None:
    folder.mkdir(parents=True)
    lengths = _lengths(rng, 3000, 18)
    sides = {"src.fr": _halves(rng, fr, lengths + 2), "ref.en": _halves(rng, en, lengths)}
    for side, segs in sides.items():
        body = "".join(f'<seg id="{k + 1}">{s} &amp; co.</seg>\n' for k, s in enumerate(segs))
        text = f'<refset setid="newstest2014">\n<doc docid="d1">\n{body}</doc>\n</refset>\n'
        (folder / f"newstest2014-fren-{side}.sgm").write_text(text, encoding="utf-8")


def _tree_rss_kib(pid: int) -> int:
    """Resident set of ``pid`` and its children, in KiB, from /proc."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


class _PeakSampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kib = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.05):
            self.peak_kib = max(self.peak_kib, _tree_rss_kib(os.getpid()))

    def stop(self) -> None:
        self._done.set()
        self.join()


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@click.command()
@click.option("--pairs", type=click.IntRange(min=1000), default=2_000_000, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=os.cpu_count() or 1)
@click.option("--chunk-bytes", type=click.IntRange(min=1024), default=1 << 22, show_default=True)
@click.option("--metrics", is_flag=True, help="Also print the metrics prepare returns.")
def main(pairs: int, workers: int, chunk_bytes: int, metrics: bool) -> None:
    """Time prepare on a synthetic corpus of PAIRS pairs."""
    print_machine()
    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
        raw, out = Path(tmp) / "raw", Path(tmp) / "prepared"
        t0 = time.perf_counter()
        make_corpus(raw, pairs)
        size = (raw / "tatoeba" / "fra-eng" / "fra.txt").stat().st_size
        click.echo(
            f"corpus: {pairs:,} lines, {size / 2**20:.0f} MiB, built in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        data = DataParams(src_lang="fr", tgt_lang="en", corpora=["tatoeba"])
        sampler = _PeakSampler()
        sampler.start()
        cpu0 = _cpu_seconds()
        t0 = time.perf_counter()
        result = prepare(
            raw,
            out,
            data=data,
            params=PrepareParams(),
            seed=1234,
            workers=workers,
            chunk_bytes=chunk_bytes,
        )
        wall = time.perf_counter() - t0
        cpu = _cpu_seconds() - cpu0
        sampler.stop()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**10
    click.echo(
        f"prepare: {wall:.1f} s wall, {pairs / wall:,.0f} pairs/s, workers {workers}, "
        f"{cpu:.1f} CPU s (this process and workers; compare when the machine is shared)"
    )
    click.echo(
        f"peak RSS: main {own:.0f} MiB, largest worker {child:.0f} MiB, "
        f"sum of the process tree {sampler.peak_kib / 2**10:.0f} MiB"
    )
    click.echo(f"kept {result['corpora']['tatoeba']['kept']:,}; splits {result['splits']}")
    if metrics:
        click.echo(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
