"""Time and memory of a full-size corpus on its way into training, stage by stage.

    python benchmarks/bench_corpus.py                      # 2,000,000 pairs
    python benchmarks/bench_corpus.py --pairs 100000 --steps 50

Writes, in a temporary folder, a synthetic Tatoeba-format corpus (``English<TAB>French``)
of ``--pairs`` pairs with Europarl-like lengths (lognormal, a mean of about 27 words per
side before the 50-token filter; French ~10% longer) over Zipf-distributed vocabularies of
random words, and the checkout's ``params.yaml`` with ``data.corpora: [tatoeba]`` and no
external test set. Then runs, each in a subprocess of its own:

1. ``prepare``: the prepare stage (``stages/prepare.py``);
2. ``vocab``: the vocab stage (the default joint 8,000-piece BPE, ``--vocab-size`` to
   change it);
3. ``train``: the train stage's loader (``read_split`` of ``train.parquet``, then the
   first epoch's batches) and the first ``--steps`` training steps of the default
   ``attention`` model with the default ``train`` params on the CPU.

Prints for each its wall time and its peak resident set (the child's ``ru_maxrss``, from
``os.wait4``; the largest process of its tree, e.g. a prepare worker), and for ``train``
the loader's time and peak apart, the token ids' bytes, and the peak against the 4 GB
target. No asserts: the figures depend on the machine and its load.
"""

from __future__ import annotations

import nmt  # noqa: F401  (first: it sets how OpenMP threads wait, before torch loads them)

# isort: split

import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
TARGET_GIB = 4.0
VOCAB_WORDS = 20_000
BLOCK = 100_000  # pairs generated and written at a time


def _vocabulary(rng: np.random.Generator, letters: str) -> np.ndarray:
    chars = np.array(list(letters))
    lengths = rng.integers(2, 10, VOCAB_WORDS)
    return np.array(["".join(rng.choice(chars, k)) for k in lengths], dtype=object)


def _zipf(n: int) -> np.ndarray:
    p = 1.0 / np.arange(1, n + 1)
    return p / p.sum()


def _sentences(rng: np.random.Generator, vocab: np.ndarray, p: np.ndarray, lengths: np.ndarray):
    ids = vocab[rng.choice(len(vocab), size=int(lengths.sum()), p=p)]
    ends = np.cumsum(lengths)
    return [" ".join(ids[e - k : e]) for e, k in zip(ends.tolist(), lengths.tolist(), strict=True)]


def make_corpus(path: Path, pairs: int, seed: int = 0) -> float:
    """Write the corpus to ``path``; return the mean English words per pair."""
    rng = np.random.default_rng(seed)
    en, fr = (
        _vocabulary(rng, "abcdefghijklmnopqrstuvwxyz"),
        _vocabulary(rng, "abcdeéèfghijklmnopqrstuvwxyzàç"),
    )
    p = _zipf(VOCAB_WORDS)
    words = 0
    path.parent.mkdir(parents=True)
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, pairs, BLOCK):
            n = min(BLOCK, pairs - start)
            en_len = np.clip(rng.lognormal(np.log(23.2), 0.55, n), 1, 120).astype(np.int64)
            fr_len = np.clip(np.rint(en_len * rng.normal(1.1, 0.1, n)), 1, 140).astype(np.int64)
            words += int(en_len.sum())
            lines = zip(_sentences(rng, en, p, en_len), _sentences(rng, fr, p, fr_len), strict=True)
            f.write("".join(f"{e} .\t{s} .\n" for e, s in lines))
    return words / pairs


def write_params(work: Path, vocab_size: int | None) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["data"].update(corpora=["tatoeba"], test_sets=[])
    if vocab_size is not None:
        params["vocab"]["vocab_size"] = vocab_size
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def run_stage(args: list[str], cwd: Path) -> tuple[float, float, str]:
    """Run ``args`` in a process of its own; its wall seconds, peak RSS (MiB) and output."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read().decode() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise click.ClickException(f"{' '.join(args)} failed ({proc.returncode}):\n{out}")
    return wall, usage.ru_maxrss / 2**10, out  # ru_maxrss is in KiB on Linux


def train_start(work: Path, steps: int) -> dict[str, float]:
    """The train stage's loader and its first ``steps`` steps, in this process."""
    import torch

    from nmt.config import load_params
    from nmt.models import build_model
    from nmt.threads import use_threads
    from nmt.training.batching import make_batches, read_split
    from nmt.training.loop import train_epoch
    from nmt.training.optim import build_optimizer
    from nmt.vocab import load_tokenizers

    params = load_params(work / "params.yaml", sections=["seed", "models", "train"])
    tp, seed = params.train, params.seed
    use_threads(tp.threads, "train.threads")
    start = time.perf_counter()
    src_tok, tgt_tok = load_tokenizers(work / "vocab")
    train, _ = read_split(
        work / "prepared" / "train.parquet", src_tok, tgt_tok, sample=tp.max_train_pairs, seed=seed
    )
    batches = make_batches(
        train.src_lengths, train.tgt_lengths, batch_tokens=tp.batch_tokens,
        batch_size=tp.batch_size, bucket_pool=tp.bucket_pool, seed=seed, epoch=0,
    )  # fmt: skip
    loaded = time.perf_counter() - start
    loader_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    torch.manual_seed(seed)
    model = build_model(params.models["attention"], len(src_tok), len(tgt_tok))
    stats = train_epoch(
        model, train, batches[:steps], build_optimizer(model, tp), step_scheduler=None,
        params=tp, ratio=1.0, device=torch.device("cpu"), dtype=None,
    )  # fmt: skip
    return {
        "pairs": len(train),
        "src_tokens": float(len(train.src)),
        "tgt_tokens": float(len(train.tgt)),
        "id_bytes": float(
            sum(a.nbytes for a in (train.src, train.tgt, train.src_offsets, train.tgt_offsets))
        ),
        "batches": len(batches),
        "loader_s": loaded,
        "loader_rss_mib": loader_rss,
        "steps": min(steps, len(batches)),
        "steps_s": stats["seconds"],
        "tokens_per_s": stats["tokens"] / stats["seconds"],
    }


