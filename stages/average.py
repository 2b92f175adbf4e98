"""DVC stage `average` (one per model): the model a training run delivers.

Reads params ``average``. Writes ``<out>`` (``models/<name>/model.pt``): with
``average.last: 1`` the run's best epoch (``<checkpoints>/best.pt``), with ``k`` the
element-wise mean of the weights of its last k epochs (``<checkpoints>/epoch-<n>.pt``).
Changing ``average.last`` re-runs this stage and evaluation, never training.
"""

from __future__ import annotations

from pathlib import Path

import click

from nmt.config import ParamsError, load_params
from nmt.training.checkpoint import CheckpointError, delivered_model, save_checkpoint


@click.command()
@click.option(
    "--checkpoints",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="A training run's folder (best.pt, epoch-<n>.pt).",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def main(checkpoints: Path, out: Path) -> None:
    """Write the model of one training run: its best epoch or its last epochs averaged."""
    try:
        last = load_params("params.yaml", sections=["average"]).average.last
        payload = delivered_model(checkpoints, last)
        save_checkpoint(out, payload)
    except (ParamsError, CheckpointError) as err:
        raise click.ClickException(str(err)) from None
    epochs = payload["delivered"]["epochs"]
    what = f"best epoch ({epochs[0]})" if last == 1 else f"average of epochs {epochs}"
    click.echo(f"{out}: the {what} of {checkpoints}")


if __name__ == "__main__":
    main()
