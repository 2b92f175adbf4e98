"""Each CPU kernel against the plain path it replaces, on this CPU and capped at AVX2.

    python benchmarks/bench_kernels.py                 # this CPU's full instruction set
    python benchmarks/bench_kernels.py --avx2          # and PyTorch, oneDNN, MKL at AVX2

For each decision of ``nmt.models.kernels.choose``, times the plain path and the kernel,
twice each, interleaved, and prints the better of each pair and their ratio:

- training (the ``bench_train.py`` reference configuration, fp32, ``--batches``): the
  decoder unrolled by autograd against ``BahdanauGRU``;
- greedy search in batches (``bench_decode.py``'s model and sentences): the plain step,
  then ``PackedStep`` (products against oneDNN-packed weights), ``FoldedStep`` (the folded
  step and table encoder, packed), and the two-stage argmax on top (what ``choose`` picks);
- beam search (beam 5) in batches: plain against what ``choose`` picks.

``--avx2`` runs the same in a fresh process with ``ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2``, an approximation of an AVX2-only CPU.
Figures only, no asserts; run it on an otherwise quiet machine.
"""

from __future__ import annotations

import nmt  # noqa: F401  (first: it sets how OpenMP threads wait, before torch loads them)

# isort: split
import contextlib
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import torch

import nmt.models.kernels as kernels
from bench_decode import CPU, _model, _sentences
from machine import AVX2_ONLY, print_machine
from nmt.inference.search import SearchSettings
from nmt.inference.translate import decode_ids
from nmt.models.kernels import Kernels

Pick = Callable[[Kernels], Kernels]
CHOSEN: Pick = lambda chosen: chosen  # noqa: E731
PLAIN: Pick = lambda chosen: Kernels()  # noqa: E731


@contextlib.contextmanager
def kernels_as(pick: Pick) -> Iterator[None]:
    """``choose`` returns ``pick(what it would choose)`` inside the block."""
    real = kernels.choose
    kernels.choose = lambda model: pick(real(model))
    try:
        yield
    finally:
        kernels.choose = real


def best_of_two(variants: dict[str, Pick], run: Callable[[], float]) -> dict[str, float]:
    """``run()``'s best rate under each variant, two rounds interleaved."""
    rates: dict[str, float] = {}
    for _ in range(2):
        for name, pick in variants.items():
            with kernels_as(pick):
                rates[name] = max(rates.get(name, 0.0), run())
    return rates


def training_rates(batches: int) -> dict[str, float]:
    from bench_train import batched, load_data, reference_batches

    data = load_data()
    order = reference_batches(data, limit=batches)
    variants = {
        "autograd unroll": lambda c: dataclasses.replace(c, unroll=None),
        "BahdanauGRU": CHOSEN,
    }
    return best_of_two(variants, lambda: batched(data, order, None, 20)[0])


def search_rates(checkpoint: Path, test: Path, sentences: int, beam: int) -> dict[str, float]:
    model, tokenizer, _ = _model(checkpoint)
    ids, _ = _sentences(test, tokenizer, sentences)

    def rate(settings: SearchSettings) -> Callable[[], float]:
        def run() -> float:
            decode_ids(model, ids[:64], settings, CPU, 192)  # warm: new shapes, new primitives
            start = time.perf_counter()
            decode_ids(model, ids, settings, CPU, 192)
            return len(ids) / (time.perf_counter() - start)

        return run

    greedy = {
        "plain step": PLAIN,
        "PackedStep": lambda c: Kernels(packed_step=True),
        "FoldedStep": lambda c: Kernels(folded_step=c.folded_step, packed_step=True),
        "+ two-stage argmax (chosen)": CHOSEN,
    }
    rates = {f"greedy: {k}": v for k, v in best_of_two(greedy, rate(SearchSettings())).items()}
    beamed = best_of_two({"plain": PLAIN, "chosen": CHOSEN}, rate(SearchSettings(beam_size=beam)))
    rates |= {f"beam {beam}: {k}": v for k, v in beamed.items()}
    return rates


def table(rates: dict[str, float], unit: str) -> list[str]:
    """Lines: each rate, and its ratio to the first of its group (the plain path)."""
    lines, base = [], {}
    for name, value in rates.items():
        group = name.split(":")[0] if ":" in name else "train"
        base.setdefault(group, value)
        lines.append(f"  {name:<40}{value:>10,.0f} {unit:<8}{value / base[group]:>6.2f}x")
    return lines


@click.command()
@click.option("--avx2", is_flag=True, help="Also run capped at AVX2, in a fresh process.")
@click.option("--batches", type=click.IntRange(min=40), default=60, show_default=True)
@click.option("--checkpoint", type=Path, default=Path("models/attention/model.pt"))
@click.option("--test", type=Path, default=Path("data/prepared/test.parquet"))
@click.option("--sentences", type=int, default=1024, show_default=True)
@click.option("--beam", type=int, default=5, show_default=True)
@click.option("--child", is_flag=True, hidden=True)
def main(
    avx2: bool, batches: int, checkpoint: Path, test: Path, sentences: int, beam: int,
    child: bool,
) -> None:  # fmt: skip
    """Tokens/s (training) and sentences/s (search) of each kernel against the plain path."""
    torch.set_num_threads(2)
    if not child:
        print_machine(2)
    click.echo(f"PyTorch kernels {torch.backends.cpu.get_cpu_capability()}:")
    for line in table(training_rates(batches), "tok/s"):
        click.echo(line)
    for line in table(search_rates(checkpoint, test, sentences, beam), "sent/s"):
        click.echo(line)
    if avx2:
        args = [sys.executable, __file__, "--child", "--batches", str(batches)]
        args += ["--checkpoint", str(checkpoint), "--test", str(test)]
        args += ["--sentences", str(sentences), "--beam", str(beam)]
        subprocess.run(args, env={**os.environ, **AVX2_ONLY}, check=True)


if __name__ == "__main__":
    main()