@click.command()
@click.option("--pairs", type=click.IntRange(min=100), default=2_000_000, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--vocab-size", type=click.IntRange(min=100), default=None,
              help="vocab.vocab_size (default: params.yaml's).")  # fmt: skip
@click.option("--workers", type=click.IntRange(min=1), default=min(os.cpu_count() or 1, 4),
              show_default="CPUs, at most 4", help="prepare's worker processes.")  # fmt: skip
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Build the corpus and outputs in this new folder and keep it "
              "(default: a temporary folder).")  # fmt: skip
@click.option("--train-in", type=click.Path(path_type=Path), default=None, hidden=True)
def main(
    pairs: int, steps: int, vocab_size: int | None, workers: int, work: Path | None,
    train_in: Path | None,
) -> None:  # fmt: skip
    """Wall time and peak memory of prepare, vocab and the start of training."""
    if train_in is not None:  # the train step's own process
        click.echo(json.dumps(train_start(train_in, steps)))
        return
    rows: list[tuple[str, float, float]] = []
    if work is not None:
        work.mkdir(parents=True)
    folder = tempfile.TemporaryDirectory(prefix="bench-corpus-") if work is None else None
    with folder or contextlib.nullcontext():
        work = Path(folder.name) if folder else work
        t0 = time.perf_counter()
        mean = make_corpus(work / "raw" / "tatoeba" / "fra-eng" / "fra.txt", pairs)
        click.echo(f"corpus: {pairs:,} pairs, {mean:.1f} English words per pair on average, "
                   f"written in {time.perf_counter() - t0:.0f} s")  # fmt: skip
        write_params(work, vocab_size)
        py = sys.executable
        stages = ROOT / "stages"
        prepare = [py, str(stages / "prepare.py"), "--raw", "raw", "--out", "prepared",
                   "--metrics", "metrics/data.json", "--workers", str(workers)]  # fmt: skip
        vocab = [py, str(stages / "vocab.py"), "--prepared", "prepared", "--out", "vocab",
                 "--metrics", "metrics/vocab.json"]  # fmt: skip
        for name, args in (("prepare", prepare), ("vocab", vocab)):
            wall, rss, _ = run_stage(args, work)
            rows.append((name, wall, rss))
            click.echo(f"{name}: {wall:.1f} s, peak RSS {rss:,.0f} MiB")
        data = json.loads((work / "metrics" / "data.json").read_text())
        vocab_stats = json.loads((work / "metrics" / "vocab.json").read_text())
        click.echo(f"splits: {data['splits']}; vocab: {json.dumps(vocab_stats)[:300]}")
        args = [py, __file__, "--train-in", str(work), "--steps", str(steps)]
        wall, rss, out = run_stage(args, work)
        rows.append(("train", wall, rss))
        train = json.loads(out.strip().splitlines()[-1])
    click.echo(
        f"train: {wall:.1f} s, peak RSS {rss:,.0f} MiB; loader {train['loader_s']:.1f} s "
        f"(peak {train['loader_rss_mib']:,.0f} MiB): {train['pairs']:,} pairs, "
        f"{train['src_tokens'] / train['pairs']:.1f} / {train['tgt_tokens'] / train['pairs']:.1f} "
        f"source / target pieces per pair, ids {train['id_bytes'] / 2**20:,.0f} MiB, "
        f"{train['batches']:,} batches; {train['steps']} steps in {train['steps_s']:.1f} s "
        f"({train['tokens_per_s']:,.0f} target tokens/s)"
    )
    click.echo("\n| stage | wall time | peak RSS |\n|---|---:|---:|")
    for name, wall, rss in rows:
        click.echo(f"| {name} | {wall:,.1f} s | {rss:,.0f} MiB |")
    verdict = "within" if rss / 1024 <= TARGET_GIB else "OVER"
    click.echo(f"training peak {rss / 1024:.2f} GiB: {verdict} the {TARGET_GIB:.0f} GB target")


if __name__ == "__main__":
    main()
