"""DVC stage `compare@<pair>`: a paired bootstrap test between two evaluated models.

Reads params ``evaluate.compare.search``, ``evaluate.compare.resamples`` and the pair
``evaluate.compare.pairs.<pair>`` (which models). For every test set the baseline was
evaluated on, compares the two models' translations against the same references and
writes to a metrics JSON, per test set and metric (BLEU, chrF): both scores, their
difference with a 95% bootstrap interval, and the one-sided p-value of "the candidate
is no better than the baseline" (``significance_test`` in the JSON says so; see
:func:`nmt.evaluation.compare.compare_translations`). Identical translations give p = 1.
"""

from __future__ import annotations

from pathlib import Path

import click

from nmt.config import ParamsError, load_params
from nmt.evaluation.compare import META_KEYS, compare_translations
from nmt.evaluation.scoring import EvaluationError
from nmt.utils import write_json

DirPath = click.Path(file_okay=False, path_type=Path)


@click.command()
@click.option("--pair", required=True, help="A name under evaluate.compare.pairs.")
@click.option("--baseline", type=DirPath, required=True, help="Baseline's translations.")
@click.option("--candidate", type=DirPath, required=True, help="Candidate's translations.")
@click.option("--metrics", type=click.Path(dir_okay=False, path_type=Path), required=True)
def main(pair: str, baseline: Path, candidate: Path, metrics: Path) -> None:
    """Compare the translations in two folders written by the evaluate stage."""
    try:
        config = load_params("params.yaml", sections=["evaluate"]).evaluate.compare
        if pair not in config.pairs:
            raise EvaluationError(f"params.yaml: no evaluate.compare.pairs.{pair}")
        models = config.pairs[pair]
        results = compare_translations(baseline, candidate, config, models)
    except (ParamsError, EvaluationError) as err:
        raise click.ClickException(str(err)) from None

    write_json(metrics, results)
    for name, entry in results.items():
        if name in META_KEYS:
            continue
        bleu = entry["bleu"]
        p = bleu["p_value"]
        # p = 0: the candidate won every resample; the resamples bound p, no more
        shown = f"p < {1 / config.resamples:.4g}" if p == 0 else f"p = {p:.4f}"
        click.echo(
            f"{name}: BLEU {models.baseline} {bleu['baseline']:.2f} vs {models.candidate} "
            f"{bleu['candidate']:.2f}, one-sided {shown}"
        )


if __name__ == "__main__":
    main()
