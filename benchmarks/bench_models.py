"""Training throughput of the models of params.yaml (and of a profile's), on the prepared
data, with the train stage's batching, optimizer and precision.

For each model it trains ``--batches`` batches of the first epoch's order, after
``--warmup`` untimed ones, and prints target tokens/s and the time one epoch would take
at that rate, so that models can be given the same CPU budget. Needs ``dvc repro
prepare vocab`` first (``data/prepared``, ``data/vocab``).

    python benchmarks/bench_models.py --profile transformer --batches 40
"""

from __future__ import annotations

import nmt  # noqa: F401  (first: it sets how OpenMP threads wait, before torch loads them)

# isort: split

import time
from pathlib import Path

import click
import numpy as np
import torch
import yaml

from machine import print_machine
from nmt.config import parse_params
from nmt.device import autocast, resolve_device, resolve_precision
from nmt.models import build_model, count_parameters
from nmt.profiles import merge, profile_path, read_yaml
from nmt.training.batching import collate, make_batches, read_split
from nmt.training.loop import batch_logits
from nmt.training.losses import masked_cross_entropy
from nmt.training.optim import build_optimizer
from nmt.vocab import load_tokenizers


@click.command()
@click.option("--params", "params_path", type=Path, default=Path("params.yaml"))
@click.option("--profile", default=None, help="Layer this profile over the params.")
@click.option("--model", "names", multiple=True, help="Only these models (default: all).")
@click.option("--batches", type=int, default=30, show_default=True)
@click.option("--warmup", type=int, default=3, show_default=True)
@click.option("--threads", type=int, default=2, show_default=True)
def main(
    params_path: Path,
    profile: str | None,
    names: tuple[str, ...],
    batches: int,
    warmup: int,
    threads: int,
) -> None:
    """Print target tokens/s of each model's training step."""
    raw = yaml.safe_load(params_path.read_text())
    if profile:
        raw = merge(raw, read_yaml(profile_path(profile)))
    params = parse_params(raw)
    tp = params.train
    print_machine(threads)
    device = resolve_device(tp.device)
    dtype = resolve_precision(tp.precision, device)
    print(f"device: {device}")
    src_tok, tgt_tok = load_tokenizers(Path("data/vocab"))
    train, _ = read_split(Path("data/prepared/train.parquet"), src_tok, tgt_tok)
    order = make_batches(
        train.src_lengths, train.tgt_lengths, batch_tokens=tp.batch_tokens,
        batch_size=tp.batch_size, bucket_pool=tp.bucket_pool, seed=params.seed,
    )  # fmt: skip
    picked = order[: warmup + batches]
    epoch_tokens = int(train.tgt_lengths.sum()) + len(train)  # + <eos> per pair
    print(f"{len(train):,} training pairs, {len(order):,} batches per epoch")
    for name, mp in params.models.items():
        if names and name not in names:
            continue
        torch.manual_seed(params.seed)
        model = build_model(mp, len(src_tok), len(tgt_tok)).to(device).train()
        optimizer = build_optimizer(model, tp)
        tokens, seconds, losses = 0, 0.0, []
        for i, idx in enumerate(picked):
            batch = collate(train, idx).to(device)
            start = time.perf_counter()
            with autocast(device, dtype):
                logits, target = batch_logits(model, batch)
            loss = masked_cross_entropy(logits, target, tp.label_smoothing) / batch.n_tokens
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if tp.clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tp.clip_grad_norm)
            optimizer.step()
            losses.append(float(loss.detach()))
            if i >= warmup:
                seconds += time.perf_counter() - start
                tokens += batch.n_tokens
        rate = tokens / seconds
        print(
            f"{name:>12} ({mp.arch}, {count_parameters(model) / 1e6:.2f}M parameters): "
            f"{rate:,.0f} target tokens/s; one epoch ~{epoch_tokens / rate / 60:.1f} min; "
            f"loss {np.mean(losses[:5]):.2f} over the first 5 batches, "
            f"{np.mean(losses[-5:]):.2f} over the last 5"
        )


if __name__ == "__main__":
    main()
