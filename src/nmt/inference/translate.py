"""Translate text with a trained model: normalise, tokenise, batch, search, detokenise.

The same steps as training: the checkpoint's :class:`~nmt.data.normalize.Normalizer`
settings and tokenizers, so a model sees at inference exactly what it saw in training.
Sentences are sorted by length before batching (little padding), and results come back
in input order.

Input can be hostile (``nmt translate`` reads whatever it is given), so each line is
isolated from the others:

* Text that is not valid Unicode (lone surrogates, e.g. the escapes of bytes that were not
  UTF-8: :func:`read_lines`, or ``sys.argv``) has those characters replaced with U+FFFD,
  with a warning naming the line; a line that still cannot be tokenised is translated as
  an empty line, with a warning. Neither stops the other lines.
* ``max_source_tokens`` caps a source in pieces; a longer one is *truncated* to its first
  pieces, with a warning naming the line. Truncation rather than splitting at sentence
  punctuation: it bounds the time and memory of every line whatever the input (a split
  line still costs time in proportion to its length, and a line with no punctuation needs
  a hard cut anyway); a model trained on single sentences is no good past the longest it
  has seen; and splitting well (abbreviations, numbers, quotes, each language's marks) is
  a sentence splitter's job, upstream, before ``nmt translate``, whose contract is one
  sentence per line. :meth:`Translator.from_checkpoint` takes ``"train"`` for the
  training data's longest source (:func:`train_source_cap`).
* :meth:`Translator.translate_stream` reads its input lazily, a chunk of several batches
  at a time, and yields each chunk's translations, in input order, before it reads the
  next chunk.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, BinaryIO, Literal

import torch
from pydantic import ValidationError

from nmt.data.normalize import Normalizer
from nmt.inference.search import (
    PAD_ID,
    Prepared,
    SearchSettings,
    greedy_search,
    max_output_lengths,
    prepare,
    search,
)
from nmt.models import Seq2SeqModel
from nmt.progress import Progress, ProgressMode
from nmt.training.checkpoint import CheckpointError, LoadedModel, load_model

log = logging.getLogger(__name__)

__all__ = [
    "CHUNK_BATCHES",
    "DEFAULT_MAX_SOURCE_TOKENS",
    "AttentionMap",
    "Translator",
    "decode_ids",
    "length_batches",
    "pad_batch",
    "read_lines",
    "scrub",
    "train_source_cap",
]

# The source cap of a checkpoint that does not record its training data's longest source:
# well past a long sentence, and short enough that one line takes seconds, not minutes,
# with beam search on a CPU.
DEFAULT_MAX_SOURCE_TOKENS = 256
# translate_stream reads this many batches of sentences at a time: enough to sort by
# length with little padding, few enough that output comes soon after input.
CHUNK_BATCHES = 8

# Lone surrogates that are not surrogate escapes of bytes (U+DC80-U+DCFF are).
_OTHER_SURROGATES = re.compile("[\ud800-\udc7f\udd00-\udfff]")


def scrub(text: str) -> tuple[str, bool]:
    """``text`` as valid Unicode, and whether anything was replaced.

    Surrogate escapes (what Python makes of bytes that are not UTF-8, in ``sys.argv`` or
    ``errors="surrogateescape"``) are decoded back to bytes and replaced as
    ``bytes.decode(errors="replace")`` does; other lone surrogates become U+FFFD too.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _OTHER_SURROGATES.sub("\ufffd", text)
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), True
    return text, False


def read_lines(stream: BinaryIO) -> Iterator[str]:
    """The lines of a byte stream, read lazily, without their line end (LF or CR LF).

    Only LF ends a line (not a lone CR, as in text mode, nor U+2028 and the like, as in
    ``str.splitlines``), so that output lines match input lines one to one, as ``wc -l``
    counts them. Bytes that are not UTF-8 come through as surrogate escapes, which
    :meth:`Translator.encode` replaces with a warning naming the line; a UTF-8 byte order
    mark is dropped.
    """
    for number, raw in enumerate(stream, 1):
        line = raw.removesuffix(b"\n").removesuffix(b"\r")
        if number == 1:
            line = line.removeprefix(b"\xef\xbb\xbf")
        yield line.decode("utf-8", "surrogateescape")


