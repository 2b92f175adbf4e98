"""DVC stage `train` (one per model): train ``models.<name>`` on the prepared data.

Reads params ``seed``, ``data``, ``prepare.normalize``, ``models.<name>`` and ``train``.
Writes ``<out>/best.pt`` (best epoch by ``train.early_stopping.metric``),
``<out>/epoch-<n>.pt`` (the last ``train.keep_epochs`` epochs' weights, for the average
stage), ``<out>/last.pt`` (last epoch, or last ``train.checkpoint_every`` steps or
``checkpoint_minutes``, with the state to resume from), dvclive logs per epoch in
``<live>`` and every ``train.log_every`` steps in ``<live>/steps``, and a summary JSON.
A run interrupted midway resumes from ``last.pt`` when it was written under the same
params (``--fresh`` ignores it); a finished ``last.pt`` is never resumed, so a forced
re-run trains again. Checkpoints hold no timings: the same params and data give
byte-identical files. With ``train.processes`` N > 1 the stage runs itself N times under
torchrun (:mod:`nmt.training.distributed`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import time
from pathlib import Path
from typing import get_args

import click
from dvclive import Live

from nmt.config import ParamsError, load_params
from nmt.data.normalize import Normalizer
from nmt.device import DeviceError, describe, resolve_device, resolve_precision
from nmt.models import build_model, count_parameters
from nmt.progress import ProgressMode
from nmt.threads import use_threads
from nmt.training.batching import read_split
from nmt.training.checkpoint import CheckpointError, model_payload
from nmt.training.distributed import (
    check_world,
    join,
    launched_world,
    leave,
    process_threads,
    torchrun_command,
)
from nmt.training.loop import SINGLE, ValidSet, fit, resume_fingerprint
from nmt.utils import set_seed, write_json
from nmt.vocab import VocabError, load_tokenizers

PathOpt = click.Path(path_type=Path)
# dvc.yaml declares the plots: dvclive writes none of its own
LIVE = {"dvcyaml": None, "save_dvc_exp": False, "report": None}


def log_record(logger: Live, record: dict[str, float], x: str) -> None:
    """Log ``record`` at step ``record[x]`` (the epoch, or the step of a step record)."""
    logger.step = int(record[x])
    for key, value in record.items():
        if key not in ("epoch", "step"):
            logger.log_metric(key, value)
    logger.make_summary()


@click.command()
@click.option("--model", "name", required=True, help="A key of params.yaml's models.")
@click.option("--prepared", type=PathOpt, required=True, help="train/valid.parquet folder.")
@click.option("--vocab", type=PathOpt, required=True, help="src.json/tgt.json folder.")
@click.option("--out", type=PathOpt, required=True, help="Folder for the run's checkpoints.")
@click.option("--metrics", type=PathOpt, required=True, help="Summary JSON to write.")
@click.option("--live", type=PathOpt, required=True, help="dvclive folder (per-epoch logs).")
@click.option("--fresh", is_flag=True, help="Ignore a resumable last.pt.")
@click.option(
    "--progress",
    type=click.Choice(get_args(ProgressMode)),
    default="auto",
    show_default=True,
    help="Steps of each epoch: a bar, lines (one a minute), off; auto: a bar on a terminal.",
)
def main(
    name: str, prepared: Path, vocab: Path, out: Path, metrics: Path, live: Path,
    fresh: bool, progress: ProgressMode,
) -> None:  # fmt: skip
    """Train one model of params.yaml's `models` section."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    world = SINGLE
    try:
        params = load_params("params.yaml", sections=["seed", "data", "prepare", "models", "train"])
        if name not in params.models:
            raise ParamsError(f"params.yaml: models.{name} is not defined")
        mp, tp = params.models[name], params.train
        world = launched_world()
        if world.size == 1 and tp.processes > 1:  # torchrun starts this stage N times
            os.execv(sys.executable, torchrun_command(tp.processes, sys.argv))
        check_world(world, tp.processes)
        seed = set_seed(params.seed)
        device = join(world, resolve_device(tp.device, deterministic=tp.deterministic))
        threads = use_threads(process_threads(tp.threads), "train.threads")
        dtype = resolve_precision(tp.precision, device)
        src_tok, tgt_tok = load_tokenizers(vocab)
        train, _ = read_split(
            prepared / "train.parquet", src_tok, tgt_tok, sample=tp.max_train_pairs, seed=seed
        )
        valid_pairs, refs = read_split(
            prepared / "valid.parquet", src_tok, tgt_tok, head=tp.valid_sentences
        )
        normalize = params.prepare.normalize
        valid = ValidSet(valid_pairs, refs, Normalizer(normalize).detokenize)
        model = build_model(mp, len(src_tok), len(tgt_tok)).to(device)
        run_id = resume_fingerprint(
            tp, seed, mp.model_dump(), src_tok.to_state(), tgt_tok.to_state(), len(train)
        )

        longest = int(train.src_lengths.max(initial=0))

        def payload() -> dict:
            return model_payload(
                model, src_tok, tgt_tok, normalize, params.data.src_lang, params.data.tgt_lang,
                train_max_src_tokens=longest,
            )  # fmt: skip

        click.echo(
            f"{name}: {count_parameters(model):,} parameters, {len(train):,} training pairs, "
            f"{len(refs)} validation pairs, {describe(device, dtype)}, "
            f"{threads['threads']} CPU threads ({threads['omp_wait']})"
            + (f", process {world.rank + 1} of {world.size}" if world.size > 1 else "")
        )
        start = time.perf_counter()
        with contextlib.ExitStack() as stack:
            on_epoch = on_log = None
            if world.main:  # rank 0 logs for all
                epochs = stack.enter_context(Live(dir=str(live), **LIVE))
                steps = stack.enter_context(Live(dir=str(live / "steps"), **LIVE))
                on_epoch = functools.partial(log_record, epochs, x="epoch")
                on_log = functools.partial(log_record, steps, x="step")
            result = fit(
                model, train, valid, tgt_tok.decode, tp, seed=seed, device=device,
                dtype=dtype, out_dir=out, payload=payload, run_id=run_id, on_epoch=on_epoch,
                on_log=on_log, resume=not fresh, progress=progress, world=world,
            )  # fmt: skip
    except (ParamsError, VocabError, DeviceError, CheckpointError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    finally:
        leave(world)
    if not world.main:
        return
    summary = {
        "model": name,
        "parameters": count_parameters(model),
        "train_pairs": len(train),
        "valid_pairs": len(refs),
        "device": describe(device, dtype),
        "torch_threads": threads["threads"],
        "processes": world.size,
        "omp_wait": threads["omp_wait"],
        **result.summary(),
    }
    write_json(metrics, summary)
    click.echo(
        f"{name}: best epoch {summary['best_epoch']} of {summary['final_epoch']}, "
        f"valid BLEU {summary['best']['valid_bleu']:.2f} "
        f"({time.perf_counter() - start:.0f}s) -> {out}"
    )


if __name__ == "__main__":
    main()
