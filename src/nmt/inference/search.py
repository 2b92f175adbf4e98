"""Search: greedy and beam search as free functions of a model and a padded batch.

Both work on whole batches: greedy search advances every sentence one token per step;
beam search keeps ``beam_size`` hypotheses per sentence as ``B * K`` rows of one batch,
reordered after each step with :meth:`~nmt.models.base.Seq2SeqModel.reorder`. Sentences that are
finished drop out of the batch, so a long sentence never makes short ones pay.

Outputs are lists of token ids without ``<sos>``, ``<eos>`` or padding (the search never
proposes ``<pad>`` or ``<sos>``). The maximum output
length is per sentence: ``ceil(max_length_ratio * source length) + max_length_extra``
(see :func:`max_output_lengths`); a source of length 0 gives an empty output.

Length penalty (beam search only): a finished hypothesis Y of log-probability log P(Y) is
ranked by ``log P(Y) / lp(Y)`` with GNMT's ``lp(Y) = ((5 + |Y|) / 6) ** alpha`` (Wu et al.
2016), where ``|Y|`` counts the output tokens including ``<eos>``. ``alpha = 0`` ranks by
the raw log-probability (which favours short outputs); ``alpha = 1`` is close to dividing
by the length.

The model must be in eval mode (dropout off); every function runs under
:func:`torch.inference_mode`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from nmt.models import Memory, SearchStep, Seq2SeqModel, State
from nmt.models.kernels import argmax as kernel_argmax
from nmt.models.kernels import search_step
from nmt.specials import EOS_ID, PAD_ID, SOS_ID

__all__ = [
    "EOS_ID",
    "PAD_ID",
    "SOS_ID",
    "Prepared",
    "SearchSettings",
    "beam_search",
    "greedy_search",
    "length_penalty",
    "max_output_lengths",
    "prepare",
    "search",
]


@dataclass(frozen=True)
class SearchSettings:
    """How to search. ``beam_size`` 1 is greedy search."""

    beam_size: int = 1
    length_penalty: float = 1.0
    max_length_ratio: float = 2.0
    max_length_extra: int = 10

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {self.beam_size}")
        if self.length_penalty < 0:
            raise ValueError(f"length_penalty must be >= 0, got {self.length_penalty}")
        if self.max_length_ratio <= 0 or self.max_length_extra < 0:
            raise ValueError("max_length_ratio must be > 0 and max_length_extra >= 0")


def max_output_lengths(src_lengths: Tensor, ratio: float, extra: int) -> Tensor:
    """src_lengths: (B,) -> (B,) ``ceil(ratio * length) + extra``, and 0 for empty sources."""
    limits = torch.ceil(src_lengths.double() * ratio).long() + extra
    return torch.where(src_lengths > 0, limits, torch.zeros_like(limits))


def length_penalty(lengths: Tensor | int, alpha: float) -> Tensor | float:
    """GNMT's ``((5 + |Y|) / 6) ** alpha``; divide a log-probability by it."""
    if isinstance(lengths, int):
        return ((5 + lengths) / 6) ** alpha
    return ((5 + lengths.double()) / 6) ** alpha


def _limits(max_len: int | Tensor, src_lengths: Tensor) -> Tensor:
    """Per-row output caps (B,) on the CPU; rows with an empty source get 0."""
    lengths = src_lengths.cpu()
    if isinstance(max_len, Tensor):
        limits = max_len.cpu().long().clone()
        if limits.shape != lengths.shape:
            raise ValueError(
                f"max_len has shape {tuple(limits.shape)}, want {tuple(lengths.shape)}"
            )
    else:
        limits = torch.full_like(lengths, int(max_len))
    return torch.where(lengths > 0, limits.clamp(min=0), torch.zeros_like(limits))


def _start(step: SearchStep, src: Tensor, src_lengths: Tensor):
    # Empty sources are encoded as one padding token (packing needs lengths >= 1); their
    # output cap is 0, so nothing is ever decoded from them.
    lengths = src_lengths.clamp(min=1)
    if src.size(1) == 0:
        src = src.new_zeros(src.size(0), 1)
    return step.start(src, lengths)


