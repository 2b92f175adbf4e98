"""Translate text with a trained model: normalise, tokenise, batch, search, detokenise.

The same steps as training: the checkpoint's :class:`~nmt.data.normalize.Normalizer`
settings and tokenizers, so a model sees at inference exactly what it saw in training.
Sentences are sorted by length before batching (little padding), and results come back
in input order.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from pydantic import ValidationError
from tqdm import tqdm

from nmt.checkpoint import CheckpointError, LoadedModel, load_model
from nmt.data.normalize import Normalizer
from nmt.decoding import (
    PAD_ID,
    Prepared,
    SearchSettings,
    greedy_search,
    max_output_lengths,
    prepare,
    search,
)
from nmt.models import Seq2Seq

log = logging.getLogger(__name__)

__all__ = ["AttentionMap", "Translator", "decode_ids", "length_batches", "pad_batch"]


def length_batches(
    lengths: Sequence[int], batch_size: int, max_tokens: int | None = None
) -> list[list[int]]:
    """Indices grouped into batches, longest sentences first: at most ``batch_size``
    sentences per batch and, with ``max_tokens``, at most that many tokens with padding
    (sentences x the batch's longest). A sentence longer than ``max_tokens`` is a batch of
    its own. The cap keeps the few long sentences of a test set from padding a full batch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    cap = math.inf if max_tokens is None else max_tokens
    batches: list[list[int]] = []
    for i in order:
        last = batches[-1] if batches else None
        # a batch's longest sentence is its first
        if last and len(last) < batch_size and (len(last) + 1) * lengths[last[0]] <= cap:
            last.append(i)
        else:
            batches.append([i])
    return batches


def pad_batch(
    seqs: Sequence[Sequence[int]], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id lists -> src (B, S) padded with ``<pad>``, lengths (B,)."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    width = max((len(s) for s in seqs), default=0)
    src = torch.full((len(seqs), max(1, width)), PAD_ID, dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            src[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return src.to(device), lengths.to(device)


def decode_ids(
    model: Seq2Seq,
    sources: Sequence[Sequence[int]],
    settings: SearchSettings,
    device: torch.device,
    batch_size: int = 192,
    progress: bool = False,
    prepared: Prepared | None = None,
    max_tokens: int | None = None,
) -> list[list[int]]:
    """Search every source (token ids, no specials) in length-sorted batches; input order.

    ``batch_size`` counts the hypotheses searched together: greedy search takes that many
    sentences per batch, beam search ``batch_size // beam_size`` (at least one), so both
    run matmuls of about the same height. ``max_tokens`` (None: no cap) caps the source
    tokens of a batch's hypotheses, padding included, the same way. ``prepared``:
    ``prepare(model, settings)``, made here when None.
    """
    out: list[list[int]] = [[] for _ in sources]
    prepared = prepared or prepare(model, settings)
    beam = settings.beam_size
    per_batch = max(1, batch_size // beam)
    tokens = None if max_tokens is None else max(1, max_tokens // beam)
    batches = length_batches([len(s) for s in sources], per_batch, tokens)
    with tqdm(total=len(sources), unit="sent", disable=not progress, leave=False) as bar:
        for idx in batches:
            src, lengths = pad_batch([sources[i] for i in idx], device)
            hyps = search(model, src, lengths, settings, prepared)
            for i, hyp in zip(idx, hyps, strict=True):
                out[i] = hyp
            bar.update(len(idx))
    return out


@dataclass(frozen=True)
class AttentionMap:
    """Attention of one translation: ``weights`` (target steps, source pieces)."""

    source: list[str]
    target: list[str]
    weights: torch.Tensor


class Translator:
    """A loaded model with its tokenizers and normaliser, ready to translate text."""

    def __init__(
        self,
        loaded: LoadedModel,
        device: torch.device,
        batch_size: int = 192,
        max_source_tokens: int | None = None,
        max_tokens: int | None = None,
    ) -> None:
        self.loaded = loaded
        self.model = loaded.model.to(device).eval()
        self.device = device
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.max_source_tokens = max_source_tokens
        self.normalizer = Normalizer(loaded.normalize)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str],
        device: torch.device,
        batch_size: int = 192,
        max_tokens: int | None = None,
    ) -> Translator:
        """Load a checkpoint file or model directory (raises ``CheckpointError``)."""
        try:
            loaded = load_model(path, device)
        except (ValidationError, ValueError, KeyError, TypeError) as err:
            if isinstance(err, CheckpointError):
                raise
            # e.g. model params or a tokenizer state this version does not understand
            raise CheckpointError(f"{path}: incompatible checkpoint ({err})") from None
        return cls(loaded, device, batch_size, max_tokens=max_tokens)

    @property
    def has_attention(self) -> bool:
        return self.model.params.attention != "none"

    def encode(self, texts: Sequence[str], normalized: bool = False) -> list[list[int]]:
        """Source ids; texts are normalised first unless ``normalized`` says they are."""
        if not normalized:
            texts = [self.normalizer(t) for t in texts]
        ids = self.loaded.src_tokenizer.encode_batch(list(texts))
        cap = self.max_source_tokens
        if cap is not None:
            long = sum(len(s) > cap for s in ids)
            if long:
                log.warning("%d source(s) longer than %d tokens were truncated", long, cap)
                ids = [s[:cap] for s in ids]
        return ids

    def detokenize(self, ids: Sequence[int]) -> str:
        """Target ids -> display text (tokenizer decode, then the normaliser's detokenize)."""
        return self.normalizer.detokenize(self.loaded.tgt_tokenizer.decode(ids))

    def translate(
        self,
        texts: Sequence[str],
        settings: SearchSettings,
        normalized: bool = False,
        progress: bool = False,
    ) -> list[str]:
        """Translate ``texts`` (one sentence each); empty input gives empty output."""
        sources = self.encode(texts, normalized)
        hyps = decode_ids(
            self.model,
            sources,
            settings,
            self.device,
            self.batch_size,
            progress,
            max_tokens=self.max_tokens,
        )
        return [self.detokenize(h) for h in hyps]

    def attention(
        self, texts: Sequence[str], settings: SearchSettings, normalized: bool = False
    ) -> list[AttentionMap] | None:
        """Greedy translations of ``texts`` with their attention, or None without attention."""
        if not self.has_attention:
            return None
        if not normalized:
            texts = [self.normalizer(t) for t in texts]
        sources = self.encode(texts, normalized=True)
        src, lengths = pad_batch(sources, self.device)
        limits = max_output_lengths(
            lengths.cpu(), settings.max_length_ratio, settings.max_length_extra
        )
        hyps, weights = greedy_search(self.model, src, lengths, limits, return_attention=True)
        src_tok, tgt_tok = self.loaded.src_tokenizer, self.loaded.tgt_tokenizer
        maps = []
        for text, ids, hyp, w in zip(texts, sources, hyps, weights, strict=True):
            source = src_tok.pieces(text)  # unknown words show as themselves
            if len(source) != len(ids):
                source = [src_tok.decode([s]) or "<unk>" for s in ids]
            target = [tgt_tok.decode([t]) or "<unk>" for t in hyp]
            target += ["<eos>"] * (w.shape[0] - len(hyp))
            maps.append(AttentionMap(source=source, target=target, weights=w))
        return maps
