"""Token vocabularies: word-level, character-level and subword (sentencepiece).

Every kind reserves the same four special ids, so models, batching and search never
need to know which kind they were given::

    PAD_ID, SOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3      # <pad> <sos> <eos> <unk>

A :class:`Tokenizer` turns normalised text into ids (``encode``, without ``<sos>`` /
``<eos>``; anything unseen becomes ``UNK_ID``) and back (``decode``, which skips every
special id). ``to_state()`` is plain JSON-safe data -- the sentencepiece model travels
as base64 text -- so a tokenizer can be written to ``data/vocab/{src,tgt}.json`` and
stored inside a checkpoint that ``torch.load(weights_only=True)`` can read.

Vocabularies are built from the ``src`` / ``tgt`` columns of the prepared parquet
files, read in record batches so that a large corpus is never held as one Python list.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pyarrow.parquet as pq
import sentencepiece as spm

from nmt.config.vocab import VocabParams
from nmt.specials import EOS, EOS_ID, N_SPECIALS, PAD, PAD_ID, SOS, SOS_ID, SPECIALS, UNK, UNK_ID
from nmt.utils import write_json

__all__ = [
    "EOS",
    "EOS_ID",
    "PAD",
    "PAD_ID",
    "SOS",
    "SOS_ID",
    "SPECIALS",
    "UNK",
    "UNK_ID",
    "CharTokenizer",
    "SubwordTokenizer",
    "Tokenizer",
    "VocabError",
    "WordTokenizer",
    "build_table_tokens",
    "build_tokenizers",
    "iter_texts",
    "load_tokenizers",
    "save_tokenizers",
    "tokenizer_from_state",
    "train_sentencepiece",
    "vocab_metrics",
]


STATE_VERSION = 1
BATCH_ROWS = 8192  # parquet rows read at a time while counting, training and measuring
SIDES = ("src", "tgt")


class VocabError(ValueError):
    """A vocabulary cannot be built, read or used; the message names the file or key."""


# --------------------------------------------------------------------------- tokenizers


class Tokenizer(ABC):
    """Text <-> ids. Subclasses: :class:`WordTokenizer`, :class:`CharTokenizer`,
    :class:`SubwordTokenizer`."""

    kind: ClassVar[str]

    @abstractmethod
    def __len__(self) -> int:
        """Number of ids, specials included (the model's embedding size)."""

    @abstractmethod
    def pieces(self, text: str) -> list[str]:
        """The tokens ``text`` is cut into, before lookup (unknown ones appear as themselves)."""

    @abstractmethod
    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """``encode`` of every text, in order; the fast path for many sentences."""

    @abstractmethod
    def _decode_known(self, ids: list[int]) -> str:
        """Detokenise ids that are all in range and not special."""

    @abstractmethod
    def to_state(self) -> dict[str, Any]:
        """JSON-safe description from which :func:`tokenizer_from_state` rebuilds ``self``."""

    def encode(self, text: str) -> list[int]:
        """Ids of ``text``, without ``<sos>`` / ``<eos>``; unseen tokens become ``UNK_ID``."""
        return self.encode_batch([text])[0]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; every special id (pad, sos, eos, unk) is skipped, none stops it."""
        size = len(self)
        kept: list[int] = []
        for i in ids:
            i = int(i)
            if not 0 <= i < size:
                raise VocabError(f"id {i} is out of range for a {self.kind} vocabulary of {size}")
            if i >= N_SPECIALS:
                kept.append(i)
        return self._decode_known(kept)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``to_state()`` as JSON to ``path`` (atomically)."""
        write_json(path, self.to_state())

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_state() == self.to_state()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_state(), sort_keys=True))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={len(self)})"


