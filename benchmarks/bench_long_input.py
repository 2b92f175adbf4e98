"""Benchmark `nmt translate` on one long line: time per input word, 10 to 5,000 words.

    python benchmarks/bench_long_input.py                      # models/attention, beam 5
    python benchmarks/bench_long_input.py --model models/gru --beam 1 --threads 2
    python benchmarks/bench_long_input.py --tiny               # no trained model needed
    python benchmarks/bench_long_input.py --max-source-tokens 100000   # (almost) no cap

Each input is one line of N words of French (a paragraph repeated), translated the way
``nmt translate`` does it (:meth:`nmt.inference.translate.Translator.translate_stream`, the source
cap as the command sets it unless ``--max-source-tokens`` says otherwise). Prints the
CPU and torch threads, then for each N: the source pieces, those decoded (after the cap),
the median seconds of ``--rounds`` runs after one untimed warm-up, and milliseconds per
input word. Once the cap applies, the work per line is fixed, so the time per word falls
as N grows: time grows no faster than linearly. Without the cap (a huge
``--max-source-tokens``) the attention model's time grows faster than N, since each output
step attends over the whole source and the output cap grows with it.

``--tiny`` builds a small untrained attention model (word vocabulary of the paragraph,
32-d GRU, cap of 100 pieces as if its training data's longest source) in a temporary
folder: a quick check that the script runs, not a measurement of a real model. An
untrained model rarely emits ``<eos>``, so its outputs run to the output cap. No asserts.
"""

from __future__ import annotations

import nmt  # noqa: F401  (first: it sets how OpenMP threads wait, before torch loads them)

# isort: split

import logging
import statistics
import tempfile
import time
from pathlib import Path

import click
import torch

from machine import print_machine
from nmt.config.data import NormalizeParams
from nmt.config.evaluate import EvaluateParams
from nmt.config.model import RNNParams
from nmt.data.normalize import Normalizer
from nmt.inference.search import SearchSettings
from nmt.inference.translate import Translator
from nmt.models import build_model
from nmt.training.checkpoint import CheckpointError, model_payload, save_checkpoint
from nmt.vocab import SPECIALS, WordTokenizer

CPU = torch.device("cpu")
EVALUATE = EvaluateParams()  # `nmt translate` decodes with these defaults
WORDS = (10, 100, 1_000, 5_000)
TEXT = (
    "Le chat dort sur le canapé pendant que la pluie tombe sur la ville. Les enfants "
    "rentrent de l'école, ils ont faim et veulent jouer dehors, mais leur mère leur "
    "demande de faire leurs devoirs. Demain, si le temps le permet, nous irons tous à "
    "la plage avec nos amis et nous mangerons des glaces au soleil."
)
PARAGRAPH = TEXT.split()
TINY_CAP = 100


def line_of(n: int) -> str:
    """One line of ``n`` words: the paragraph, repeated as needed."""
    return " ".join(PARAGRAPH[i % len(PARAGRAPH)] for i in range(n))


def tiny_checkpoint(folder: Path) -> Path:
    """A small untrained attention model whose vocabulary covers the paragraph."""
    normalize = NormalizeParams(lowercase=True, punctuation="split")
    words = sorted(set(Normalizer(normalize)(TEXT).split()))
    src, tgt = WordTokenizer([*SPECIALS, *words]), WordTokenizer([*SPECIALS, *words])
    torch.manual_seed(0)
    params = RNNParams(attention="bahdanau", embedding_dim=32, hidden_dim=32, dropout=0.0)
    model = build_model(params, len(src), len(tgt))
    payload = model_payload(model, src, tgt, normalize, "fr", "en")
    payload["train_max_src_tokens"] = TINY_CAP  # as the train stage records it
    path = folder / "best.pt"
    save_checkpoint(path, payload)
    return path


def seconds(translator: Translator, text: str, settings: SearchSettings) -> float:
    start = time.perf_counter()
    (out,) = translator.translate_stream([text], settings)
    return time.perf_counter() - start


@click.command()
@click.option("--model", "checkpoint", type=Path, default=Path("models/attention"))
@click.option("--tiny", is_flag=True, help="Build a small untrained model; ignore --model.")
@click.option("--beam", type=click.IntRange(min=1), default=5, show_default=True)
@click.option(
    "--max-source-tokens",
    type=click.IntRange(min=1),
    default=None,
    help="The source cap; default: as `nmt translate` sets it (the checkpoint's).",
)
@click.option("--rounds", type=click.IntRange(min=1), default=3, show_default=True)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="torch threads; default: torch's own choice.",
)
def main(
    checkpoint: Path,
    tiny: bool,
    beam: int,
    max_source_tokens: int | None,
    rounds: int,
    threads: int | None,
) -> None:
    """Print seconds and milliseconds per input word for lines of 10 to 5,000 words."""
    logging.getLogger("nmt").setLevel(logging.ERROR)  # the truncation warnings: counted below
    print_machine(threads)
    click.echo(f"torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        if tiny:
            checkpoint = tiny_checkpoint(Path(tmp))
        try:
            translator = Translator.from_checkpoint(
                checkpoint,
                CPU,
                EVALUATE.batch_size,
                EVALUATE.max_tokens,
                max_source_tokens or "train",
            )
        except CheckpointError as err:
            raise click.ClickException(f"{err} (--tiny runs without a trained model)") from None
    what = "tiny untrained attention model" if tiny else str(checkpoint)
    click.echo(
        f"model: {what}; source cap {translator.max_source_tokens} pieces; beam {beam}, "
        f"output cap {EVALUATE.max_length_ratio:g} x pieces + {EVALUATE.max_length_extra}"
    )
    settings = SearchSettings(
        beam_size=beam,
        length_penalty=EVALUATE.length_penalty,
        max_length_ratio=EVALUATE.max_length_ratio,
        max_length_extra=EVALUATE.max_length_extra,
    )
    seconds(translator, line_of(WORDS[0]), settings)  # warm-up: kernels, caches
    click.echo(f"{'words':>6} {'pieces':>7} {'decoded':>7} {'seconds':>8} {'ms/word':>8}")
    times = {}
    for n in WORDS:
        text = line_of(n)
        pieces = len(translator.loaded.src_tokenizer.encode(translator.normalizer(text)))
        decoded = min(pieces, translator.max_source_tokens or pieces)
        times[n] = statistics.median(seconds(translator, text, settings) for _ in range(rounds))
        click.echo(f"{n:6d} {pieces:7d} {decoded:7d} {times[n]:8.3f} {times[n] / n * 1e3:8.3f}")
    a, b = WORDS[-2], WORDS[-1]
    click.echo(
        f"time({b:,}) / time({a:,}) = {times[b] / times[a]:.2f} (linear growth: {b / a:.1f})"
    )


if __name__ == "__main__":
    main()
