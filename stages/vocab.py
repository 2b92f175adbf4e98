"""DVC stage `vocab`: build the source and target tokenizers from the prepared training data.

Reads params sections ``seed`` and ``vocab``. Writes ``<out>/src.json`` and
``<out>/tgt.json`` (one tokenizer state each; identical when ``vocab.joint``) and a
metrics JSON: sizes, mean tokens per sentence and unknown-token rates per side.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from nmt.config import ParamsError, load_params
from nmt.utils import atomic_path, set_seed, write_json
from nmt.vocab import VocabError, build_tokenizers, save_tokenizers, vocab_metrics


@click.command()
@click.option(
    "--prepared",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder with train.parquet and valid.parquet.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write src.json and tgt.json into.",
)
@click.option(
    "--metrics",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="JSON file for the vocabulary metrics.",
)
def main(prepared: Path, out: Path, metrics: Path) -> None:
    """Build the vocabularies named by params.yaml's `vocab` section."""
    try:
        params = load_params("params.yaml", sections=["seed", "vocab"])
        seed = set_seed(params.seed)
        splits = {split: prepared / f"{split}.parquet" for split in ("train", "valid")}
        for path in splits.values():
            if not path.is_file():
                raise VocabError(f"{path}: file not found (run the prepare stage)")

        start = time.perf_counter()
        src_tok, tgt_tok = build_tokenizers(splits["train"], params.vocab, seed=seed)
        built_s = time.perf_counter() - start
        with atomic_path(out) as tmp:
            save_tokenizers(tmp, src_tok, tgt_tok)

        stats = vocab_metrics(src_tok, tgt_tok, splits)
    except (ParamsError, VocabError) as err:
        raise click.ClickException(str(err)) from None

    write_json(metrics, stats)  # no timings: the metrics file must be reproducible
    click.echo(
        f"{params.vocab.kind} vocabularies: src {len(src_tok)}, tgt {len(tgt_tok)} "
        f"(built in {built_s:.1f}s); valid unk rate src {stats['src_unk_rate_valid']:.4%}, "
        f"tgt {stats['tgt_unk_rate_valid']:.4%} -> {out}"
    )


if __name__ == "__main__":
    main()
