"""How training copes with a shared CPU, for each way of setting torch's threads.

    python benchmarks/bench_threads.py                      # the table below, 100 batches
    python benchmarks/bench_threads.py --spin 1000 --spin 20000 --batches 200

Times the batched fp32 trainer of ``bench_train.py`` (its reference configuration) in a
fresh process per measurement, since libgomp reads how its threads wait only when torch
loads it, under each setting:

- ``libgomp default``: threads spin about 300,000 iterations before sleeping
  (``GOMP_SPINCOUNT=300000``, what an unset ``OMP_WAIT_POLICY`` gives);
- ``spin N``: ``GOMP_SPINCOUNT=N`` (``nmt.threads.SPIN_COUNT`` is what nmt sets; more
  with ``--spin``);
- ``passive``: ``OMP_WAIT_POLICY=PASSIVE``, sleeping at once;
- ``1 thread``: one torch thread (with nmt's spin);

each in three situations: quiet; beside one CPU-bound process in a session of its own
(another terminal's job: under Linux autogroup its niceness does not count against ours);
and two trainings at once, as ``dvc queue start -j 2`` runs them (their summed tokens/s).
Prints target tokens/s and each figure's ratio to the libgomp default's quiet rate. Figures
only, no asserts; run it on an otherwise quiet machine.
"""

from __future__ import annotations

import nmt  # noqa: F401  (first: it sets how OpenMP threads wait, before torch loads them)

# isort: split
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from machine import competitors, describe_competitors, print_machine
from nmt.threads import OPENMP_VARIABLES, SPIN_COUNT

HERE = Path(__file__).resolve().parent


def settings(spins: tuple[int, ...]) -> list[tuple[str, int, dict[str, str]]]:
    """(name, torch threads, OpenMP environment) of each setting measured."""
    rows = [("libgomp default", 2, {"GOMP_SPINCOUNT": "300000"})]
    rows += [(f"spin {n:,}", 2, {"GOMP_SPINCOUNT": str(n)}) for n in sorted({SPIN_COUNT, *spins})]
    rows += [
        ("passive", 2, {"OMP_WAIT_POLICY": "PASSIVE"}),
        ("1 thread", 1, {"GOMP_SPINCOUNT": str(SPIN_COUNT)}),
    ]
    return rows


def worker(data_file: Path, threads: int, batches: int, start_file: Path) -> None:
    """In a fresh process: wait for ``start_file``, train, print tokens/s as JSON."""
    import torch

    from bench_train import batched, reference_batches

    torch.set_num_threads(threads)
    data = pickle.loads(data_file.read_bytes())
    order = reference_batches(data, limit=batches)
    start_file.with_suffix(f".ready{os.getpid()}").touch()
    while not start_file.exists():
        time.sleep(0.01)
    rate, _ = batched(data, order, None, 20)
    print(json.dumps({"rate": rate}), flush=True)


def measure(data_file: Path, threads: int, env: dict[str, str], batches: int, copies: int) -> float:
    """Summed tokens/s of ``copies`` trainings started together, each in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        start = Path(tmp) / "start"
        clean = {k: v for k, v in os.environ.items() if k not in OPENMP_VARIABLES}
        args = [sys.executable, __file__, "--worker", str(data_file), str(threads), str(batches)]
        procs = [
            subprocess.Popen(
                [*args, str(start)], env={**clean, **env}, stdout=subprocess.PIPE, text=True,
                cwd=HERE,
            )
            for _ in range(copies)
        ]  # fmt: skip
        while len(list(Path(tmp).glob("start.ready*"))) < copies:
            if any(p.poll() not in (None, 0) for p in procs):
                raise click.ClickException("a training process failed (see above)")
            time.sleep(0.05)
        start.touch()
        outputs = [p.communicate()[0] for p in procs]
    return sum(json.loads(out.strip().splitlines()[-1])["rate"] for out in outputs)


@click.command()
@click.option("--batches", type=click.IntRange(min=40), default=100, show_default=True)
@click.option("--spin", "spins", type=click.IntRange(min=0), multiple=True, help="Spin counts.")
@click.option("--competitor-nice", type=click.IntRange(0, 19), default=19, show_default=True)
@click.option("--worker", "worker_args", nargs=4, hidden=True)
def main(
    batches: int, spins: tuple[int, ...], competitor_nice: int, worker_args: tuple[str, ...]
) -> None:
    """Training tokens/s quiet, beside a CPU-bound job and two at once, per thread setting."""
    if worker_args:
        data_file, threads, n, start = worker_args
        worker(Path(data_file), int(threads), int(n), Path(start))
        return
    from bench_train import load_data

    print_machine(2)
    click.echo(f"competitor: {describe_competitors(1, competitor_nice, True)}")
    with tempfile.TemporaryDirectory() as tmp:
        data_file = Path(tmp) / "data.pkl"
        data_file.write_bytes(pickle.dumps(load_data()))
        base = None
        click.echo(f"{'setting':<18}{'quiet':>16}{'beside 1 job':>16}{'two at once':>16}")
        for name, threads, env in settings(spins):
            quiet = measure(data_file, threads, env, batches, 1)
            with competitors(1, competitor_nice, own_session=True):
                shared = measure(data_file, threads, env, batches, 1)
            pair = measure(data_file, threads, env, batches, 2)
            base = base or quiet
            cells = [f"{rate:,.0f} ({rate / base:.2f}x)" for rate in (quiet, shared, pair)]
            click.echo(f"{name:<18}" + "".join(f"{c:>16}" for c in cells))
    click.echo("target tokens/s of the batched fp32 trainer; (x): against libgomp default, quiet")


if __name__ == "__main__":
    main()
