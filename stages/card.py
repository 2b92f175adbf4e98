"""DVC stage `card` (one per model): the model card beside the delivered model.

Reads params ``seed``, ``data``, ``vocab``, ``models.<name>``, ``train`` and ``average``.
Writes ``<out>`` (``models/<name>/model_card.md``) from the checkpoint and the metrics of
the prepare, vocab, train and evaluate stages.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from nmt.config import ParamsError, load_params
from nmt.model_card import render_model_card
from nmt.training.checkpoint import CheckpointError, read_checkpoint
from nmt.utils import atomic_path

FilePath = click.Path(dir_okay=False, path_type=Path)


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise click.ClickException(f"{path}: {err}") from None


@click.command()
@click.option("--model", "name", required=True, help="A key of params.yaml's models.")
@click.option("--checkpoint", type=FilePath, required=True, help="The delivered model.pt.")
@click.option("--train-metrics", type=FilePath, required=True)
@click.option("--eval-metrics", type=FilePath, required=True)
@click.option("--data-metrics", type=FilePath, required=True)
@click.option("--vocab-metrics", type=FilePath, required=True)
@click.option("--out", type=FilePath, required=True)
def main(
    name: str, checkpoint: Path, train_metrics: Path, eval_metrics: Path,
    data_metrics: Path, vocab_metrics: Path, out: Path,
) -> None:  # fmt: skip
    """Write the model card of one trained model."""
    try:
        params = load_params(
            "params.yaml", sections=["seed", "data", "vocab", "models", "train", "average"]
        )
        ckpt = read_checkpoint(checkpoint)
    except (ParamsError, CheckpointError) as err:
        raise click.ClickException(str(err)) from None
    record = {k: v for k, v in ckpt.items() if k != "model_state"}
    text = render_model_card(
        name, record, params, _json(train_metrics), _json(eval_metrics),
        _json(data_metrics), _json(vocab_metrics),
    )  # fmt: skip
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    click.echo(f"model card -> {out}")


if __name__ == "__main__":
    main()