class TableTokenizer(Tokenizer):
    """A tokenizer that is a list of tokens: ``tokens[i]`` is the token of id ``i``."""

    def __init__(self, tokens: Sequence[str]) -> None:
        tokens = list(tokens)
        if tuple(tokens[:N_SPECIALS]) != SPECIALS:
            raise VocabError(
                f"a {self.kind} vocabulary must start with {list(SPECIALS)}, "
                f"got {tokens[:N_SPECIALS]}"
            )
        self.itos: list[str] = tokens
        self.stoi: dict[str, int] = {}
        for i, tok in enumerate(tokens):
            if not isinstance(tok, str) or not tok:
                raise VocabError(f"token {i} of a {self.kind} vocabulary is {tok!r}")
            if self.stoi.setdefault(tok, i) != i:
                raise VocabError(f"token {tok!r} appears twice in a {self.kind} vocabulary")

    @staticmethod
    @abstractmethod
    def split(text: str) -> list[str]:
        """Cut text into tokens."""

    @staticmethod
    @abstractmethod
    def join(tokens: list[str]) -> str:
        """Undo :meth:`split`."""

    @classmethod
    def count_tokens(cls, batches: Iterable[list[str]]) -> Counter[str]:
        """Token frequencies over batches of texts."""
        counts: Counter[str] = Counter()
        for texts in batches:
            for text in texts:
                counts.update(cls.split(text))
        return counts

    def __len__(self) -> int:
        return len(self.itos)

    def pieces(self, text: str) -> list[str]:
        return self.split(text)

    def encode(self, text: str) -> list[int]:
        get = self.stoi.get
        return [get(tok, UNK_ID) for tok in self.split(text)]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        get, split = self.stoi.get, self.split
        return [[get(tok, UNK_ID) for tok in split(text)] for text in texts]

    def _decode_known(self, ids: list[int]) -> str:
        itos = self.itos
        return self.join([itos[i] for i in ids])

    def to_state(self) -> dict[str, Any]:
        return {"kind": self.kind, "version": STATE_VERSION, "tokens": list(self.itos)}


class WordTokenizer(TableTokenizer):
    """Whitespace-separated tokens; decoding joins them with single spaces."""

    kind = "word"

    @staticmethod
    def split(text: str) -> list[str]:
        return text.split()

    @staticmethod
    def join(tokens: list[str]) -> str:
        return " ".join(tokens)


class CharTokenizer(TableTokenizer):
    """One token per character, spaces included; decoding concatenates."""

    kind = "char"

    @staticmethod
    def split(text: str) -> list[str]:
        return list(text)

    @staticmethod
    def join(tokens: list[str]) -> str:
        return "".join(tokens)

    @classmethod
    def count_tokens(cls, batches: Iterable[list[str]]) -> Counter[str]:
        counts: Counter[str] = Counter()
        for texts in batches:  # counting one long string runs in C
            counts.update("".join(texts))
        return counts


class SubwordTokenizer(Tokenizer):
    """A sentencepiece model (BPE or unigram), held as its serialized proto."""

    kind = "subword"

    def __init__(self, model: bytes) -> None:
        self.model = bytes(model)
        try:
            self._sp = spm.SentencePieceProcessor(model_proto=self.model)
        except (RuntimeError, TypeError) as err:
            raise VocabError(f"not a sentencepiece model: {err}") from None
        got = {
            PAD: (self._sp.pad_id(), PAD_ID),
            SOS: (self._sp.bos_id(), SOS_ID),
            EOS: (self._sp.eos_id(), EOS_ID),
            UNK: (self._sp.unk_id(), UNK_ID),
        }
        bad = {tok: ids[0] for tok, ids in got.items() if ids[0] != ids[1]}
        if bad:
            raise VocabError(f"sentencepiece model has special ids {bad}, expected 0..3")

    def __len__(self) -> int:
        return self._sp.get_piece_size()

    def pieces(self, text: str) -> list[str]:
        return self._sp.encode(text, out_type=str)

    def encode(self, text: str) -> list[int]:
        return self._sp.encode(text, out_type=int)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        # sentencepiece encodes a list natively, in C++, on its own thread pool.
        return self._sp.encode(list(texts), out_type=int)

    def _decode_known(self, ids: list[int]) -> str:
        return self._sp.decode(ids)

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "version": STATE_VERSION,
            "model": base64.b64encode(self.model).decode("ascii"),
        }

    def __getstate__(self) -> dict[str, Any]:  # picklable, e.g. for DataLoader workers
        return {"model": self.model}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["model"])  # type: ignore[misc]


_TABLE_KINDS: dict[str, type[TableTokenizer]] = {"word": WordTokenizer, "char": CharTokenizer}