def train_source_cap(meta: Mapping[str, Any]) -> int:
    """The longest training source in pieces, as the checkpoint records it
    (``train_max_src_tokens``), or ``DEFAULT_MAX_SOURCE_TOKENS`` where it does not."""
    value = meta.get("train_max_src_tokens")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return DEFAULT_MAX_SOURCE_TOKENS


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
    model: Seq2SeqModel,
    sources: Sequence[Sequence[int]],
    settings: SearchSettings,
    device: torch.device,
    batch_size: int = 192,
    progress: ProgressMode = "off",
    prepared: Prepared | None = None,
    max_tokens: int | None = None,
    desc: str = "decode",
) -> list[list[int]]:
    """Search every source (token ids, no specials) in length-sorted batches; input order.

    ``batch_size`` counts the hypotheses searched together: greedy search takes that many
    sentences per batch, beam search ``batch_size // beam_size`` (at least one), so both
    run matmuls of about the same height. ``max_tokens`` (None: no cap) caps the source
    tokens of a batch's hypotheses, padding included, the same way. ``prepared``:
    ``prepare(model)``, made here when None. ``progress`` counts the sentences done, under
    ``desc`` (see :class:`~nmt.progress.Progress`).
    """
    out: list[list[int]] = [[] for _ in sources]
    prepared = prepared or prepare(model)
    beam = settings.beam_size
    per_batch = max(1, batch_size // beam)
    tokens = None if max_tokens is None else max(1, max_tokens // beam)
    batches = length_batches([len(s) for s in sources], per_batch, tokens)
    with Progress(len(sources), desc, "sentences", progress) as shown:
        for idx in batches:
            src, lengths = pad_batch([sources[i] for i in idx], device)
            hyps = search(model, src, lengths, settings, prepared)
            for i, hyp in zip(idx, hyps, strict=True):
                out[i] = hyp
            shown.update(len(idx))
    return out


@dataclass(frozen=True)
class AttentionMap:
    """Attention of one translation: ``weights`` (target steps, source pieces)."""

    source: list[str]
    target: list[str]
    weights: torch.Tensor


class Translator:
    """A loaded model with its tokenizers and normaliser, ready to translate text.

    ``max_source_tokens``: sources longer than this many pieces are truncated, with a
    warning naming the line; None (the default): no cap, as the evaluate stage scores
    whole test sentences; ``"train"``: :func:`train_source_cap` of the checkpoint.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        device: torch.device,
        batch_size: int = 192,
        max_source_tokens: int | Literal["train"] | None = None,
        max_tokens: int | None = None,
    ) -> None:
        if isinstance(max_source_tokens, str):
            if max_source_tokens != "train":
                raise ValueError(
                    f"max_source_tokens: an int, None or 'train', not {max_source_tokens!r}"
                )
            max_source_tokens = train_source_cap(loaded.meta)
        if max_source_tokens is not None and max_source_tokens < 1:
            raise ValueError(f"max_source_tokens must be at least 1, got {max_source_tokens}")
        self.loaded = loaded
        self.model = loaded.model.to(device).eval()
        self.device = device
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.max_source_tokens: int | None = max_source_tokens
        self.normalizer = Normalizer(loaded.normalize)
        self._prepared: dict[tuple[bool, torch.dtype | None], Prepared] = {}

    def prepared(self) -> Prepared:
        """``prepare(model)`` for the autocast state now in force, made once per state:
        the model's weights never change here, and making it costs about as much as
        searching a short sentence."""
        kind = self.device.type
        enabled = torch.is_autocast_enabled(kind)
        key = (enabled, torch.get_autocast_dtype(kind) if enabled else None)
        if key not in self._prepared:
            self._prepared[key] = prepare(self.model)
        return self._prepared[key]

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str],
        device: torch.device,
        batch_size: int = 192,
        max_tokens: int | None = None,
        max_source_tokens: int | Literal["train"] | None = None,
    ) -> Translator:
        """Load a checkpoint file or model directory (raises ``CheckpointError``)."""
        try:
            loaded = load_model(path, device)
        except (ValidationError, ValueError, KeyError, TypeError) as err:
            if isinstance(err, CheckpointError):
                raise
            # e.g. model params or a tokenizer state this version does not understand
            raise CheckpointError(f"{path}: incompatible checkpoint ({err})") from None
        return cls(loaded, device, batch_size, max_source_tokens, max_tokens)

    @property
    def has_attention(self) -> bool:
        return self.model.has_attention

    def clean(
        self, texts: Sequence[str], normalized: bool = False, first_line: int = 1
    ) -> list[str]:
        """``texts`` as valid Unicode (:func:`scrub`, a warning per line that needed it),
        normalised unless ``normalized`` says they are; line ``first_line`` is ``texts[0]``.
        """
        out = []
        for number, text in enumerate(texts, first_line):
            text, replaced = scrub(text)
            if replaced:
                log.warning("line %d: bytes that are not UTF-8 replaced with U+FFFD", number)
            out.append(text if normalized else self.normalizer(text))
        return out

    def encode(
        self, texts: Sequence[str], normalized: bool = False, first_line: int = 1
    ) -> list[list[int]]:
        """Source ids of ``texts`` (:meth:`clean` first), at most ``max_source_tokens``
        each; line ``first_line`` is ``texts[0]`` in the warnings."""
        texts = self.clean(texts, normalized, first_line)
        tokenizer = self.loaded.src_tokenizer
        try:
            ids = tokenizer.encode_batch(texts)
        except Exception:  # hostile input: find the line(s) at fault, keep the others
            ids = [self._encode_one(t, n) for n, t in enumerate(texts, first_line)]
        cap = self.max_source_tokens
        if cap is None:
            return ids
        for number, source in enumerate(ids, first_line):
            if len(source) > cap:
                log.warning(
                    "line %d: %d source pieces, truncated to the first %d", number, len(source), cap
                )
        return [s[:cap] for s in ids]

    def _encode_one(self, text: str, number: int) -> list[int]:
        try:
            return self.loaded.src_tokenizer.encode_batch([text])[0]
        except Exception as err:
            log.warning("line %d: not translated, tokenising failed (%s)", number, err)
            return []

    def detokenize(self, ids: Sequence[int]) -> str:
        """Target ids -> display text (tokenizer decode, then the normaliser's detokenize)."""
        return self.normalizer.detokenize(self.loaded.tgt_tokenizer.decode(ids))

    def translate(
        self,
        texts: Sequence[str],
        settings: SearchSettings,
        normalized: bool = False,
        progress: ProgressMode = "off",
        first_line: int = 1,
        desc: str = "translate",
    ) -> list[str]:
        """Translate ``texts`` (one sentence each); empty input gives empty output.

        ``first_line``: the line number of ``texts[0]`` in warnings. ``progress``: see
        :func:`decode_ids`, which shows it under ``desc``.
        """
        sources = self.encode(texts, normalized, first_line)
        hyps = decode_ids(
            self.model,
            sources,
            settings,
            self.device,
            self.batch_size,
            progress,
            prepared=self.prepared(),
            max_tokens=self.max_tokens,
            desc=desc,
        )
        return [self.detokenize(h) for h in hyps]

    def chunk_size(self, settings: SearchSettings) -> int:
        """Sentences per chunk of :meth:`translate_stream`: ``CHUNK_BATCHES`` batches."""
        return CHUNK_BATCHES * max(1, self.batch_size // settings.beam_size)

    def translate_stream(
        self,
        texts: Iterable[str],
        settings: SearchSettings,
        normalized: bool = False,
        chunk_size: int | None = None,
    ) -> Iterator[str]:
        """Translations of ``texts``, one per text, in order, read and yielded a chunk at a
        time: ``chunk_size`` texts (default :meth:`chunk_size`) are sorted by length into
        batches, and their translations come out before the next chunk is read. Lines are
        numbered from 1 in warnings.
        """
        size = self.chunk_size(settings) if chunk_size is None else chunk_size
        if size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {size}")
        it = iter(texts)
        first_line = 1
        while chunk := list(islice(it, size)):
            yield from self.translate(chunk, settings, normalized, first_line=first_line)
            first_line += len(chunk)

    def attention(
        self, texts: Sequence[str], settings: SearchSettings, normalized: bool = False
    ) -> list[AttentionMap] | None:
        """Greedy translations of ``texts`` with their attention, or None without attention."""
        if not self.has_attention:
            return None
        texts = self.clean(texts, normalized)
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
