"""Params of the data stages: which corpora (data), how to fetch them (download),
how to clean, filter and split them (prepare)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from nmt.config.base import StrictModel
from nmt.data.corpora import UnknownCorpusError, get_corpus

# ISO 639 code, optionally with a BCP 47 private-use suffix (e.g. en-x-antonym).
LANG = r"^[a-z]{2,3}(-x-[a-z0-9]{1,8})?$"


class DataParams(StrictModel):
    """Which language pair, direction and corpora a run uses."""

    src_lang: str = Field("fr", pattern=LANG)
    tgt_lang: str = Field("en", pattern=LANG)
    corpora: list[str] = Field(default_factory=lambda: ["tatoeba", "tutorial", "europarl"])
    test_sets: list[str] = Field(default_factory=lambda: ["newstest2014"])

    @field_validator("tgt_lang")
    @classmethod
    def _differs(cls, v: str, info: ValidationInfo) -> str:
        if v == info.data.get("src_lang"):
            raise ValueError("must differ from src_lang")
        return v

    @field_validator("corpora", "test_sets")
    @classmethod
    def _known(cls, names: list[str], info: ValidationInfo) -> list[str]:
        if info.field_name == "corpora" and not names:
            raise ValueError("at least one training corpus is needed")
        if len(set(names)) != len(names):
            raise ValueError("names must be unique")
        src, tgt = info.data.get("src_lang"), info.data.get("tgt_lang")
        if src is None or tgt is None:
            return names  # the language error is reported on its own key
        want = "train" if info.field_name == "corpora" else "test"
        for name in names:
            try:
                corpus = get_corpus(name, src, tgt)
            except UnknownCorpusError as err:
                raise ValueError(err.args[0]) from None
            if corpus.role != want:
                raise ValueError(f"{name!r} is a {corpus.role} corpus, not a {want} corpus")
        return names


class DownloadParams(StrictModel):
    """How corpora are fetched. ``checksums`` pins a sha256 per corpus name."""

    checksums: dict[str, str] = Field(default_factory=dict)
    retries: int = Field(3, ge=0, le=10)
    timeout_s: float = Field(30.0, gt=0)

    @field_validator("checksums")
    @classmethod
    def _hex(cls, v: dict[str, str]) -> dict[str, str]:
        for name, digest in v.items():
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise ValueError(f"{name}: a sha256 is 64 lower-case hex digits")
        return v


AsciiFold = Literal["unidecode", "marks", "drop"]
LettersOnly = Literal["unicode", "ascii"]


def _one_of(value: object, allowed: tuple[object, ...]) -> object:
    """Refuse anything but ``allowed`` with one message (a bool | Literal union would
    report each arm of the union on its own line)."""
    if isinstance(value, bool) or (isinstance(value, str) and value in allowed):
        return value
    raise ValueError("must be one of: " + ", ".join(str(a).lower() for a in allowed))


class NormalizeParams(StrictModel):
    """Text normalisation, applied to both sides before filtering and training.

    The steps run in this order: NFKC, lower-casing, ASCII folding, ``replace``,
    ``punctuation: split | split_before``, ``letters_only``, ``digits``, ``punctuation:
    strip``, ``alpha_tokens_only``, ``collapse_whitespace`` (see :mod:`nmt.data.normalize`).
    """

    nfkc: bool = True
    lowercase: bool = False
    # false | true (= unidecode: transliterate, é -> e, œ -> oe) | marks (NFD, then drop
    # the combining marks: é -> e, œ stays) | drop (NFD, then drop every non-ASCII
    # character: é -> e, œ and € go).
    ascii_fold: bool | AsciiFold = False
    punctuation: Literal["keep", "split", "split_before", "strip"] = "keep"
    punctuation_chars: str = ".,!?;:"
    # false | true (= unicode: letters, digits and kept punctuation stay) | ascii (ASCII
    # letters and kept punctuation stay); what does not stay becomes a space, or goes
    # with non_letters: delete.
    letters_only: bool | LettersOnly = False
    non_letters: Literal["space", "delete"] = "space"
    # Literal replacements, in order, after lower-casing (a replacement keeps its case),
    # e.g. {",": " COMMA"} or [[",", " COMMA"]]; the later steps see the replacement text.
    replace: dict[str, str] = Field(default_factory=dict)
    digits: Literal["keep", "strip"] = "keep"  # strip: delete the ASCII digits 0-9
    alpha_tokens_only: bool = False  # drop whitespace tokens that are not str.isalpha()
    # false: leave the spaces as the steps made them (no collapsing, no trimming), as
    # code that splits on " " sees them; token filters then count the empty tokens too.
    collapse_whitespace: bool = True

    @field_validator("ascii_fold", mode="before")
    @classmethod
    def _fold(cls, v: object) -> object:
        return _one_of(v, (False, True, "unidecode", "marks", "drop"))

    @field_validator("letters_only", mode="before")
    @classmethod
    def _letters(cls, v: object) -> object:
        return _one_of(v, (False, True, "unicode", "ascii"))

    @field_validator("non_letters")
    @classmethod
    def _needs_letters_only(cls, v: str, info: ValidationInfo) -> str:
        if v == "delete" and not info.data.get("letters_only", True):
            raise ValueError("delete needs letters_only")
        return v

    @field_validator("replace", mode="before")
    @classmethod
    def _pairs(cls, v: object) -> object:
        # also as a list of [old, new] pairs: a key such as "," cannot be spelt in a
        # `dvc exp run -S` override, a list of strings can
        if isinstance(v, list) and all(isinstance(x, list | tuple) and len(x) == 2 for x in v):
            return {old: new for old, new in v}
        return v

    @field_validator("replace")
    @classmethod
    def _replace(cls, v: dict[str, str]) -> dict[str, str]:
        if "" in v:
            raise ValueError("a replaced string must not be empty")
        return v


class FilterParams(StrictModel):
    """Pair filters; each dropped pair is counted under its reason."""

    min_tokens: int = Field(1, ge=1)
    max_tokens: int = Field(50, ge=1)
    max_length_ratio: float | None = Field(3.0, ge=1.0)  # null: no ratio filter
    drop_identical: bool = True
    english_prefixes: list[str] = Field(default_factory=list)  # empty: no prefix filter

    @model_validator(mode="after")
    def _range(self) -> FilterParams:
        if self.min_tokens > self.max_tokens:
            raise ValueError("min_tokens must not exceed max_tokens")
        return self


class SplitParams(StrictModel):
    """How kept pairs are divided into train, valid and test.

    ``kind: hash``: held-out fractions ``valid`` and ``test`` (each above 0), assigned by
    a hash of the normalised source sentence. ``kind: train``: every pair trains, and
    valid and test are the training pairs themselves (a toy task judged on what it
    learnt); ``valid`` and ``test`` are then unused.
    """

    kind: Literal["hash", "train"] = "hash"
    valid: float = Field(0.02, ge=0, lt=0.5)
    test: float = Field(0.02, ge=0, lt=0.5)

    @field_validator("valid", "test")
    @classmethod
    def _held_out(cls, v: float, info: ValidationInfo) -> float:
        if v <= 0 and info.data.get("kind", "hash") == "hash":
            raise ValueError("Input should be greater than 0 (with kind: hash)")
        return v


class PrepareParams(StrictModel):
    """Params of the prepare stage. Corpus names in the mappings must be in data.corpora
    (``normalize_corpora`` also takes data.test_sets); prepare checks that."""

    normalize: NormalizeParams = NormalizeParams()
    # Per corpus: normalisation steps of its own, applied before the shared ``normalize``.
    normalize_corpora: dict[str, NormalizeParams] = Field(default_factory=dict)
    filters: FilterParams = FilterParams()
    split: SplitParams = SplitParams()
    # Keep only the first N lines of the named corpora, before anything else; absent: all.
    head: dict[str, int] = Field(default_factory=dict)
    # Keep at most this many pairs (after filtering) of the named corpora; absent: all.
    max_pairs: dict[str, int] = Field(default_factory=dict)
    drop_duplicates: bool = True  # false: a pair that repeats is kept each time

    @field_validator("head", "max_pairs")
    @classmethod
    def _positive(cls, v: dict[str, int]) -> dict[str, int]:
        for name, n in v.items():
            if n < 1:
                raise ValueError(f"{name}: must be at least 1")
        return v
