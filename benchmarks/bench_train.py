"""Benchmark training throughput on CPU against the classic per-sentence tutorial loop.

    python benchmarks/bench_train.py                  # throughput: (a) (b) (c) + matmul peak
    python benchmarks/bench_train.py --profile        # also a torch.profiler table of (b)
    python benchmarks/bench_train.py --minutes 10     # train 10 min, greedy BLEU on held-out
    python benchmarks/bench_train.py --device cuda --baseline-seconds 0 --hidden 1024

Reference configuration (the PyTorch seq2seq tutorial's task, at a larger size):
French->English Tatoeba pairs (``fra-eng.zip`` from the data mirror, ``$NMT_DATA_MIRROR``
or ``../shared/data/mirror``), normalised like the tutorial (lower case, ASCII, letters
and ``. ! ?`` only, punctuation split off), at most 15 tokens per side; word vocabularies
of the words seen at least twice; a unidirectional GRU encoder and a Bahdanau-attention
GRU decoder, embeddings 256, hidden 256, no dropout; batches of 64 sentences; Adam at
1e-3; ``torch.set_num_threads(2)``.

Prints target tokens per second (words + ``<eos>``) for

(a) the per-sentence baseline, written the way the classic tutorial trains: one pair per
    optimizer step, the decoder stepped token by token with a loss per token;
(b) our batched trainer (:func:`nmt.training.loop.train_epoch`) in fp32;
(c) the same with bf16 autocast on CPU, with its loss curve beside fp32's;

each against (a), and the fraction of the matmul peak (measured in the same run with a
large fp32 and bf16 matmul; no bf16 one on a CPU without bf16 instructions) that the
model's FLOPs per second reach. ``--device cuda`` trains (b) and (c) on the GPU, against
the GPU's peaks (fp32 without TF32, as torch multiplies by default); (a) always runs on
the CPU, and ``--baseline-seconds 0`` skips it. ``--hidden`` widens the GRUs (embeddings
stay 256). Figures only, no asserts: on a shared machine the timings
are noisy; the README and docs/speed.md have the figures and their CPUs.
"""

from __future__ import annotations

import nmt  # noqa: F401  (first: it sets how OpenMP threads wait, before torch loads them)

# isort: split

import os
import time
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import sacrebleu
import torch
from torch.utils.flop_counter import FlopCounterMode

from machine import competitors, cuda_peaks, describe_competitors, print_machine
from nmt.config import TrainParams
from nmt.config.data import NormalizeParams
from nmt.config.model import RNNParams
from nmt.data.download import mirror_from_env
from nmt.data.normalize import Normalizer
from nmt.inference.search import greedy_search, max_output_lengths, prepare
from nmt.models import Seq2SeqModel, build_model, count_parameters
from nmt.training.batching import TokenizedPairs, collate, make_batches, tokenize_pairs
from nmt.training.loop import batch_logits, train_epoch
from nmt.training.losses import masked_cross_entropy
from nmt.training.optim import build_optimizer
from nmt.vocab import EOS_ID, SOS_ID, WordTokenizer, build_table_tokens

CPU = torch.device("cpu")
ZIP = Path("www.manythings.org/anki/fra-eng.zip")
MAX_TOKENS = 15
WARMUP_PAIRS = 30
TUTORIAL = NormalizeParams(
    lowercase=True, ascii_fold=True, letters_only=True, punctuation="split",
    punctuation_chars=".!?",
)  # fmt: skip
MODEL = RNNParams(
    embedding_dim=256, hidden_dim=256, bidirectional=False, dropout=0.0, attention="bahdanau"
)


@dataclass
class Data:
    train: TokenizedPairs
    held_out: TokenizedPairs
    held_out_refs: list[str]
    src_tok: WordTokenizer
    tgt_tok: WordTokenizer


def mirror_root() -> Path:
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "mirror"
    return mirror_from_env(os.environ) or default


