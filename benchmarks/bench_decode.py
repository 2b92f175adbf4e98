"""Benchmark decoding throughput on CPU: batched vs one sentence at a time, greedy and beam.

    python benchmarks/bench_decode.py                        # defaults below
    python benchmarks/bench_decode.py --sentences 256 --sequential 32 --threads 2
    python benchmarks/bench_decode.py --device cuda          # the same on the GPU

The model is the trained ``models/attention/model.pt`` when it exists, else a freshly
built attention model of the default size (``RNNParams()``: 256-d GRU, Bahdanau
attention) with 8,000-token vocabularies; the output says which. Sentences are the first
``--sentences`` of ``data/prepared/test.parquet`` when it exists (tokenised with the
checkpoint's tokenizer), else synthetic id sequences of 5-40 tokens. An untrained model
rarely emits ``<eos>``, so its outputs run to the length cap: slower per sentence than a
trained model, but the same work for both ways of batching.

After one untimed pass over the batches (a warm-up), prints, for each of ``--rounds``
rounds, sentences per second for greedy search in batches (the sentences sorted by length
and cut into batches of at most ``--batch-size`` sentences and ``--max-tokens`` tokens with
padding, as the evaluate stage decodes) and one sentence at a time (about ``--sequential``
sentences evenly spaced in length order, each timed right after the batch that holds it
and one untimed sentence that warms the caches, so that both see the same load on a shared
machine), and their ratio; the median ratio over the rounds; then batched beam search.
No asserts on time.
"""

from __future__ import annotations

import nmt  # noqa: F401  (first: it sets how OpenMP threads wait, before torch loads them)

# isort: split

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
import numpy as np
import pyarrow.parquet as pq
import torch

from machine import competitors, describe_competitors, print_machine
from nmt.config.evaluate import EvaluateParams
from nmt.config.model import RNNParams
from nmt.inference.search import SearchSettings, prepare
from nmt.inference.translate import decode_ids, length_batches
from nmt.models import Seq2SeqModel, build_model
from nmt.training.checkpoint import load_model

CPU = torch.device("cpu")
EVALUATE = EvaluateParams()  # batched as the evaluate stage decodes by default
T = TypeVar("T")


def _model(checkpoint: Path, device: torch.device) -> tuple[Seq2SeqModel, object | None, str]:
    if checkpoint.is_file():
        loaded = load_model(checkpoint, device)
        return loaded.model, loaded.src_tokenizer, f"trained checkpoint {checkpoint}"
    torch.manual_seed(0)
    model = build_model(RNNParams(), 8000, 8000).eval().to(device)
    return model, None, "freshly built RNNParams() attention model (untrained, 8000/8000 vocab)"


def _sentences(test: Path, tokenizer: object | None, n: int) -> tuple[list[list[int]], str]:
    if tokenizer is not None and test.is_file():
        texts = pq.read_table(test, columns=["src"]).column("src").to_pylist()[:n]
        ids = tokenizer.encode_batch(texts)  # type: ignore[attr-defined]
        return [s for s in ids if s], f"{test} (first {n})"
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 41, n)
    ids = [rng.integers(4, 8000, int(k)).tolist() for k in lengths]
    return ids, f"synthetic, {n} sentences of 5-40 tokens"


