"""Search: greedy and beam search as free functions of a model and a padded batch.

Both work on whole batches: greedy search advances every sentence one token per step;
beam search keeps ``beam_size`` hypotheses per sentence as ``B * K`` rows of one batch,
reordered after each step with :meth:`~nmt.models.Seq2Seq.reorder`. Sentences that are
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
from dataclasses import dataclass

import torch
from torch import Tensor

from nmt.models import Seq2Seq

# The special ids every vocabulary reserves (the same values as nmt.vocab).
PAD_ID, SOS_ID, EOS_ID = 0, 1, 2

__all__ = [
    "EOS_ID",
    "PAD_ID",
    "SOS_ID",
    "SearchSettings",
    "beam_search",
    "greedy_search",
    "length_penalty",
    "max_output_lengths",
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


def _encode(model: Seq2Seq, src: Tensor, src_lengths: Tensor):
    # Empty sources are encoded as one padding token (packing needs lengths >= 1); their
    # output cap is 0, so nothing is ever decoded from them.
    lengths = src_lengths.clamp(min=1)
    if src.size(1) == 0:
        src = src.new_zeros(src.size(0), 1)
    enc = model.encode(src, lengths)
    return enc, model.init_state(enc)


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


@torch.inference_mode()
def greedy_search(
    model: Seq2Seq,
    src: Tensor,
    src_lengths: Tensor,
    max_len: int | Tensor,
    return_attention: bool = False,
) -> list[list[int]] | tuple[list[list[int]], list[Tensor] | None]:
    """Pick the most probable token at each step, for a whole batch at once.

    src: (B, S) padded source ids; src_lengths: (B,) real lengths (0 gives an empty
    output); max_len: an int, or (B,) per-row caps on the output length (without
    ``<eos>``). Stops when every row has produced ``<eos>`` or reached its cap.

    Returns the token ids of each row. With ``return_attention``, also the attention
    weights of each row, a float CPU tensor (steps, src_length) with one row per output
    token plus one for ``<eos>`` when it was produced -- or None for a model without
    attention.
    """
    b = src.size(0)
    limits = _limits(max_len, src_lengths)
    if b == 0 or int(limits.max()) == 0:
        hyps: list[list[int]] = [[] for _ in range(b)]
        if not return_attention:
            return hyps
        empty = [torch.zeros(0, int(n)) for n in src_lengths.cpu()]
        return hyps, (empty if _has_attention(model) else None)
    enc, state = _encode(model, src, src_lengths)
    device = src.device
    limits_d = limits.to(device)
    prev = torch.full((b,), SOS_ID, dtype=torch.long, device=device)
    finished = limits_d <= 0
    tokens: list[Tensor] = []
    attns: list[Tensor] = []
    for t in range(int(limits.max())):
        logits, state, attn = model.decode_step(prev, state, enc)
        nxt = _forbid_specials(logits).argmax(dim=-1).masked_fill(finished, PAD_ID)
        tokens.append(nxt)
        if return_attention and attn is not None:
            attns.append(attn.masked_fill(finished[:, None], 0.0))
        finished = finished | (nxt == EOS_ID) | (limits_d <= t + 1)
        if bool(finished.all()):
            break
        prev = nxt
    out = torch.stack(tokens, dim=1).tolist()  # (B, T)
    hyps = [_cut(row) for row in out]
    if not return_attention:
        return hyps
    if not attns:
        return hyps, None
    weights = torch.stack(attns, dim=1).float().cpu()  # (B, T, S)
    lengths = src_lengths.cpu().tolist()
    per_row = []
    for i, hyp in enumerate(hyps):
        steps = len(hyp) + (1 if len(hyp) < len(out[i]) and out[i][len(hyp)] == EOS_ID else 0)
        per_row.append(weights[i, :steps, : lengths[i]].clone())
    return hyps, per_row


def _has_attention(model: Seq2Seq) -> bool:
    return model.params.attention != "none"


@torch.inference_mode()
def beam_search(
    model: Seq2Seq,
    src: Tensor,
    src_lengths: Tensor,
    max_len: int | Tensor,
    beam_size: int,
    alpha: float = 1.0,
) -> list[list[int]]:
    """Beam search over ``B * K`` rows; return the best finished hypothesis per sentence.

    src: (B, S) padded source ids; src_lengths: (B,); max_len: an int or (B,) caps on
    the output length (without ``<eos>``); alpha: the GNMT length-penalty exponent.

    Each step extends every live hypothesis by every token and keeps the 2K best
    extensions per sentence: those ending in ``<eos>`` among the first K are finished
    (scored ``log P / lp``); the K best others stay alive. A sentence is done once it
    holds K finished hypotheses, or when it reaches its cap (its live hypotheses are
    then finished as they are). With K = 1 this is exactly greedy search.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be at least 1, got {beam_size}")
    b, k = src.size(0), beam_size
    limits = _limits(max_len, src_lengths)
    if b == 0 or int(limits.max()) == 0:
        return [[] for _ in range(b)]
    device = src.device
    enc, state = _encode(model, src, src_lengths)
    state, enc = model.reorder(state, enc, torch.arange(b, device=device).repeat_interleave(k))
    # scores: (n, K) cumulative log-probabilities of the live hypotheses of the n sentences
    # still searching; only the first beam starts alive, so step 0 does not pick K copies.
    scores = torch.full((b, k), -math.inf, device=device)
    scores[:, 0] = 0.0
    seqs = torch.zeros(b * k, 0, dtype=torch.long, device=device)  # (n*K, t)
    prev = torch.full((b * k,), SOS_ID, dtype=torch.long, device=device)
    active = list(range(b))  # original index of each sentence still searching
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(b)]
    for i in range(b):
        if limits[i] == 0:
            finished[i].append((0.0, []))
    active = [i for i in active if limits[i] > 0]
    if len(active) < b:
        keep = torch.tensor(active, device=device)
        state, enc, scores, seqs, prev = _select(model, state, enc, scores, seqs, prev, keep, k)
    for t in range(int(limits.max())):
        logits, state, _ = model.decode_step(prev, state, enc)
        n, v = len(active), logits.size(-1)
        logp = torch.log_softmax(_forbid_specials(logits.float()), dim=-1).view(n, k, v)
        cand = (scores.unsqueeze(-1) + logp).view(n, k * v)
        top_scores, top_ix = cand.topk(min(2 * k, k * v), dim=-1)  # (n, 2K), best first
        beam, token = top_ix // v, top_ix % v
        is_eos = token == EOS_ID
        _collect(finished, active, seqs, k, beam, is_eos, top_scores, t, alpha)
        # The K best extensions that do not end the hypothesis stay alive.
        alive_scores = top_scores.masked_fill(is_eos, -math.inf)
        alive_scores, pick = alive_scores.topk(k, dim=-1)  # (n, K)
        beam, token = beam.gather(1, pick), token.gather(1, pick)
        rows = (torch.arange(n, device=device)[:, None] * k + beam).view(-1)
        seqs = torch.cat([seqs.index_select(0, rows), token.view(-1, 1)], dim=1)
        state, enc = model.reorder(state, enc, rows)
        scores, prev = alive_scores, token.view(-1)
        done = [
            j
            for j, i in enumerate(active)
            if len(finished[i]) >= k or limits[i] <= t + 1 or not bool(scores[j].isfinite().any())
        ]
        if not done:
            continue
        for j in done:
            i = active[j]
            if len(finished[i]) < k:  # at its cap: finish the live hypotheses as they are
                for beam_j in range(k):
                    s = float(scores[j, beam_j])
                    if math.isfinite(s):
                        hyp = seqs[j * k + beam_j].tolist()
                        finished[i].append((s / length_penalty(len(hyp), alpha), hyp))
        done_set = set(done)
        keep_j = [j for j in range(n) if j not in done_set]
        if not keep_j:
            break
        active = [active[j] for j in keep_j]
        keep = torch.tensor(keep_j, device=device)
        state, enc, scores, seqs, prev = _select(model, state, enc, scores, seqs, prev, keep, k)
    return [max(f, key=lambda h: h[0])[1] if f else [] for f in finished]