def read_texts(
    held_out: int = 2000, seed: int = 0
) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Tatoeba fr->en, tutorial normalisation, <= 15 tokens: the French and English texts,
    and the indices of the training and held-out pairs."""
    path = mirror_root() / ZIP
    with zipfile.ZipFile(path) as zf:
        lines = zf.read("fra-eng/fra.txt").decode("utf-8").splitlines()
    norm = Normalizer(TUTORIAL)
    src, tgt = [], []
    for line in lines:
        cols = line.split("\t")
        if len(cols) < 2:
            continue
        en, fr = norm(cols[0]), norm(cols[1])
        if 0 < len(fr.split()) <= MAX_TOKENS and 0 < len(en.split()) <= MAX_TOKENS:
            src.append(fr)
            tgt.append(en)
    order = np.random.default_rng(seed).permutation(len(src))
    return src, tgt, order[held_out:], order[:held_out]


def vocabulary_counts(texts: list[str], train_idx: np.ndarray) -> Counter[str]:
    """Word counts over the training pairs of ``texts``."""
    return Counter(w for i in train_idx for w in texts[i].split())


def load_data(held_out: int = 2000, seed: int = 0) -> Data:
    """:func:`read_texts`, tokenised with min_freq 2 word vocabularies."""
    src, tgt, train_idx, test_idx = read_texts(held_out, seed)

    def vocab(texts: list[str]) -> WordTokenizer:
        return WordTokenizer(
            build_table_tokens(vocabulary_counts(texts, train_idx), min_freq=2, max_size=None)
        )

    src_tok, tgt_tok = vocab(src), vocab(tgt)
    pairs = tokenize_pairs(src, tgt, src_tok, tgt_tok)
    return Data(
        train=pairs.select(np.sort(train_idx)),
        held_out=pairs.select(test_idx),
        held_out_refs=[tgt[i] for i in test_idx],
        src_tok=src_tok,
        tgt_tok=tgt_tok,
    )


# ----------------------------------------------------------------------------- measures


def fresh_model(data: Data, seed: int = 0) -> Seq2SeqModel:
    torch.manual_seed(seed)
    return build_model(MODEL, len(data.src_tok), len(data.tgt_tok))


def per_sentence_baseline(data: Data, seconds: float) -> tuple[float, int]:
    """(a): the classic tutorial loop; returns target tokens/s and pairs done."""
    model = fresh_model(data).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = torch.nn.NLLLoss()
    order = np.random.default_rng(0).permutation(len(data.train))
    tokens, done, start = 0, 0, time.perf_counter()
    for n, i in enumerate(order):
        if n == WARMUP_PAIRS:  # one-off set-up (kernels, primitives per shape) is not timed
            tokens, done, start = 0, 0, time.perf_counter()
        s0, s1 = data.train.src_offsets[i], data.train.src_offsets[i + 1]
        t0, t1 = data.train.tgt_offsets[i], data.train.tgt_offsets[i + 1]
        src = torch.from_numpy(data.train.src[s0:s1].astype(np.int64))[None]
        target = [*data.train.tgt[t0:t1].tolist(), EOS_ID]
        enc = model.encode(src, torch.tensor([s1 - s0]))
        state = model.init_state(enc)
        prev = torch.tensor([SOS_ID])
        loss = torch.zeros(())
        for tok in target:  # teacher forcing, one token at a time
            logits, state, _ = model.decode_step(prev, state, enc)
            loss = loss + criterion(torch.log_softmax(logits, -1), torch.tensor([tok]))
            prev = torch.tensor([tok])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        tokens += len(target)
        done += 1
        if time.perf_counter() - start > seconds:
            break
    return tokens / (time.perf_counter() - start), done


def flops_per_token(model: Seq2SeqModel, data: Data, batches: list[np.ndarray]) -> float:
    """Model FLOPs (forward + backward, as counted by torch) per target token."""
    flops = tokens = 0
    for idx in batches:
        batch = collate(data.train, idx).to(next(model.parameters()).device)
        with FlopCounterMode(display=False) as counter:
            logits, target = batch_logits(model, batch)
            masked_cross_entropy(logits, target).backward()
        model.zero_grad(set_to_none=True)
        flops += counter.get_total_flops()
        tokens += batch.n_tokens
    return flops / tokens


class Trainer:
    """A fresh model and optimizer at batch 64; ``run`` trains over some batches."""

    def __init__(
        self,
        data: Data,
        dtype: torch.dtype | None,
        lr: float = 1e-3,
        clip: float | None = None,
        device: torch.device = CPU,
    ) -> None:
        self.data, self.dtype, self.device = data, dtype, device
        self.model = fresh_model(data).to(device)
        self.params = TrainParams(batch_size=64, batch_tokens=None, lr=lr, clip_grad_norm=clip)
        self.optimizer = build_optimizer(self.model, self.params)

    def run(self, batches: list[np.ndarray]) -> dict[str, float]:
        return train_epoch(
            self.model, self.data.train, batches, self.optimizer, step_scheduler=None,
            params=self.params, ratio=1.0, device=self.device, dtype=self.dtype,
        )  # fmt: skip


def batched(
    data: Data,
    batches: list[np.ndarray],
    dtype: torch.dtype | None,
    chunk: int,
    device: torch.device = CPU,
) -> tuple[float, list[float]]:
    """(b)/(c): train_epoch over ``batches`` in chunks; tokens/s and the mean loss per chunk.

    The first chunk warms up (one-off kernel and primitive set-up) and is not timed.
    """
    trainer = Trainer(data, dtype, device=device)
    losses, tokens, seconds = [], 0, 0.0
    for k in range(0, len(batches), chunk):
        stats = trainer.run(batches[k : k + chunk])
        losses.append(stats["loss"])
        if k > 0:
            tokens += stats["tokens"]
            seconds += stats["seconds"]
    return tokens / seconds, losses


def profile_table(data: Data, batches: list[np.ndarray], dtype: torch.dtype | None) -> str:
    from torch.profiler import profile

    trainer = Trainer(data, dtype)
    trainer.run(batches[:5])
    with profile() as prof:
        trainer.run(batches[5:])
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20)


def greedy_bleu(model: Seq2SeqModel, data: Data, batch_size: int = 200) -> float:
    model.eval()
    hyps = [""] * len(data.held_out)
    order = make_batches(
        data.held_out.src_lengths, data.held_out.tgt_lengths, batch_size=batch_size,
        shuffle=False,
    )  # fmt: skip
    prepared = prepare(model)
    for idx in order:
        batch = collate(data.held_out, idx)
        limits = max_output_lengths(batch.src_lengths, 2.0, 5)
        out = greedy_search(model, batch.src, batch.src_lengths, limits, prepared=prepared)
        for i, ids in zip(idx.tolist(), out, strict=True):
            hyps[i] = data.tgt_tok.decode(ids)
    # both sides are tutorial-normalised (tokenised) text: score them as they are
    return sacrebleu.corpus_bleu(hyps, [data.held_out_refs], force=True).score


def reference_batches(data: Data, epoch: int = 0, limit: int | None = None) -> list[np.ndarray]:
    """The training pairs' batches of 64 sentences for ``epoch`` (the first ``limit``)."""
    return make_batches(
        data.train.src_lengths, data.train.tgt_lengths, batch_size=64, seed=0, epoch=epoch
    )[:limit]