def _timed(fn: Callable[[], T]) -> tuple[float, T]:
    """Seconds that ``fn()`` took, and its result."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _interleaved(
    model: Seq2SeqModel,
    ids: list[list[int]],
    settings: SearchSettings,
    batch_size: int,
    max_tokens: int | None,
    sequential: int,
    device: torch.device = CPU,
) -> tuple[float, float, int, list[list[int]]]:
    """Seconds for all of ``ids`` in length-sorted batches, and for about ``sequential`` of
    them one at a time (evenly spaced in length order, so the same sentences whatever the
    batching); the outputs of the batches (in input order). Each batch's sentences of that
    sample are decoded right after the batch, so both see the same machine load."""
    batched_s = single_s = 0.0
    singles = 0
    hyps: list[list[int]] = [[] for _ in ids]
    by_length = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    sample = set(by_length[:: max(1, len(ids) // max(1, sequential))])
    prepared = prepare(model)  # as the evaluate stage does, once for all batches

    def run(sources: list[list[int]], size: int) -> list[list[int]]:
        return decode_ids(
            model, sources, settings, device, size, prepared=prepared, max_tokens=max_tokens
        )

    for idx in length_batches([len(s) for s in ids], batch_size, max_tokens):
        chunk = [ids[i] for i in idx]
        seconds, out = _timed(lambda c=chunk: run(c, batch_size))
        batched_s += seconds
        for i, hyp in zip(idx, out, strict=True):
            hyps[i] = hyp
        few = [ids[i] for i in idx if i in sample]
        if few:
            run(few[:1], 1)  # untimed: a batch leaves the caches cold for the first sentence
        single_s += _timed(lambda f=few: run(f, 1))[0]
        singles += len(few)
    return batched_s, single_s, singles, hyps


@click.command()
@click.option("--checkpoint", type=Path, default=Path("models/attention/model.pt"))
@click.option("--test", type=Path, default=Path("data/prepared/test.parquet"))
@click.option("--sentences", type=int, default=512, show_default=True)
@click.option(
    "--sequential",
    type=int,
    default=64,
    show_default=True,
    help="How many sentences to decode one at a time.",
)
@click.option(
    "--batch-size",
    type=int,
    default=EVALUATE.batch_size,
    show_default=True,
    help="As evaluate.batch_size.",
)
@click.option(
    "--max-tokens",
    type=int,
    default=EVALUATE.max_tokens,
    show_default=True,
    help="As evaluate.max_tokens; 0: no cap.",
)
@click.option("--beam", type=int, default=EVALUATE.beam_size, show_default=True)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Times to run the batched and one-at-a-time greedy measurement; each is printed.",
)
@click.option(
    "--threads",
    type=int,
    default=1,
    show_default=True,
    help="torch threads; 1 gives steady figures on a shared machine.",
)
@click.option(
    "--contention",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Also time greedy search beside this many CPU-bound processes, each in a session "
    "of its own (at nice --competitor-nice), against a quiet round in the same run.",
)
@click.option("--competitor-nice", type=click.IntRange(0, 19), default=19, show_default=True)
@click.option(
    "--device", "device_name", type=click.Choice(["cpu", "cuda"]), default="cpu",
    show_default=True, help="Where the model decodes.",
)  # fmt: skip
def main(
    checkpoint: Path, test: Path, sentences: int, sequential: int, batch_size: int,
    max_tokens: int, beam: int, rounds: int, threads: int, contention: int, competitor_nice: int,
    device_name: str,
) -> None:  # fmt: skip
    """Print decoding throughput (sentences per second) on CPU or CUDA."""
    device = torch.device(device_name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise click.ClickException("--device cuda: no CUDA device is available")
    print_machine(threads)
    if device.type == "cuda":
        click.echo(f"GPU: {torch.cuda.get_device_name(0)}")
    cap = max_tokens or None
    model, tokenizer, what = _model(checkpoint, device)
    ids, source = _sentences(test, tokenizer, sentences)
    greedy, beamed = SearchSettings(beam_size=1), SearchSettings(beam_size=beam)
    click.echo(f"model: {what}")
    click.echo(
        f"data: {source}; {len(ids)} sentences, mean {np.mean([len(s) for s in ids]):.1f} tokens"
    )
    click.echo(f"torch threads: {threads}, batch size {batch_size}, max tokens {cap}")

    # Warm-up: one untimed pass over the batches. oneDNN builds a kernel for each matrix
    # shape the first time it meets it, which makes the first pass about 0.1-0.4 s slower.
    decode_ids(model, ids, greedy, device, batch_size, max_tokens=cap)
    prepare_s, _ = _timed(lambda: prepare(model))
    click.echo(f"search preparation (once per model and settings): {prepare_s * 1e3:.1f} ms")
    speed_ups = []
    for r in range(1, rounds + 1):
        b_s, s_s, singles, hyps = _interleaved(
            model, ids, greedy, batch_size, cap, sequential, device
        )
        batched, single = len(ids) / b_s, singles / s_s
        speed_ups.append(batched / single)
        click.echo(
            f"round {r}: greedy, batched {batched:7.1f} sent/s ({len(ids)} in {b_s:.2f}s); "
            f"one at a time {single:6.1f} sent/s ({singles} in {s_s:.2f}s); "
            f"speed-up {batched / single:.1f}x"
        )
    click.echo(f"speed-up of batching, median of {rounds} rounds: {np.median(speed_ups):.1f}x")
    beam_s, _ = _timed(lambda: decode_ids(model, ids, beamed, device, batch_size, max_tokens=cap))
    click.echo(
        f"beam {beam}, batched: {len(ids) / beam_s:.1f} sent/s ({len(ids)} in {beam_s:.2f}s)"
    )
    if contention:
        quiet = _interleaved(model, ids, greedy, batch_size, cap, sequential, device)
        with competitors(contention, competitor_nice):
            shared = _interleaved(model, ids, greedy, batch_size, cap, sequential, device)
        click.echo(f"greedy beside {describe_competitors(contention, competitor_nice, True)}:")
        for what, k, n in (("batched", 0, len(ids)), ("one at a time", 1, quiet[2])):
            rate_quiet, rate_shared = n / quiet[k], n / shared[k]
            click.echo(
                f"  {what}: {rate_shared:,.1f} sent/s against {rate_quiet:,.1f} quiet "
                f"= {rate_shared / rate_quiet:.2f}x"
            )


if __name__ == "__main__":
    main()
