"""The training loop: epochs of batched teacher-forced (or scheduled-sampling) updates,
validation after each epoch, early stopping, and checkpoints that resume exactly.

Reproducibility: every source of randomness is either derived from ``seed + epoch``
(the batch order) or carried in ``last.pt`` (torch, Python and NumPy RNG states, with the
model, optimizer and scheduler). An interrupted run restarted from ``last.pt`` therefore
ends, on CPU, with the same weights and metrics as one that never stopped. Validation runs
under a forked RNG so that what it measures never changes what training does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sacrebleu
import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

from nmt.config.train import TrainParams
from nmt.device import autocast
from nmt.models import Seq2SeqModel
from nmt.models.base import reference_mask
from nmt.progress import Progress, ProgressMode
from nmt.specials import PAD_ID
from nmt.training.batching import Batch, TokenizedPairs, collate, make_batches
from nmt.training.checkpoint import (
    CheckpointError,
    epoch_checkpoints,
    epoch_path,
    read_checkpoint,
    save_checkpoint,
)
from nmt.training.distributed import World
from nmt.training.losses import masked_cross_entropy, stop_at_predicted_eos
from nmt.training.optim import (
    Scheduler,
    build_optimizer,
    build_scheduler,
    current_lr,
    load_scheduler_state,
    scheduler_state,
)
from nmt.training.teacher_forcing import teacher_forcing_ratio
from nmt.utils import sweep_temporaries

log = logging.getLogger(__name__)

SINGLE = World()  # one process
EpochRecord = dict[str, float]
StepRecord = dict[str, float]  # every train.log_every steps: step, epoch, train_loss, ...
MAX_LENGTH_EXTRA = 5  # greedy validation: max_len = ceil(ratio * src_len) + this
# Keys of an epoch record that measure time: logged, never written into a checkpoint, so
# that two identical runs write byte-identical checkpoints.
TIMING_KEYS = frozenset({"tokens_per_s"})


class TrainingDiverged(ValueError):
    """The loss or the gradient became NaN or infinite; the message names the step."""


# ----------------------------------------------------------------------------- data


@dataclass
class ValidSet:
    """The fixed validation subset: tokenised pairs, BLEU references, a detokeniser."""

    pairs: TokenizedPairs
    refs: list[str]
    detokenize: Callable[[str], str] = lambda s: s

    def __post_init__(self) -> None:
        if len(self.pairs) != len(self.refs):
            raise ValueError(f"{len(self.pairs)} validation pairs but {len(self.refs)} refs")


# ----------------------------------------------------------------------------- steps


@dataclass
class EpochPosition:
    """How far an epoch has gone: the batches done and the running sums of its loss.

    Saved in a mid-epoch ``last.pt``, so that a resumed epoch skips those batches and
    still reports the loss of the whole epoch.
    """

    step: int = 0  # batches of the epoch done
    loss_sum: float = 0.0  # summed over their target tokens
    tokens: int = 0


@dataclass(frozen=True)
class StepStats:
    """One update: its summed loss, target tokens, learning rate and seconds."""

    loss_sum: float
    tokens: int
    lr: float
    seconds: float


def train_epoch(
    model: Seq2SeqModel,
    pairs: TokenizedPairs,
    batches: list[np.ndarray],
    optimizer: Optimizer,
    *,
    step_scheduler: LambdaLR | None,
    params: TrainParams,
    ratio: float,
    device: torch.device,
    dtype: torch.dtype | None,
    progress: ProgressMode = "off",
    epoch: int = 0,
    progress_interval: float = 60.0,
    start: EpochPosition | None = None,
    on_step: Callable[[EpochPosition, StepStats], None] | None = None,
    world: World = SINGLE,
) -> dict[str, float]:
    """One pass over ``batches`` (index arrays into ``pairs``), the 0-based ``epoch``.

    ``start``: where a resumed epoch stands (its first ``start.step`` batches are done);
    ``on_step(position, stats)`` is called after each update. ``progress`` shows the steps,
    the mean loss so far and the tokens per second (see :class:`~nmt.progress.Progress`;
    as lines, one every ``progress_interval`` seconds). Returns the mean training loss per
    target token and the token count of the whole epoch, and the seconds and tokens of
    the steps this call trained. In a ``world`` of several processes each computes its
    share of every batch and the gradients are summed (:mod:`nmt.training.distributed`);
    losses and token counts are the whole batches'.
    """
    model.train()
    tgt_lengths = pairs.tgt_lengths
    pos = EpochPosition() if start is None else EpochPosition(**asdict(start))
    first = pos.step
    new_tokens = 0
    began = time.perf_counter()
    mode = params.teacher_forcing.mode
    desc = f"train epoch {epoch + 1}"
    with Progress(len(batches), desc, "batches", progress, progress_interval) as shown:
        if first:
            shown.update(first)
        for step in range(first, len(batches)):
            step_began = time.perf_counter()
            # The whole batch's target tokens (<eos> included): what every share's loss is
            # divided by, so that the summed gradients are those of the whole batch.
            n_tokens = int(tgt_lengths[batches[step]].sum()) + len(batches[step])
            mine = world.shard(batches[step])
            # A process whose share is empty computes a sentence with no weight: its
            # gradients must still take part in the sum.
            batch = collate(pairs, mine if len(mine) else batches[step][:1]).to(device)
            with autocast(device, dtype):
                logits, target = batch_logits(
                    model, batch, ratio, mode, params.teacher_forcing.stop_at_eos
                )
            loss_sum = masked_cross_entropy(logits, target, params.label_smoothing)
            if not len(mine):
                loss_sum = loss_sum * 0.0
            optimizer.zero_grad(set_to_none=True)
            loss = loss_sum / n_tokens
            loss.backward()
            loss_sum = world.reduce_gradients(model, loss_sum)  # one process: as it is
            norm = None
            if params.clip_grad_norm is not None:
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), params.clip_grad_norm)
            # Checked before the update, so a diverged step never reaches the weights (one
            # host sync per step: nothing on a CPU, a short stall on a GPU). After it the
            # loss is computed, so reading it to the host waits for nothing.
            where = f"epoch {epoch + 1}, step {step + 1} of {len(batches)}"
            check_finite(loss_sum / n_tokens, norm, where=where, params=params)
            step_loss = float(loss_sum.detach())
            pos.loss_sum += step_loss
            lr = current_lr(optimizer)
            optimizer.step()
            if step_scheduler is not None:
                step_scheduler.step()
            pos.tokens += n_tokens
            pos.step = step + 1
            new_tokens += n_tokens
            rate = new_tokens / max(time.perf_counter() - began, 1e-9)
            shown.update(loss=f"{pos.loss_sum / pos.tokens:.3f}", **{"tok/s": f"{rate:,.0f}"})
            if on_step is not None:
                seconds = time.perf_counter() - step_began
                on_step(pos, StepStats(step_loss, n_tokens, lr, seconds))
    return {
        "loss": pos.loss_sum / max(pos.tokens, 1),
        "tokens": pos.tokens,
        "new_tokens": new_tokens,
        "seconds": time.perf_counter() - began,
    }


def check_finite(
    loss: Tensor, grad_norm: Tensor | None, *, where: str, params: TrainParams
) -> None:
    """Raise :class:`TrainingDiverged` when ``loss`` or ``grad_norm`` is not finite.

    ``where`` names the step (e.g. "epoch 1, step 7 of 120"); the message names what most
    often causes it and the params to change.
    """
    loss = loss.detach()
    if not torch.isfinite(loss):
        what = f"the loss is {float(loss)}"
    elif grad_norm is not None and not torch.isfinite(grad_norm):
        what = f"the gradient norm is {float(grad_norm)} (loss {float(loss):.4g})"
    else:
        return
    unclipped = ", without train.clip_grad_norm" if params.clip_grad_norm is None else ""
    raise TrainingDiverged(
        f"training diverged at {where}: {what}. The usual cause is a learning rate too "
        f"high for the model (train.lr = {params.lr:g}{unclipped}): lower train.lr, set "
        "train.clip_grad_norm or a warm-up (train.lr_schedule); with train.precision bf16, "
        "try fp32. No checkpoint of this epoch was written."
    )


def batch_logits(
    model: Seq2SeqModel,
    batch: Batch,
    ratio: float = 1.0,
    mode: str = "token",
    stop_at_eos: bool = False,
) -> tuple[Tensor, Tensor]:
    """Logits and targets of a batch for the loss.

    Under full teacher forcing only real target positions reach the output projection:
    logits (N, V) and targets (N,) for the batch's N real tokens. Otherwise the decoder
    steps and logits are (B, T, V) with targets (B, T), padding included (and ignored by
    the loss). With ``stop_at_eos``, the loss of a sentence decoded wholly from the model's
    own guesses ends at the first step that predicts ``<eos>`` (that step included), as
    the tutorials' free-running loops stop there.
    """
    if ratio >= 1.0:
        features = model.features(batch.src, batch.src_lengths, batch.tgt_in)
        real = batch.tgt_out != PAD_ID
        return model.logits(features[real]), batch.tgt_out[real]
    if not stop_at_eos:
        return model(batch.src, batch.src_lengths, batch.tgt_in, ratio, mode), batch.tgt_out
    b, t_len = batch.tgt_in.shape
    use_ref = reference_mask(b, t_len, ratio, mode, batch.tgt_in.device)
    logits = model(batch.src, batch.src_lengths, batch.tgt_in, feed_reference=use_ref)
    free = ~use_ref[:, 1:].any(dim=1)  # (B,) sentences fed only their own guesses
    return logits, stop_at_predicted_eos(logits.detach(), batch.tgt_out, free)


def _valid_batches(pairs: TokenizedPairs, batch_size: int) -> list[Batch]:
    order = make_batches(pairs.src_lengths, pairs.tgt_lengths, batch_size=batch_size, shuffle=False)
    return [collate(pairs, idx) for idx in order]


@torch.no_grad()
def validate(
    model: Seq2SeqModel,
    valid: ValidSet,
    tgt_decode: Callable[[list[int]], str],
    *,
    device: torch.device,
    dtype: torch.dtype | None,
    batch_size: int = 100,
    max_length_ratio: float = 2.0,
) -> dict[str, float]:
    """Loss with teacher forcing, loss running free (each input the model's previous
    argmax, scored against the reference up to its length) and greedy BLEU.

    The gap between the two losses is the exposure bias. BLEU is sacrebleu's corpus BLEU of
    the detokenised greedy output against ``valid.refs``.
    """
    from nmt.inference.search import greedy_search, max_output_lengths, prepare

    model.eval()
    forced = free = 0.0
    tokens = 0
    hyps: list[str] = [""] * len(valid.refs)
    prepared = None  # made once per validation: the parameters change between them
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for cpu_batch in _valid_batches(valid.pairs, batch_size):
            batch = cpu_batch.to(device)
            with autocast(device, dtype):
                logits_tf, target_tf = batch_logits(model, batch)
                logits_free, target_free = batch_logits(model, batch, 0.0)
                limits = max_output_lengths(batch.src_lengths, max_length_ratio, MAX_LENGTH_EXTRA)
                prepared = prepared or prepare(model)
                out = greedy_search(model, batch.src, batch.src_lengths, limits, prepared=prepared)
            forced += float(masked_cross_entropy(logits_tf, target_tf))
            free += float(masked_cross_entropy(logits_free, target_free))
            tokens += batch.n_tokens
            for i, ids in zip(batch.indices.tolist(), out, strict=True):
                hyps[i] = valid.detokenize(tgt_decode(ids))
    bleu = sacrebleu.corpus_bleu(hyps, [valid.refs])
    return {
        "valid_loss": forced / max(tokens, 1),
        "valid_loss_free": free / max(tokens, 1),
        "valid_bleu": float(bleu.score),
    }


# ----------------------------------------------------------------------------- state


def rng_state() -> dict[str, Any]:
    """torch (CPU and CUDA), Python and NumPy global RNG states, as weights_only-safe data."""
    version, py_state, gauss = random.getstate()
    kind, np_keys, np_pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": [version, list(py_state), gauss],
        "numpy": [kind, torch.from_numpy(np_keys.astype(np.int64)), np_pos, has_gauss, cached],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, py_state, gauss = state["python"]
    random.setstate((version, tuple(py_state), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def fingerprint(*parts: Any) -> str:
    """A short digest of JSON-able ``parts``: what a checkpoint must match to be resumed."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# Params that change how long a run goes or how often it saves, not what it computes.
