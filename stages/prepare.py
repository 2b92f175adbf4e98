"""DVC stage `prepare`: raw corpora -> normalised, filtered, split Parquet tables.

Reads params sections ``seed``, ``data`` and ``prepare``. Writes ``<out>/train.parquet``,
``valid.parquet``, ``test.parquet`` (the held-out split) and ``<test set>.parquet`` for
each of ``data.test_sets``, all with ``nmt.data.schema.PAIR_SCHEMA``, and a metrics JSON:
per corpus the pairs read, kept and dropped per reason; rows per file; pairs removed
from train and valid because a test set holds their source or target.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from nmt.config import ParamsError, load_params
from nmt.data.prepare import prepare
from nmt.data.readers import CorpusFormatError
from nmt.utils import write_json


@click.command()
@click.option(
    "--raw",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder the download stage wrote: <raw>/<corpus>/<member>.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write the Parquet files into (replaced as a whole).",
)
@click.option(
    "--metrics",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="JSON file for the per-corpus counts.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=min(os.cpu_count() or 1, 4),
    show_default="CPUs, at most 4",
    help="Processes that normalise and filter; the output does not depend on it.",
)
def main(raw: Path, out: Path, metrics: Path, workers: int) -> None:
    """Combine the corpora of params.yaml's `data` section into train/valid/test."""
    try:
        params = load_params("params.yaml", sections=["seed", "data", "prepare"])
        start = time.perf_counter()
        stats = prepare(
            raw,
            out,
            data=params.data,
            params=params.prepare,
            seed=params.seed,
            workers=workers,
        )
    except (ParamsError, CorpusFormatError, FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    took = time.perf_counter() - start

    write_json(metrics, stats)  # no timings: the metrics file must be reproducible
    for name, counts in {**stats["corpora"], **stats["test_sets"]}.items():
        click.echo(f"{name}: read {counts['read']:,}, kept {counts['kept']:,}")
    sizes = ", ".join(f"{name} {n:,}" for name, n in stats["splits"].items())
    click.echo(f"{out}: {sizes} ({took:.1f}s, {workers} workers)")


if __name__ == "__main__":
    main()
