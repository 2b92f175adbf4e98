"""DVC stage `check_params`: validate the whole of params.yaml before anything runs.

Every other stage validates the sections it declares, but DVC runs a stage only when
those change, so a misspelt top-level section (``trian:``) would otherwise be ignored
while ``dvc repro`` reports "up to date". This stage depends on every param in the file:
any edit re-runs it, and an unknown key, a wrong type or an impossible value anywhere
fails ``dvc repro`` naming the key. It writes nothing.
"""

from __future__ import annotations

from pathlib import Path

import click

from nmt.config import ParamsError, load_params


@click.command()
@click.option(
    "--params",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("params.yaml"),
    show_default=True,
)
def main(path: Path) -> None:
    """Validate every section of PARAMS."""
    try:
        params = load_params(path)
    except ParamsError as err:
        raise click.ClickException(str(err)) from None
    models = ", ".join(params.models) or "none"
    click.echo(f"{path}: valid (models: {models})")


if __name__ == "__main__":
    main()