def train_for(
    data: Data, minutes: float, dtype: torch.dtype | None, lr: float, device: torch.device
) -> None:
    trainer = Trainer(data, dtype, lr=lr, clip=1.0, device=device)
    deadline = time.perf_counter() + minutes * 60
    epoch, tokens, seconds = 0, 0, 0.0
    while time.perf_counter() < deadline:
        batches = reference_batches(data, epoch)
        for k in range(0, len(batches), 100):
            if time.perf_counter() >= deadline:
                break
            stats = trainer.run(batches[k : k + 100])
            tokens += stats["tokens"]
            seconds += stats["seconds"]
        epoch += 1
        click.echo(f"  epoch {epoch} done, {tokens / seconds:,.0f} tok/s, loss {stats['loss']:.3f}")
    bleu = greedy_bleu(trainer.model, data)
    click.echo(
        f"trained {seconds / 60:.1f} min ({tokens:,} target tokens, {tokens / seconds:,.0f} "
        f"tok/s, {epoch} epochs begun); greedy BLEU on {len(data.held_out)} held-out pairs: "
        f"{bleu:.1f}"
    )


# ----------------------------------------------------------------------------- main


@click.command()
@click.option("--threads", default=2, show_default=True, help="torch.set_num_threads.")
@click.option(
    "--baseline-seconds", default=60.0, show_default=True, help="Time for (a); 0 skips it."
)
@click.option(
    "--device",
    "device_name",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="Where (b), (c) and --minutes train; (a) runs on the CPU.",
)
@click.option(
    "--hidden", type=click.IntRange(min=1), default=MODEL.hidden_dim, show_default=True,
    help="GRU hidden size (the reference: 256).",
)  # fmt: skip
@click.option(
    "--batches",
    type=click.IntRange(min=40),
    default=120,
    show_default=True,
    help="Batches of 64 for (b), (c); the first 20 warm up.",
)
@click.option("--profile", is_flag=True, help="Print a torch.profiler table of (b).")
@click.option("--minutes", type=float, default=None, help="Train this long, report BLEU.")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="bf16",
              show_default=True, help="For --minutes.")  # fmt: skip