def _forbid_specials(logits: Tensor) -> Tensor:
    """logits: (N, V) -> the same with ``<pad>`` and ``<sos>`` made impossible."""
    logits[:, PAD_ID] = -math.inf
    logits[:, SOS_ID] = -math.inf
    return logits


def _cut(row: list[int]) -> list[int]:
    """Token ids up to (without) the first ``<eos>`` or padding."""
    for i, tok in enumerate(row):
        if tok in (EOS_ID, PAD_ID):
            return row[:i]
    return row


@dataclass(frozen=True)
class Prepared:
    """What search makes once from a model's parameters and uses for every batch: the
    search step and the argmax (:mod:`nmt.models.kernels` chooses them). Valid while the
    parameters do not change: make a new one after they do (optimizers update them in
    place, fused Adam without a trace).
    """

    step: SearchStep
    argmax: Callable[[Tensor], Tensor]


def prepare(model: Seq2SeqModel) -> Prepared:
    """:class:`Prepared` for searching ``model``; make it in the autocast context that the
    search runs in (some fast steps are fp32 only)."""
    return Prepared(step=search_step(model), argmax=kernel_argmax(model))


@torch.inference_mode()
def greedy_search(
    model: Seq2SeqModel,
    src: Tensor,
    src_lengths: Tensor,
    max_len: int | Tensor,
    return_attention: bool = False,
    prepared: Prepared | None = None,
) -> list[list[int]] | tuple[list[list[int]], list[Tensor] | None]:
    """Pick the most probable token at each step, for a whole batch at once.

    src: (B, S) padded source ids; src_lengths: (B,) real lengths (0 gives an empty
    output); max_len: an int, or (B,) per-row caps on the output length (without
    ``<eos>``). Stops when every row has produced ``<eos>`` or reached its cap.

    Returns the token ids of each row. With ``return_attention``, also the attention
    weights of each row, a float CPU tensor (steps, src_length) with one row per output
    token plus one for ``<eos>`` when it was produced -- or None for a model without
    attention.

    ``prepared``: from :func:`prepare` for this model, to share between batches; made here
    when None.
    """
    if prepared is None:
        prepared = prepare(model)
    b = src.size(0)
    limits = _limits(max_len, src_lengths)
    if b == 0 or int(limits.max()) == 0:
        hyps: list[list[int]] = [[] for _ in range(b)]
        if not return_attention:
            return hyps
        empty = [torch.zeros(0, int(n)) for n in src_lengths.cpu()]
        return hyps, (empty if model.has_attention else None)
    step, argmax = prepared.step, prepared.argmax
    enc, state = _start(step, src, src_lengths)
    device, steps = src.device, int(limits.max())
    tokens = torch.full((b, steps), PAD_ID, dtype=torch.long, device=device)
    want_attn = return_attention and model.has_attention
    weights = torch.zeros(b, steps, src.size(1), device=device) if want_attn else None
    rows = torch.arange(b, device=device)  # the batch row of each row still decoding
    limits_d = limits.to(device)
    prev = torch.full((b,), SOS_ID, dtype=torch.long, device=device)
    finished = limits_d <= 0
    for t in range(steps):
        logits, state, attn = step(prev, state, enc)
        nxt = argmax(_forbid_specials(logits))
        nxt = nxt.masked_fill(finished, PAD_ID)
        tokens[rows, t] = nxt
        if weights is not None and attn is not None:
            weights[rows, t, : attn.size(1)] = attn.masked_fill(finished[:, None], 0.0).float()
        finished = finished | (nxt == EOS_ID) | (limits_d <= t + 1)
        done = int(finished.sum())
        if done == len(rows):
            break
        if 4 * done >= len(rows):  # drop finished rows once they are a quarter of the batch
            keep = (~finished).nonzero().squeeze(1)
            state, enc = model.reorder(state, enc, keep)
            rows, limits_d, nxt, finished = rows[keep], limits_d[keep], nxt[keep], finished[keep]
        prev = nxt
    out = tokens.tolist()  # (B, T)
    hyps = [_cut(row) for row in out]
    if not return_attention:
        return hyps
    if weights is None:
        return hyps, None
    weights = weights.cpu()
    lengths = src_lengths.cpu().tolist()
    per_row = []
    for i, hyp in enumerate(hyps):
        steps_i = len(hyp) + (1 if len(hyp) < steps and out[i][len(hyp)] == EOS_ID else 0)
        per_row.append(weights[i, :steps_i, : lengths[i]].clone())
    return hyps, per_row


