"""Params of the train stage (shared by every model in ``models:``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from nmt.config.base import StrictModel, Threads


class TeacherForcingParams(StrictModel):
    """Probability of feeding the reference token (rather than the model's own guess).

    The ratio in force at (0-based) epoch ``i`` is ``max(min_ratio, ratio * f(i))`` with
    ``f`` from ``schedule`` (Bengio et al., 2015, "Scheduled sampling"):

    - ``constant``: f(i) = 1
    - ``linear``: f(i) = 1 - slope * i
    - ``exponential``: f(i) = base ** i (base < 1)
    - ``inverse_sigmoid``: f(i) = k / (k + exp(i / k)) (k >= 1; f(0) = k / (k + 1))

    ``mode`` draws the choice per target token (``token``, as in the paper) or once per
    sentence (``sequence``). A ratio of 1.0 takes the model's fast teacher-forced path.
    """

    ratio: float = Field(1.0, ge=0.0, le=1.0)
    mode: Literal["token", "sequence"] = "token"
    schedule: Literal["constant", "linear", "exponential", "inverse_sigmoid"] = "constant"
    min_ratio: float = Field(0.0, ge=0.0, le=1.0)
    slope: float = Field(0.1, ge=0.0)  # linear: decrease per epoch
    base: float = Field(0.9, gt=0.0, le=1.0)  # exponential: factor per epoch
    k: float = Field(5.0, ge=1.0)  # inverse_sigmoid: larger k decays later
    # A sentence decoded wholly from the model's own guesses: its loss ends at the first
    # step that predicts <eos> (the tutorials' free-running loops stop there).
    stop_at_eos: bool = False

    @model_validator(mode="after")
    def _floor(self) -> TeacherForcingParams:
        if self.min_ratio > self.ratio:
            raise ValueError("min_ratio must not exceed ratio")
        return self


class LRScheduleParams(StrictModel):
    """Learning-rate schedule.

    - ``none``: the optimizer's ``lr`` throughout.
    - ``plateau``: multiply by ``factor`` when the validation loss (teacher-forced) has
      not improved for ``patience`` epochs (never below ``min_lr``).
    - ``warmup``: linear warm-up from 0 over ``warmup_steps`` optimizer steps, then
      ``after_warmup``: ``inverse_sqrt`` (lr * sqrt(warmup_steps / step), Vaswani et al.
      2017) or ``constant``.
    """

    kind: Literal["none", "plateau", "warmup"] = "none"
    factor: float = Field(0.5, gt=0.0, lt=1.0)
    patience: int = Field(1, ge=0)
    min_lr: float = Field(1e-5, ge=0.0)
    warmup_steps: int = Field(1000, ge=1)
    after_warmup: Literal["inverse_sqrt", "constant"] = "inverse_sqrt"


class EarlyStoppingParams(StrictModel):
    """Stop when ``metric`` has not improved for ``patience`` epochs; best.pt is the best
    epoch by that metric (loss: lower is better; BLEU: higher)."""

    metric: Literal["valid_loss", "valid_bleu"] = "valid_bleu"
    patience: int = Field(3, ge=1)
    min_delta: float = Field(0.0, ge=0.0)


class TrainParams(StrictModel):
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # torch's CPU threads; auto: the CPUs this process may use (nmt.threads).
    threads: Threads = "auto"
    # auto: bf16 autocast on CUDA, fp32 on CPU; bf16 autocasts on either device.
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    # On CUDA: deterministic kernels only (nmt.device.use_deterministic), some slower.
    deterministic: bool = False
    epochs: int = Field(10, ge=1)
    # Exactly one of the two: a token budget per batch (padded src + tgt positions, with
    # length bucketing), or a fixed number of sentences per batch.
    batch_tokens: int | None = Field(4000, ge=1)
    batch_size: int | None = Field(None, ge=1)
    # Sort by length inside pools of this many batches before cutting batches (bucketing);
    # 1: no sorting beyond the batch itself.
    bucket_pool: int = Field(50, ge=1)
    max_train_pairs: int | None = Field(None, ge=1)  # seeded sample of the training set
    # Passes over the training pairs per epoch, each shuffled as an epoch of its own: tiny
    # data trained for thousands of passes validates and checkpoints once per epoch.
    passes: int = Field(1, ge=1)
    # Also log the training loss per sentence spread over this many slots (the unit of a
    # write-up whose loss averages over fixed-length padded sentences; 1: per sentence).
    loss_slots: int | None = Field(None, ge=1)
    optimizer: Literal["adam", "adamw", "adagrad", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0.0)
    momentum: float = Field(0.0, ge=0.0, lt=1.0)  # sgd only
    lr_schedule: LRScheduleParams = LRScheduleParams()
    clip_grad_norm: float | None = Field(1.0, gt=0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    teacher_forcing: TeacherForcingParams = TeacherForcingParams()
    early_stopping: EarlyStoppingParams = EarlyStoppingParams()
    # Validation each epoch on the first ``valid_sentences`` pairs of valid.parquet:
    # teacher-forced loss, free-running loss and greedy BLEU.
    valid_sentences: int = Field(500, ge=1)
    valid_batch_size: int = Field(100, ge=1)
    max_length_ratio: float = Field(2.0, gt=0.0)  # greedy: max_len = ratio * src_len + 5
    # The weights of the last this many epochs stay in the checkpoint folder
    # (epoch-<n>.pt), for the average stage to average.
    keep_epochs: int = Field(5, ge=1)
    # Also write last.pt every this many optimizer steps, with the position in the
    # epoch, so a run killed mid-epoch resumes from that step; None: after each epoch only.
    checkpoint_every: int | None = Field(None, ge=1)
    # And (or only) once this many minutes have passed since the last write; None: not.
    checkpoint_minutes: float | None = Field(None, gt=0)
    # Log the training loss, learning rate, teacher-forcing ratio and tokens/s every this
    # many steps and at the end of each epoch (dvclive, beside the per-epoch logs); None:
    # per epoch only.
    log_every: int | None = Field(100, ge=1)
    # Data-parallel training processes: 1, or N under torchrun (one per GPU on CUDA, gloo
    # on CPU), which the train stage starts on one machine; the world size under a
    # torchrun of your own (several machines).
    processes: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _one_batching(self) -> TrainParams:
        if (self.batch_tokens is None) == (self.batch_size is None):
            raise ValueError("set exactly one of batch_tokens and batch_size (the other null)")
        return self


class AverageParams(StrictModel):
    """The model a training run delivers (``models/<name>/model.pt``: what ``evaluate``
    scores and ``nmt translate`` and ``nmt serve`` load): with ``last: 1``, the best epoch
    by ``train.early_stopping.metric``; with ``last: k``, the element-wise mean of the
    weights of the last k epochs (checkpoint averaging, Junczys-Dowmunt et al. 2016), at
    most ``train.keep_epochs`` of them. A section of its own, so that changing it
    re-runs the averaging and evaluation, not the training."""

    last: int = Field(1, ge=1)