NOT_FINGERPRINTED = frozenset({"epochs", "checkpoint_every", "checkpoint_minutes", "log_every"})


def resume_fingerprint(params: TrainParams, *parts: Any) -> str:
    """Fingerprint of a run, :data:`NOT_FINGERPRINTED` left out: a finished run resumes to
    train longer, an interrupted one may resume with checkpoints at other intervals."""
    return fingerprint(params.model_dump(exclude=set(NOT_FINGERPRINTED)), *parts)


@dataclass
class FitState:
    """What the loop carries from epoch to epoch (and into ``last.pt``)."""

    epoch: int = 0  # epochs completed
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    best_value: float | None = None
    bad_epochs: int = 0
    stopped_early: bool = False
    train_tokens: int = 0
    steps: int = 0  # optimizer steps, over all epochs
    # The steps since the last step record (train.log_every), and the records so far.
    window_loss: float = 0.0
    window_tokens: int = 0
    step_history: list[StepRecord] = field(default_factory=list)
    # Not saved: timings of this process only (from_epoch: the epoch it started after).
    from_epoch: int = 0
    train_seconds: float = 0.0
    new_tokens: int = 0
    window_seconds: float = 0.0
    window_new_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        """What ``last.pt`` keeps: everything but timings, so checkpoints reproduce."""
        saved = dict(self.__dict__)
        for key in UNSAVED:
            saved.pop(key)
        saved["history"] = [without_timings(r) for r in self.history]
        saved["step_history"] = [without_timings(r) for r in self.step_history]
        return saved

    def log_step(
        self, stats: StepStats, every: int | None, epoch: int, ratio: float, end: bool
    ) -> StepRecord | None:
        """Count an update; every ``every`` steps and at the ``end`` of an epoch, the
        record of the steps since the last one (None: no records)."""
        self.window_loss += stats.loss_sum
        self.window_tokens += stats.tokens
        self.window_seconds += stats.seconds
        self.window_new_tokens += stats.tokens
        if every is None or (self.steps % every and not end):
            return None
        record: StepRecord = {
            "step": self.steps,
            "epoch": epoch + 1,
            "train_loss": self.window_loss / max(self.window_tokens, 1),
            "lr": stats.lr,
            "teacher_forcing": ratio,
            "tokens_per_s": self.window_new_tokens / max(self.window_seconds, 1e-9),
        }
        self.step_history.append(record)
        self.window_loss, self.window_tokens = 0.0, 0
        self.window_seconds, self.window_new_tokens = 0.0, 0
        return record

    def finished(self, epochs: int) -> bool:
        return self.stopped_early or self.epoch >= epochs


