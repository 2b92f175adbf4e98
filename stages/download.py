"""DVC stage `download`: fetch every corpus the run uses and extract the members it needs.

Reads params sections ``data`` (language pair, corpora, test sets) and ``download``
(pinned checksums, retries, timeout). Files come from ``$NMT_DATA_MIRROR`` when it holds
them, else from the network. Writes ``<out>/<corpus>/<member path>`` and
``<out>/manifest.json``; the whole folder is built aside and renamed only on success, so
a failed run of this script leaves the previous output untouched. That holds only when
the stage is run directly (``python stages/download.py``): ``dvc repro`` removes a
stage's outputs before running it, so a failed download under ``dvc repro`` leaves no
``data/raw`` at all (``dvc checkout data/raw`` restores the cached one).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import click

from nmt.config import ParamsError, load_params
from nmt.data.archive import ArchiveError
from nmt.data.download import DownloadError, download_corpora, mirror_from_env, selected_corpora
from nmt.utils import atomic_path


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data/raw"),
    show_default=True,
    help="Folder for the extracted corpora and manifest.json.",
)
@click.option(
    "--progress/--no-progress",
    default=True,
    show_default=True,
    help="Show download progress bars (only ever on a terminal).",
)
def main(out: Path, progress: bool) -> None:
    """Download the corpora named in params.yaml into OUT."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    start = time.perf_counter()
    try:
        params = load_params("params.yaml", sections=["data", "download"])
        mirror = mirror_from_env(os.environ)
        corpora = selected_corpora(params.data)
        with atomic_path(out) as tmp:
            manifest = download_corpora(
                corpora, tmp, params.download, mirror=mirror, progress=progress
            )
    except (ParamsError, DownloadError, ArchiveError) as err:
        raise click.ClickException(str(err)) from None
    total = sum(entry["bytes"] for entry in manifest.values())
    click.echo(
        f"downloaded {len(manifest)} corpora ({total / 2**20:.1f} MiB) to {out} "
        f"in {time.perf_counter() - start:.1f}s"
    )


if __name__ == "__main__":
    main()