@click.option("--lr", default=1e-3, show_default=True, help="For --minutes.")
@click.option(
    "--contention",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Also time (b) beside this many CPU-bound processes (at nice --competitor-nice).",
)
@click.option("--competitor-nice", type=click.IntRange(0, 19), default=19, show_default=True)
@click.option(
    "--emulated-bf16", is_flag=True, help="Time (c) even without bf16 instructions (slow)."
)
@click.option(
    "--own-session/--same-session",
    default=True,
    show_default=True,
    help="Each competitor in a session of its own (another terminal's job), or in this one.",
)
def main(
    threads: int, baseline_seconds: float, batches: int, profile: bool, minutes: float | None,
    precision: str, lr: float, contention: int, competitor_nice: int, emulated_bf16: bool,
    own_session: bool, device_name: str, hidden: int,
) -> None:  # fmt: skip
    """Training throughput of the reference configuration (see the module doc)."""
    global MODEL
    MODEL = MODEL.model_copy(update={"hidden_dim": hidden})
    device = torch.device(device_name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise click.ClickException("--device cuda: no CUDA device is available")
    peaks = print_machine(threads)
    if device.type == "cuda":
        peaks = cuda_peaks()
    start = time.perf_counter()
    data = load_data()
    click.echo(
        f"data: {len(data.train):,} training pairs, {len(data.held_out):,} held out; "
        f"vocab fr {len(data.src_tok):,}, en {len(data.tgt_tok):,} "
        f"({time.perf_counter() - start:.1f}s); model: {count_parameters(fresh_model(data)):,} "
        f"parameters, unidirectional GRU encoder, Bahdanau decoder, hidden {hidden}; "
        f"{threads} threads; training on {device.type}"
    )
    if minutes is not None:
        train_for(data, minutes, torch.bfloat16 if precision == "bf16" else None, lr, device)
        return
    order = reference_batches(data, limit=batches)
    fpt = flops_per_token(fresh_model(data).to(device), data, order[:10])
    click.echo(f"model FLOPs per target token (fwd + bwd): {fpt / 1e6:.1f} M")
    base = None
    if baseline_seconds > 0:
        base, pairs = per_sentence_baseline(data, baseline_seconds)
        click.echo(f"(a) per-sentence tutorial loop: {base:,.0f} tok/s ({pairs} pairs)")
    chunk = 20
    rows = []
    precisions = [("fp32", None), ("bf16", torch.bfloat16)]
    if peaks["bf16"] is None and not emulated_bf16:
        precisions.pop()
        click.echo("(c) skipped: no bf16 instructions, bf16 would be emulated (--emulated-bf16)")
    for name, dtype in precisions:
        rate, losses = batched(data, order, dtype, chunk, device)
        rows.append(losses)
        label = "(b) batched fp32" if dtype is None else "(c) batched bf16 autocast"
        peak = peaks[name]
        share = f"{rate * fpt / peak:.1%} of the {name} matmul peak" if peak else "emulated bf16"
        versus = f" = {rate / base:.0f}x (a)" if base else ""
        click.echo(f"{label}: {rate:,.0f} tok/s{versus}; {share}")
        if dtype is None:
            quiet = rate
    click.echo(f"loss per chunk of 20 batches, {' vs '.join(name for name, _ in precisions)}:")
    for k, losses in enumerate(zip(*rows, strict=True)):
        cells = "  ".join(f"{loss:.4f}" for loss in losses)
        click.echo(f"  batches {k * chunk:4d}-{(k + 1) * chunk - 1:4d}: {cells}")
    if contention:
        with competitors(contention, competitor_nice, own_session):
            shared, _ = batched(data, order, None, chunk, device)
        click.echo(
            f"(b) beside {describe_competitors(contention, competitor_nice, own_session)}: "
            f"{shared:,.0f} tok/s = {shared / quiet:.2f}x quiet (b)"
        )
    if profile:
        click.echo(profile_table(data, order[:30], None))


if __name__ == "__main__":
    main()