UNSAVED = ("from_epoch", "train_seconds", "new_tokens", "window_seconds", "window_new_tokens")


def without_timings(record: EpochRecord) -> EpochRecord:
    return {k: v for k, v in record.items() if k not in TIMING_KEYS}


@dataclass
class FitResult:
    state: FitState
    best: EpochRecord  # the history record of the best epoch

    def summary(self) -> dict[str, Any]:
        s = self.state
        return {
            "best_epoch": s.best_epoch,
            "final_epoch": s.epoch,
            "stopped_early": s.stopped_early,
            "best": {k: v for k, v in self.best.items() if k.startswith("valid_")},
            "final": {k: v for k, v in s.history[-1].items() if k.startswith("valid_")},
            # timings of the epochs this process trained (all of them unless resumed)
            "resumed_after_epoch": s.from_epoch,
            "train_seconds": round(s.train_seconds, 1),
            "train_tokens_per_s": round(s.new_tokens / max(s.train_seconds, 1e-9), 1),
        }


def _improved(metric: str, value: float, best: float | None, min_delta: float) -> bool:
    if best is None:
        return True
    if metric == "valid_bleu":
        return value > best + min_delta
    return value < best - min_delta


# ----------------------------------------------------------------------------- loop


def fit(
    model: Seq2SeqModel,
    train: TokenizedPairs,
    valid: ValidSet,
    tgt_decode: Callable[[list[int]], str],
    params: TrainParams,
    *,
    seed: int,
    device: torch.device,
    dtype: torch.dtype | None,
    out_dir: str | Path,
    payload: Callable[[], dict[str, Any]],
    run_id: str,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    on_log: Callable[[StepRecord], None] | None = None,
    resume: bool = True,
    progress: ProgressMode = "off",
    world: World = SINGLE,
) -> FitResult:
    """Train ``model`` (already on ``device``) for up to ``params.epochs`` epochs.

    After each epoch: validate, call ``on_epoch(record)``, write ``out_dir/best.pt`` when
    the early-stopping metric improved, ``out_dir/epoch-<n>.pt`` (the weights of the last
    ``params.keep_epochs`` epochs are kept) and ``out_dir/last.pt`` (with the training
    state); with ``params.checkpoint_every`` (steps) or ``params.checkpoint_minutes``,
    ``last.pt`` also mid-epoch, with the position in the epoch, so that a run killed
    mid-epoch resumes from that step.
    Every ``params.log_every`` steps and at the end of each epoch, ``on_log(record)`` gets
    the mean training loss per target token of the steps since the last record, the
    learning rate of the last, the teacher-forcing ratio and their tokens per second.
    ``payload()`` returns the self-describing part of a checkpoint (weights, tokenizers,
    see :func:`nmt.training.checkpoint.model_payload`). With ``resume``, an unfinished ``last.pt``
    whose ``run_id`` matches is continued; its history is replayed through ``on_epoch``
    first (and its step records through ``on_log``), so a logger ends up with the same
    records as in an uninterrupted run (less the timings of the epochs and steps before
    the interruption, which checkpoints do not keep).
    A non-finite loss or gradient raises :class:`TrainingDiverged` before any update.
    In a ``world`` of several processes (every one calls ``fit``), each trains on its
    share of every batch; rank 0 alone validates, calls ``on_epoch`` and ``on_log``,
    shows progress and writes checkpoints, holding every process's RNG state.
    """
    out = Path(out_dir)
    if not world.main:
        on_epoch = on_log = None
        progress = "off"
    optimizer = build_optimizer(model, params)
    scheduler = build_scheduler(optimizer, params.lr_schedule)
    state = FitState()
    # what atomic saves left: ".<name>.<random>" beside <name>
    epoch_names = {t.name[1:].split(".pt.", 1)[0] + ".pt" for t in out.glob(".epoch-*.pt.*")}
    for name in ["best.pt", "last.pt", *sorted(epoch_names)] if world.main else []:
        for left in sweep_temporaries(out / name):
            log.info("removed %s, left by a process killed while saving", left)
    position: dict[str, Any] | None = None  # of the unfinished epoch last.pt stopped in
    if resume:
        state, position = _try_resume(
            out / "last.pt", run_id, params.epochs, model, optimizer, scheduler, world
        )
        for record in state.history:
            if on_epoch is not None:
                on_epoch(record)
        for record in state.step_history:
            if on_log is not None:
                on_log(record)
    if world.rank and not state.steps:
        # Another stream of dropout and sampling draws than rank 0's, from the same seed.
        torch.manual_seed(seed + 7919 * world.rank)
    # Epochs of another run, or of this one past where it resumes, are not this run's.
    for epoch, path in epoch_checkpoints(out).items() if world.main else []:
        if epoch > state.epoch:
            path.unlink()
    step_scheduler = scheduler if isinstance(scheduler, LambdaLR) else None
    stop = params.early_stopping

    saved_at = [time.monotonic()]  # when last.pt was last written (rank 0's clock counts)

    def save_last(record: EpochRecord, at: dict[str, Any] | None) -> None:
        saved_at[0] = time.monotonic()
        rngs = world.gather(rng_state())  # every process's, for each to resume its own
        if not world.main:
            return
        # Through JSON: the records then pickle alike whether this process made them or
        # read them from a checkpoint, and a resumed run writes the same bytes.
        plain = json.loads(
            json.dumps({"metrics": without_timings(record), "fit": state.to_dict(), "at": at})
        )
        training = {
            "run_id": run_id,
            "fit": plain["fit"],
            "position": plain["at"],
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler_state(scheduler),
            "rng": rngs[0],
            **({"rng_ranks": rngs} if world.size > 1 else {}),
        }
        metrics = plain["metrics"]
        save_checkpoint(out / "last.pt", {**payload(), "metrics": metrics, "training": training})

    while state.epoch < params.epochs and not state.stopped_early:
        epoch = state.epoch
        ratio = teacher_forcing_ratio(params.teacher_forcing, epoch)
        # A resumed epoch records the learning rate it began with, as an uninterrupted one.
        lr = current_lr(optimizer) if position is None else position["lr"]
        start = None if position is None else EpochPosition(**position["epoch"])
        position = None
        batches = make_batches(
            train.src_lengths,
            train.tgt_lengths,
            batch_tokens=params.batch_tokens,
            batch_size=params.batch_size,
            bucket_pool=params.bucket_pool,
            seed=seed,
            epoch=epoch,
            passes=params.passes,
        )

        def after_step(
            pos: EpochPosition, stats: StepStats, lr: float = lr, n: int = len(batches),
            epoch: int = epoch, ratio: float = ratio,
        ) -> None:  # fmt: skip
            state.steps += 1
            record = state.log_step(stats, params.log_every, epoch, ratio, pos.step == n)
            if record is not None and on_log is not None:
                on_log(record)
            if pos.step < n and _save_due(params, state.steps, saved_at[0], world):
                last = state.history[-1] if state.history else {}
                save_last(last, {"epoch": asdict(pos), "lr": lr})

        stats = train_epoch(
            model, train, batches, optimizer, step_scheduler=step_scheduler, params=params,
            ratio=ratio, device=device, dtype=dtype, progress=progress, epoch=epoch,
            start=start, on_step=after_step, world=world,
        )  # fmt: skip
        scores = None
        if world.main:  # the others wait for its scores, which every process acts on
            scores = validate(
                model, valid, tgt_decode, device=device, dtype=dtype,
                batch_size=params.valid_batch_size, max_length_ratio=params.max_length_ratio,
            )  # fmt: skip
        scores = world.broadcast(scores)
        if isinstance(scheduler, ReduceLROnPlateau):
            scheduler.step(scores["valid_loss"])
        record: EpochRecord = {
            "epoch": epoch + 1,
            "train_loss": stats["loss"],
            **scores,
            "teacher_forcing": ratio,
            "lr": lr,
            "tokens_per_s": stats["new_tokens"] / max(stats["seconds"], 1e-9),
        }
        if params.loss_slots is not None:
            # the epoch's summed loss over every sentence's slots (each pair once a pass)
            sentences = len(train.src_lengths) * params.passes
            record["train_loss_per_slot"] = (
                stats["loss"] * stats["tokens"] / (params.loss_slots * max(sentences, 1))
            )
        state.epoch = epoch + 1
        state.history.append(record)
        state.train_seconds += stats["seconds"]
        state.train_tokens += int(stats["tokens"])
        state.new_tokens += int(stats["new_tokens"])
        value = scores[stop.metric]
        improved = _improved(stop.metric, value, state.best_value, stop.min_delta)
        if improved:
            state.best_value, state.best_epoch, state.bad_epochs = value, epoch + 1, 0
        else:
            state.bad_epochs += 1
            state.stopped_early = state.bad_epochs >= stop.patience
        weights = {**payload(), "metrics": without_timings(record)} if world.main else {}
        if world.main:
            log.info(_format_record(record))
            if improved:
                save_checkpoint(out / "best.pt", weights)
        if on_epoch is not None:
            on_epoch(record)
        if world.main:
            _keep_epoch(out, epoch + 1, weights, params.keep_epochs)
        save_last(record, None)
    world.barrier()  # rank 0's last writes done: a process that fails fails them all
    best = state.history[state.best_epoch - 1] if state.history else {}
    return FitResult(state=state, best=best)