def tokenizer_from_state(state: Mapping[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer from :meth:`Tokenizer.to_state` output."""
    if not isinstance(state, Mapping):
        raise VocabError(f"a tokenizer state is a mapping, got {type(state).__name__}")
    kind, version = state.get("kind"), state.get("version")
    if version != STATE_VERSION:
        raise VocabError(f"tokenizer state version {version!r} is not {STATE_VERSION}")
    if kind in _TABLE_KINDS:
        tokens = state.get("tokens")
        if not isinstance(tokens, list):
            raise VocabError(f"a {kind} tokenizer state needs a 'tokens' list")
        return _TABLE_KINDS[kind](tokens)
    if kind == SubwordTokenizer.kind:
        model = state.get("model")
        if not isinstance(model, str):
            raise VocabError("a subword tokenizer state needs a base64 'model' string")
        return SubwordTokenizer(base64.b64decode(model, validate=True))
    raise VocabError(f"unknown tokenizer kind {kind!r} (expected word, char or subword)")


def save_tokenizers(directory: str | os.PathLike[str], src: Tokenizer, tgt: Tokenizer) -> None:
    """Write ``src.json`` and ``tgt.json`` into ``directory`` (created if missing)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    src.save(d / "src.json")
    tgt.save(d / "tgt.json")


def load_tokenizers(directory: str | os.PathLike[str]) -> tuple[Tokenizer, Tokenizer]:
    """Read ``src.json`` and ``tgt.json`` from ``directory``: ``(src_tok, tgt_tok)``."""
    toks = []
    for side in SIDES:
        path = Path(directory) / f"{side}.json"
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise VocabError(f"{path}: file not found (run the vocab stage)") from None
        except json.JSONDecodeError as err:
            raise VocabError(f"{path}: not valid JSON: {err}") from None
        try:
            toks.append(tokenizer_from_state(state))
        except VocabError as err:
            raise VocabError(f"{path}: {err}") from None
    return toks[0], toks[1]


# ----------------------------------------------------------------------------- reading


def iter_texts(
    path: str | os.PathLike[str], column: str, batch_rows: int = BATCH_ROWS
) -> Iterator[list[str]]:
    """Yield ``column`` of the parquet file ``path`` as lists of at most ``batch_rows`` texts."""
    try:
        pf = pq.ParquetFile(path)
    except FileNotFoundError:
        raise VocabError(f"{path}: file not found") from None
    except OSError as err:
        raise VocabError(f"{path}: not a readable parquet file: {err}") from None
    if column not in pf.schema_arrow.names:
        raise VocabError(f"{path}: no column {column!r} (columns: {pf.schema_arrow.names})")
    row = 0
    for batch in pf.iter_batches(batch_size=batch_rows, columns=[column]):
        texts = batch.column(0).to_pylist()
        if batch.column(0).null_count:
            bad = row + next(i for i, t in enumerate(texts) if t is None)
            raise VocabError(f"{path}: column {column!r} is null at row {bad}")
        row += len(texts)
        yield texts


def _iter_sides(path: str | os.PathLike[str], sides: Sequence[str]) -> Iterator[list[str]]:
    for side in sides:
        yield from iter_texts(path, side)


# ------------------------------------------------------------------- word / char tables


def build_table_tokens(counts: Mapping[str, int], min_freq: int, max_size: int | None) -> list[str]:
    """Specials, then tokens seen at least ``min_freq`` times, most frequent first.

    Ties are broken by the token itself (code-point order), so the same counts always
    give the same ids. ``max_size`` caps the whole vocabulary, specials included.
    """
    if max_size is not None and max_size <= N_SPECIALS:
        raise VocabError(f"vocab.max_size={max_size} leaves no room beside the 4 specials")
    kept = sorted(
        (tok for tok, n in counts.items() if n >= min_freq and tok not in SPECIALS),
        key=lambda tok: (-counts[tok], tok),
    )
    if max_size is not None:
        kept = kept[: max_size - N_SPECIALS]
    return [*SPECIALS, *kept]


# ------------------------------------------------------------------------- sentencepiece

_TOO_HIGH = re.compile(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)")
_TOO_LOW = re.compile(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)")


def train_sentencepiece(
    batches: Iterable[list[str]],
    params: VocabParams,
    seed: int,
    what: str = "the training text",
    num_threads: int = 2,
) -> bytes:
    """Train a sentencepiece model in memory on the texts of ``batches``; return its proto.

    Ids agree with every other kind (pad 0, sos 1, eos 2, unk 3). The text is taken as
    the prepare stage normalised it (identity normalisation rule), so decoding gives it
    back unchanged. The same texts, params, seed and ``num_threads`` give the same bytes.
    """
    sentences = (text for texts in batches for text in texts if text)
    buf = io.BytesIO()
    options: dict[str, Any] = {
        "model_type": params.model_type,
        "vocab_size": params.vocab_size,
        "character_coverage": params.character_coverage,
        "pad_id": PAD_ID,
        "bos_id": SOS_ID,
        "eos_id": EOS_ID,
        "unk_id": UNK_ID,
        "pad_piece": PAD,
        "bos_piece": SOS,
        "eos_piece": EOS,
        "unk_piece": UNK,
        "normalization_rule_name": "identity",
        "num_threads": num_threads,
        "minloglevel": 2,
    }
    if params.max_sentences is not None:  # a seeded reservoir sample of the sentences
        options["input_sentence_size"] = params.max_sentences
        options["shuffle_input_sentence"] = True
    spm.set_random_generator_seed(seed)
    try:
        spm.SentencePieceTrainer.train(sentence_iterator=sentences, model_writer=buf, **options)
    except RuntimeError as err:
        raise _explain(err, params, what) from None
    return buf.getvalue()


def _explain(err: RuntimeError, params: VocabParams, what: str) -> VocabError:
    msg = str(err)
    if m := _TOO_HIGH.search(msg):
        return VocabError(
            f"vocab.vocab_size={params.vocab_size} is too large for {what}: sentencepiece "
            f"({params.model_type}) can make at most {m.group(2)} pieces from it; "
            "lower vocab.vocab_size or use more data"
        )
    if m := _TOO_LOW.search(msg):
        return VocabError(
            f"vocab.vocab_size={params.vocab_size} is too small for {what}: its characters "
            f"and the specials alone need {m.group(2)} ids; raise vocab.vocab_size or lower "
            "vocab.character_coverage"
        )
    return VocabError(f"sentencepiece training on {what} failed: {msg}")


# ------------------------------------------------------------------------------ building


def build_tokenizers(
    train: str | os.PathLike[str], params: VocabParams, seed: int
) -> tuple[Tokenizer, Tokenizer]:
    """Build ``(src_tok, tgt_tok)`` from the ``src`` / ``tgt`` columns of ``train``.

    ``params.joint``: one vocabulary from both columns, used for both sides.
    """
    groups = [SIDES] if params.joint else [(side,) for side in SIDES]
    built = [_build_one(train, sides, params, seed) for sides in groups]
    return (built[0], built[0]) if params.joint else (built[0], built[1])


def _build_one(
    train: str | os.PathLike[str], sides: Sequence[str], params: VocabParams, seed: int
) -> Tokenizer:
    what = f"{train} (column{'s' if len(sides) > 1 else ''} {', '.join(sides)})"
    if params.kind == SubwordTokenizer.kind:
        return SubwordTokenizer(train_sentencepiece(_iter_sides(train, sides), params, seed, what))
    cls = _TABLE_KINDS[params.kind]
    counts = cls.count_tokens(_iter_sides(train, sides))
    if not counts:
        raise VocabError(f"{what}: no tokens to build a {params.kind} vocabulary from")
    return cls(build_table_tokens(counts, params.min_freq, params.max_size))


def vocab_metrics(
    src_tok: Tokenizer, tgt_tok: Tokenizer, splits: Mapping[str, str | os.PathLike[str]]
) -> dict[str, float | int | str | bool]:
    """Sizes, and per side and split: mean tokens per sentence and the unknown-token rate.

    ``splits`` maps a split name (``train``, ``valid``) to its parquet file. Keys read
    like ``src_unk_rate_valid`` and ``tgt_tokens_per_sentence_train``.
    """
    out: dict[str, float | int | str | bool] = {
        "kind": src_tok.kind,
        "joint": src_tok == tgt_tok,
        "src_vocab_size": len(src_tok),
        "tgt_vocab_size": len(tgt_tok),
    }
    for split, path in splits.items():
        for side, tok in zip(SIDES, (src_tok, tgt_tok), strict=True):
            sentences = tokens = unknown = 0
            for texts in iter_texts(path, side):
                for ids in tok.encode_batch(texts):
                    tokens += len(ids)
                    unknown += ids.count(UNK_ID)
                sentences += len(texts)
            out[f"sentences_{split}"] = sentences
            out[f"{side}_tokens_per_sentence_{split}"] = round(tokens / max(sentences, 1), 4)
            out[f"{side}_unk_rate_{split}"] = round(unknown / max(tokens, 1), 6)
    return out
