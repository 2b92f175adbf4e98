"""Pair filters: tiny pure predicates that return a drop reason, or ``None`` to keep.

Every dropped line is counted under exactly one reason (the first that applies, in the
order of :data:`REASONS`), so ``read == kept + sum(dropped)`` holds for each corpus.
Reasons are stored per line as small integer codes (:data:`CODES`; 0 means kept) so that
counts can be taken with ``numpy.bincount`` over any prefix of a corpus.
"""

from __future__ import annotations

import re
from typing import Literal

from nmt.config.data import FilterParams

__all__ = [
    "CODES",
    "KEPT",
    "REASONS",
    "TEST_SET_REASONS",
    "PairFilter",
    "count_tokens",
    "empty_side",
    "english_prefix",
    "identical",
    "invalid_chars",
    "length_ratio",
    "token_count",
]

REASONS: tuple[str, ...] = (
    "invalid_utf8",  # a side is not valid UTF-8 (readers)
    "bad_columns",  # a TSV line without a tab, or with more than 3 columns (readers)
    "invalid_chars",  # NUL, other C0/C1 control characters, U+FFFD (on the raw text)
    "empty",  # a side is empty after normalisation (or the whole line is blank)
    "too_short",  # fewer than min_tokens whitespace tokens on a side
    "too_long",  # more than max_tokens whitespace tokens on a side
    "length_ratio",  # longer side / shorter side (in tokens) above max_length_ratio
    "identical",  # source equals target
    "english_prefix",  # the English side does not start with one of english_prefixes
    "duplicate",  # the same (normalised) pair was kept before
)
KEPT = 0
CODES: dict[str, int] = {reason: code for code, reason in enumerate(REASONS, start=1)}
# External test sets are kept whole: only lines that cannot be read or are empty go.
TEST_SET_REASONS: tuple[str, ...] = ("invalid_utf8", "bad_columns", "invalid_chars", "empty")

# Tab, LF and CR are whitespace (normalisation collapses them); every other C0 and C1
# control, and the replacement character left by a lossy decoder, marks a broken line.
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")


def count_tokens(text: str) -> int:
    """Whitespace tokens of a normalised string (single spaces, no leading/trailing)."""
    return text.count(" ") + 1 if text else 0


def invalid_chars(text: str) -> str | None:
    """Drop text holding NUL, other control characters or U+FFFD (checked before
    normalisation, which would otherwise turn some controls into spaces)."""
    if text.isprintable():  # no control character: only U+FFFD is left to look for
        return "invalid_chars" if "\ufffd" in text else None
    return "invalid_chars" if _INVALID.search(text) else None


def scrub_invalid(texts: list[str]) -> list[str]:
    """Replace what :func:`invalid_chars` looks for with spaces (for kept-whole test sets)."""
    return [_INVALID.sub(" ", t) for t in texts]


def empty_side(src: str, tgt: str) -> str | None:
    return "empty" if not src or not tgt else None


def token_count(n_src: int, n_tgt: int, min_tokens: int, max_tokens: int) -> str | None:
    if n_src < min_tokens or n_tgt < min_tokens:
        return "too_short"
    if n_src > max_tokens or n_tgt > max_tokens:
        return "too_long"
    return None


def length_ratio(n_src: int, n_tgt: int, max_ratio: float) -> str | None:
    """Drop pairs whose longer side has more than ``max_ratio`` times the shorter's tokens."""
    short, long = min(n_src, n_tgt), max(n_src, n_tgt)
    return "length_ratio" if short and long > max_ratio * short else None


def identical(src: str, tgt: str) -> str | None:
    return "identical" if src == tgt else None


def english_prefix(english: str, prefixes: tuple[str, ...]) -> str | None:
    """The PyTorch tutorial's filter: keep only English sentences starting with a prefix.

    ``english`` is the normalised English side, compared as is, as ``str.startswith``
    does: a prefix is taken exactly as given, with no space implied after it (``"he is"``
    also keeps ``"he isn t ..."``), and with ``lowercase`` off ``"i am "`` does not match
    ``"I am ..."``. No prefixes: nothing is dropped.
    """
    if not prefixes or english.startswith(prefixes):
        return None
    return "english_prefix"


class PairFilter:
    """All pair filters of :class:`FilterParams`, applied in order to normalised text.

    ``english_side`` says which side is English, for the prefix filter; it must be set
    when ``english_prefixes`` is not empty.
    """

    def __init__(
        self, params: FilterParams, english_side: Literal["src", "tgt"] | None = None
    ) -> None:
        if params.english_prefixes and english_side is None:
            raise ValueError(
                "prepare.filters.english_prefixes is set but neither language is English"
            )
        self.params = params
        self.english_side = english_side
        self._prefixes = tuple(params.english_prefixes)

    def __call__(self, src: str, tgt: str) -> str | None:
        p = self.params
        reason = empty_side(src, tgt)
        if reason:
            return reason
        n_src, n_tgt = count_tokens(src), count_tokens(tgt)
        reason = token_count(n_src, n_tgt, p.min_tokens, p.max_tokens)
        if reason:
            return reason
        if p.max_length_ratio is not None and length_ratio(n_src, n_tgt, p.max_length_ratio):
            return "length_ratio"
        if p.drop_identical and identical(src, tgt):
            return "identical"
        if self._prefixes:
            return english_prefix(src if self.english_side == "src" else tgt, self._prefixes)
        return None