def _save_due(params: TrainParams, steps: int, saved_at: float, world: World) -> bool:
    """Whether ``last.pt`` is due mid-epoch after ``steps`` updates: every
    ``checkpoint_every`` steps, or ``checkpoint_minutes`` after the last write by rank 0's
    clock, which every process then follows (a write gathers their RNG states)."""
    every, minutes = params.checkpoint_every, params.checkpoint_minutes
    due = every is not None and steps % every == 0
    if minutes is not None:
        due = world.broadcast(due or time.monotonic() - saved_at >= 60 * minutes)
    return due


def _keep_epoch(out: Path, epoch: int, weights: dict[str, Any], keep: int) -> None:
    """Write ``epoch-<epoch>.pt`` and remove those ``keep`` or more epochs older."""
    save_checkpoint(epoch_path(out, epoch), weights)
    for old, path in epoch_checkpoints(out).items():
        if old <= epoch - keep:
            path.unlink()


def _try_resume(
    path: Path,
    run_id: str,
    epochs: int,
    model: Seq2SeqModel,
    optimizer: Optimizer,
    scheduler: Scheduler | None,
    world: World = SINGLE,
) -> tuple[FitState, dict[str, Any] | None]:
    """Load ``path`` into model/optimizer/scheduler/RNG when it is an unfinished epoch of
    this run (``epochs`` in all); otherwise leave everything as it is and start afresh.
    Returns the state and, for a checkpoint written mid-epoch, the position in the epoch
    (``{"epoch": EpochPosition fields, "lr": the epoch's first learning rate}``).

    A finished run is never resumed: re-running a stage (``dvc repro -f``, or a changed
    dependency such as the model code) must train again, not stop after loading. Raising
    ``epochs`` makes a finished run unfinished, so it trains on. An unreadable ``last.pt``
    (a crash of the disk, not of a save: saves are atomic) is reported and ignored. In a
    ``world`` of several processes rank 0 reads the file and sends it to the others.
    """
    ckpt = world.broadcast(_resumable(path, run_id, epochs) if world.main else None)
    if ckpt is None:
        return FitState(), None
    training = ckpt["training"]
    state = FitState(**training["fit"])
    model.load_state_dict(ckpt["model_state"])
    optimizer.load_state_dict(training["optimizer"])
    load_scheduler_state(scheduler, training["scheduler"])
    set_rng_state(training["rng_ranks"][world.rank] if world.size > 1 else training["rng"])
    state.from_epoch, state.train_seconds, state.new_tokens = state.epoch, 0.0, 0
    position = training.get("position")
    if world.main and position is None:
        log.info("resuming from %s after epoch %d", path, state.epoch)
    elif world.main:
        step = position["epoch"]["step"]
        log.info("resuming from %s at epoch %d, step %d", path, state.epoch + 1, step)
    return state, position


def _resumable(path: Path, run_id: str, epochs: int) -> dict[str, Any] | None:
    """The checkpoint at ``path`` when it is an unfinished run of ``run_id``, else None."""
    if not path.is_file():
        return None
    try:
        ckpt = read_checkpoint(path)
    except CheckpointError as err:
        log.warning("%s; training from scratch (the file is replaced after epoch 1)", err)
        return None
    training = ckpt.get("training") or {}
    if training.get("run_id") != run_id:
        log.info("%s belongs to another configuration; training from scratch", path)
        return None
    state = FitState(**training["fit"])
    if state.finished(epochs):
        log.info("%s is a finished run (%d epochs); training from scratch", path, state.epoch)
        return None
    return ckpt


def _format_record(r: EpochRecord) -> str:
    return (
        f"epoch {int(r['epoch'])}: train {r['train_loss']:.3f} | valid {r['valid_loss']:.3f} "
        f"(free {r['valid_loss_free']:.3f}) | BLEU {r['valid_bleu']:.2f} | "
        f"tf {r['teacher_forcing']:.2f} | lr {r['lr']:.2e} | {r['tokens_per_s']:.0f} tok/s"
    )
