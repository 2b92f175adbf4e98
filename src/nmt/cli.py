"""The ``nmt`` command line (console script ``nmt = nmt.cli:main``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nmt.checkpoint import CheckpointError
from nmt.decoding import SearchSettings
from nmt.device import DeviceError, resolve_device


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Neural machine translation: train, evaluate and use seq2seq models."""


def _read_lines(texts: tuple[str, ...]) -> list[str]:
    if texts:
        return list(texts)
    return [line.rstrip("\r\n") for line in sys.stdin]


@cli.command()
@click.option(
    "--model",
    "checkpoint",
    type=click.Path(path_type=Path),
    required=True,
    help="A checkpoint file, or a model directory holding best.pt.",
)
@click.argument("texts", nargs=-1)
@click.option(
    "--beam",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Beam size; 1 is greedy search.",
)
@click.option(
    "--length-penalty",
    type=click.FloatRange(min=0.0),
    default=1.0,
    show_default=True,
    help="GNMT length-penalty alpha (beam search).",
)
@click.option(
    "--max-length-ratio",
    type=click.FloatRange(min=0.0, min_open=True),
    default=2.0,
    show_default=True,
    help="Output cap: ratio x source tokens + 10.",
)
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
def translate(
    checkpoint: Path,
    texts: tuple[str, ...],
    beam: int,
    length_penalty: float,
    max_length_ratio: float,
    device: str,
    batch_size: int,
) -> None:
    """Translate TEXTS, or standard input (one sentence per line) when none are given.

    Input is normalised and tokenised as in training; each translation is printed on its
    own line, in input order.
    """
    from nmt.translate import Translator  # torch and the model code load only when needed

    try:
        dev = resolve_device(device)
        translator = Translator.from_checkpoint(checkpoint, dev, batch_size)
    except (CheckpointError, DeviceError) as err:
        raise click.ClickException(str(err)) from None
    lines = _read_lines(texts)
    settings = SearchSettings(
        beam_size=beam, length_penalty=length_penalty, max_length_ratio=max_length_ratio
    )
    progress = sys.stderr.isatty() and len(lines) > batch_size
    for out in translator.translate(lines, settings, progress=progress):
        click.echo(out)


def main() -> None:
    """Entry point of the ``nmt`` console script."""
    cli()


if __name__ == "__main__":
    main()