@dataclass
class _Beams:
    """The live part of a beam search over the n sentences still searching.

    prepared: the model's search step and argmax; state/enc: n*K rows; scores: (n, K) cumulative
    log-probabilities (-inf: an empty slot); seqs: (n*K, t) tokens so far; prev: (n*K,)
    last tokens; active: the original batch index of each of the n sentences.
    """

    prepared: Prepared
    state: State
    enc: Memory
    scores: Tensor
    seqs: Tensor
    prev: Tensor
    active: list[int]

    def keep(self, model: Seq2SeqModel, keep_j: list[int], k: int) -> None:
        """Keep only sentences ``keep_j`` (positions among the n), all K rows of each."""
        keep = torch.tensor(keep_j, device=self.scores.device)
        rows = (keep[:, None] * k + torch.arange(k, device=keep.device)).view(-1)
        self.state, self.enc = model.reorder(self.state, self.enc, rows)
        self.scores = self.scores.index_select(0, keep)
        self.seqs, self.prev = self.seqs.index_select(0, rows), self.prev[rows]
        self.active = [self.active[j] for j in keep_j]


Finished = list[list[tuple[float, list[int]]]]  # per sentence: (normalised score, tokens)


@torch.inference_mode()
def beam_search(
    model: Seq2SeqModel,
    src: Tensor,
    src_lengths: Tensor,
    max_len: int | Tensor,
    beam_size: int,
    alpha: float = 1.0,
    prepared: Prepared | None = None,
) -> list[list[int]]:
    """Beam search over ``B * K`` rows; return the best finished hypothesis per sentence.

    src: (B, S) padded source ids; src_lengths: (B,); max_len: an int or (B,) caps on
    the output length (without ``<eos>``); alpha: the GNMT length-penalty exponent.

    Each step extends every live hypothesis by every token and keeps the 2K best
    extensions per sentence: those ending in ``<eos>`` among the first K are finished
    (scored ``log P / lp``); the K best others stay alive. A sentence is done once it
    holds K finished hypotheses, or when it reaches its cap (its live hypotheses are
    then finished as they are). With K = 1 this is exactly greedy search.

    ``prepared``: from :func:`prepare`, to share between batches; made here when None.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be at least 1, got {beam_size}")
    b, k = src.size(0), beam_size
    limits = _limits(max_len, src_lengths).tolist()
    finished: Finished = [[(0.0, [])] if cap == 0 else [] for cap in limits]
    if b == 0 or max(limits) == 0:
        return [[] for _ in range(b)]
    device = src.device
    prepared = prepared or prepare(model)
    enc, state = _start(prepared.step, src, src_lengths)
    state, enc = model.reorder(state, enc, torch.arange(b, device=device).repeat_interleave(k))
    scores = torch.full((b, k), -math.inf, device=device)
    scores[:, 0] = 0.0  # one live hypothesis per sentence at first, not K copies of it
    beams = _Beams(
        prepared=prepared,
        state=state,
        enc=enc,
        scores=scores,
        seqs=torch.zeros(b * k, 0, dtype=torch.long, device=device),
        prev=torch.full((b * k,), SOS_ID, dtype=torch.long, device=device),
        active=list(range(b)),
    )
    if any(cap == 0 for cap in limits):
        beams.keep(model, [j for j, cap in enumerate(limits) if cap > 0], k)
    for t in range(max(limits)):
        _step(model, beams, finished, k, t, alpha)
        alive = beams.scores.isfinite().any(dim=1).tolist()
        done = [
            j
            for j, i in enumerate(beams.active)
            if len(finished[i]) >= k or limits[i] <= t + 1 or not alive[j]
        ]
        if not done:
            continue
        _finish_live(beams, finished, done, k, alpha)
        keep_j = sorted(set(range(len(beams.active))) - set(done))
        if not keep_j:
            break
        beams.keep(model, keep_j, k)
    return [max(f, key=lambda h: h[0])[1] if f else [] for f in finished]


def _step(
    model: Seq2SeqModel, beams: _Beams, finished: Finished, k: int, t: int, alpha: float
) -> None:
    """Advance every live hypothesis by one token; finish those that chose ``<eos>``."""
    logits, state, _ = beams.prepared.step(beams.prev, beams.state, beams.enc)
    n, v = len(beams.active), logits.size(-1)
    logp = torch.log_softmax(_forbid_specials(logits.float()), dim=-1).view(n, k, v)
    cand = (beams.scores.unsqueeze(-1) + logp).view(n, k * v)
    top_scores, top_ix = cand.topk(min(2 * k, k * v), dim=-1)  # (n, 2K), best first
    beam, token = top_ix // v, top_ix % v
    is_eos = token == EOS_ID
    _collect(finished, beams, k, beam, is_eos, top_scores, t, alpha)
    # The K best extensions that do not end the hypothesis stay alive.
    alive_scores, pick = top_scores.masked_fill(is_eos, -math.inf).topk(k, dim=-1)  # (n, K)
    beam, token = beam.gather(1, pick), token.gather(1, pick)
    rows = (torch.arange(n, device=beam.device)[:, None] * k + beam).view(-1)
    beams.seqs = torch.cat([beams.seqs.index_select(0, rows), token.view(-1, 1)], dim=1)
    # A row moves only among its sentence's K rows, which share one encoder output: the
    # state follows, the encoder output stays.
    beams.state = model.reorder_state(state, rows)
    beams.scores, beams.prev = alive_scores, token.view(-1)


def _collect(
    finished: Finished,
    beams: _Beams,
    k: int,
    beam: Tensor,
    is_eos: Tensor,
    top_scores: Tensor,
    t: int,
    alpha: float,
) -> None:
    """Finish the ``<eos>`` extensions ranked among the first K of their sentence.

    beam, is_eos, top_scores: (n, 2K) for the candidates, best first.
    """
    pos = (is_eos[:, :k] & top_scores[:, :k].isfinite()).nonzero()  # (E, 2)
    if pos.numel() == 0:
        return
    js, cs = pos[:, 0], pos[:, 1]
    hyps = beams.seqs.index_select(0, js * k + beam[js, cs]).tolist()
    lp = length_penalty(t + 1, alpha)  # every hypothesis ending now has t + 1 tokens
    for j, score, hyp in zip(js.tolist(), top_scores[js, cs].tolist(), hyps, strict=True):
        i = beams.active[j]
        if len(finished[i]) < k:
            finished[i].append((score / lp, hyp))


def _finish_live(beams: _Beams, finished: Finished, done: list[int], k: int, alpha: float) -> None:
    """Sentences ``done`` with fewer than K finished (at their cap): finish the live ones."""
    short = [j for j in done if len(finished[beams.active[j]]) < k]
    if not short:
        return
    scores = beams.scores[short].tolist()
    seqs = beams.seqs.view(len(beams.active), k, -1)[short].tolist()
    for j, row_scores, row_seqs in zip(short, scores, seqs, strict=True):
        for score, hyp in zip(row_scores, row_seqs, strict=True):
            if math.isfinite(score):
                finished[beams.active[j]].append((score / length_penalty(len(hyp), alpha), hyp))


def search(
    model: Seq2SeqModel,
    src: Tensor,
    src_lengths: Tensor,
    settings: SearchSettings,
    prepared: Prepared | None = None,
) -> list[list[int]]:
    """Greedy (beam size 1) or beam search with ``settings``; src: (B, S), src_lengths: (B,).

    ``prepared``: ``prepare(model)``, to share between batches (made here when None)."""
    prepared = prepared or prepare(model)
    limits = max_output_lengths(
        src_lengths.cpu(), settings.max_length_ratio, settings.max_length_extra
    )
    if settings.beam_size == 1:
        return greedy_search(model, src, src_lengths, limits, prepared=prepared)  # type: ignore[return-value]
    return beam_search(
        model, src, src_lengths, limits, settings.beam_size, settings.length_penalty, prepared
    )
