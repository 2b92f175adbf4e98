"""DVC stage `evaluate`: decode every test set with one trained model and score it.

Reads params ``data.test_sets`` and ``evaluate`` (all but ``evaluate.compare``). Writes
the translations (``<translations>/<test set>.<greedy|beam>.parquet``), the scores of the
held-out split's slices (``heldout_novel``, ``heldout_long``: nmt.evaluation.slices), BLEU
per source-length bucket (``<lengths>/<test set>.tsv``), attention heatmaps of a few held-out
sentences (``<attention>/heldout-<i>.png``; none for a model without attention) and the
metrics JSON.
"""

from __future__ import annotations

from pathlib import Path

import click

from nmt.config import ParamsError, load_params
from nmt.device import DeviceError, resolve_device
from nmt.evaluation.evaluate import evaluate_model, search_settings
from nmt.evaluation.heatmap import pick_sentences, write_heatmaps, write_no_attention
from nmt.evaluation.scoring import (
    HELDOUT,
    EvaluationError,
    find_test_sets,
    read_test_set,
    read_train_pairs,
)
from nmt.inference.translate import Translator
from nmt.threads import use_threads
from nmt.training.checkpoint import CheckpointError
from nmt.utils import atomic_path, write_json

DirPath = click.Path(file_okay=False, path_type=Path)


@click.command()
@click.option("--model", "checkpoint", type=Path, required=True, help="Checkpoint or model dir.")
@click.option("--prepared", type=DirPath, required=True, help="Folder with the test sets.")
@click.option("--translations", type=DirPath, required=True, help="Folder for translations.")
@click.option("--lengths", type=DirPath, required=True, help="Folder for BLEU-by-length TSVs.")
@click.option("--attention", type=DirPath, required=True, help="Folder for heatmap PNGs.")
@click.option("--metrics", type=click.Path(dir_okay=False, path_type=Path), required=True)
def main(
    checkpoint: Path,
    prepared: Path,
    translations: Path,
    lengths: Path,
    attention: Path,
    metrics: Path,
) -> None:
    """Evaluate one model on the held-out split and on each of `data.test_sets`."""
    try:
        params = load_params("params.yaml", sections=["data", "evaluate"])
        config = params.evaluate
        device = resolve_device(config.device)
        threads = use_threads(config.threads, "evaluate.threads")
        test_sets = find_test_sets(prepared, params.data.test_sets)
        translator = Translator.from_checkpoint(
            checkpoint, device, config.batch_size, config.max_tokens
        )
        with atomic_path(translations) as t_tmp, atomic_path(lengths) as l_tmp:
            results = evaluate_model(
                translator, test_sets, config, t_tmp, l_tmp, "auto", read_train_pairs(prepared)
            )
        with atomic_path(attention) as a_tmp:
            a_tmp.mkdir()
            heldout = read_test_set(test_sets[HELDOUT], config.max_sentences)["src"].tolist()
            picked = [heldout[i] for i in pick_sentences(heldout, config.heatmaps)]
            maps = translator.attention(picked, search_settings(config)["greedy"], True)
            if maps:
                written = write_heatmaps(maps, a_tmp, HELDOUT)
            else:  # a plain encoder-decoder (or no heatmaps asked for)
                written = [write_no_attention(a_tmp, checkpoint.parent.name)]
    except (ParamsError, CheckpointError, DeviceError, EvaluationError) as err:
        raise click.ClickException(str(err)) from None

    results["settings"] |= threads
    write_json(metrics, results)
    for name, entry in results.items():
        if name not in ("settings", "signatures"):
            greedy, beam = entry["greedy"], entry["beam"]
            click.echo(
                f"{name}: {entry['sentences']} sentences, BLEU greedy {greedy['bleu']:.2f} "
                f"beam {beam['bleu']:.2f}, chrF greedy {greedy['chrf']:.2f} beam {beam['chrf']:.2f}"
            )
    click.echo(f"{len(written)} attention heatmap(s) -> {attention}")


if __name__ == "__main__":
    main()