def _collect(
    finished: list[list[tuple[float, list[int]]]],
    active: list[int],
    seqs: Tensor,
    k: int,
    beam: Tensor,
    is_eos: Tensor,
    top_scores: Tensor,
    t: int,
    alpha: float,
) -> None:
    """Finish the ``<eos>`` extensions ranked among the first K of their sentence."""
    ranked = is_eos[:, :k] & top_scores[:, :k].isfinite()
    if not bool(ranked.any()):
        return
    lp = length_penalty(t + 1, alpha)  # every hypothesis ending now has t + 1 tokens
    for j, c in ranked.nonzero().tolist():
        i = active[j]
        if len(finished[i]) >= k:
            continue
        hyp = seqs[j * k + int(beam[j, c])].tolist()
        finished[i].append((float(top_scores[j, c]) / lp, hyp))


def _select(model, state, enc, scores, seqs, prev, keep: Tensor, k: int):
    """Keep only the sentences ``keep`` (n',) of the search (all K rows of each)."""
    rows = (keep[:, None] * k + torch.arange(k, device=keep.device)).view(-1)
    state, enc = model.reorder(state, enc, rows)
    return state, enc, scores.index_select(0, keep), seqs.index_select(0, rows), prev[rows]


def search(
    model: Seq2Seq, src: Tensor, src_lengths: Tensor, settings: SearchSettings
) -> list[list[int]]:
    """Greedy (beam size 1) or beam search with ``settings``; src: (B, S), src_lengths: (B,)."""
    limits = max_output_lengths(
        src_lengths.cpu(), settings.max_length_ratio, settings.max_length_extra
    )
    if settings.beam_size == 1:
        return greedy_search(model, src, src_lengths, limits)  # type: ignore[return-value]
    return beam_search(model, src, src_lengths, limits, settings.beam_size, settings.length_penalty)
