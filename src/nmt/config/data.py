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


class NormalizeParams(StrictModel):
    """Text normalisation, applied to both sides before filtering and training."""

    nfkc: bool = True
    lowercase: bool = False
    ascii_fold: bool = False  # transliterate to ASCII (unidecode): é -> e, œ -> oe
    punctuation: Literal["keep", "split", "strip"] = "keep"
    punctuation_chars: str = ".,!?;:"
    letters_only: bool = False  # other symbols become spaces (the PyTorch tutorial's rule)


class FilterParams(StrictModel):
    """Pair filters; each dropped pair is counted under its reason."""

    min_tokens: int = Field(1, ge=1)
    max_tokens: int = Field(50, ge=1)
    max_length_ratio: float = Field(3.0, ge=1.0)
    drop_identical: bool = True
    english_prefixes: list[str] = Field(default_factory=list)  # empty: no prefix filter

    @model_validator(mode="after")
    def _range(self) -> FilterParams:
        if self.min_tokens > self.max_tokens:
            raise ValueError("min_tokens must not exceed max_tokens")
        return self


class SplitParams(StrictModel):
    """Held-out fractions, assigned by a hash of the normalised source sentence."""

    valid: float = Field(0.02, gt=0, lt=0.5)
    test: float = Field(0.02, gt=0, lt=0.5)


class PrepareParams(StrictModel):
    normalize: NormalizeParams = NormalizeParams()
    filters: FilterParams = FilterParams()
    split: SplitParams = SplitParams()
    # Keep at most this many pairs (after filtering) of the named corpora; absent: all.
    max_pairs: dict[str, int] = Field(default_factory=dict)

    @field_validator("max_pairs")
    @classmethod
    def _positive(cls, v: dict[str, int]) -> dict[str, int]:
        for name, n in v.items():
            if n < 1:
                raise ValueError(f"{name}: must be at least 1")
        return v
