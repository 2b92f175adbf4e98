"""Text normalisation, configured by :class:`~nmt.config.data.NormalizeParams`.

The steps run in a fixed order: Unicode NFKC, lower-casing, ASCII folding, literal
replacements, punctuation splitting, the ``letters_only`` rule, digit stripping,
punctuation stripping, dropping non-alphabetic tokens, and finally whitespace collapsing
(runs of whitespace become one space; ends are trimmed; ``collapse_whitespace: false``
leaves the spaces as they are). Every step is cheap on ASCII text, which is most of the
data, so a :class:`Normalizer` can be called once per sentence.

The options reproduce the cleaning of well-known tutorials exactly (tests hold each to a
copy of its code): the PyTorch seq2seq tutorial's ``normalizeString`` (``ascii_fold:
marks``, ``letters_only: ascii``, ``punctuation: split_before`` on ``.!?``), the
TensorFlow NMT tutorial's ``tf_lower_and_split_punct`` (NFKC, then ``marks``,
``letters_only: ascii`` with ``non_letters: delete``, ``split`` on ``.?!,¿``),
``clean_lines`` of a Europarl preparation (``ascii_fold: drop``, ``strip`` of all ASCII
punctuation, ``alpha_tokens_only``) and a Keras example's (``replace``, ``digits``).
"""

from __future__ import annotations

import re
import unicodedata

from unidecode import unidecode

from nmt.config.data import NormalizeParams

__all__ = ["Normalizer"]

# Detokenisation of the "split" mode: which side of a punctuation mark loses its space.
_CLOSING = frozenset(".,!?;:)]}»%…")  # attach to the word before: "word ." -> "word."
_OPENING = frozenset("([{«¿¡")  # attach to the word after: "( word" -> "(word"
_JOINING = frozenset("'’-/")  # attach on both sides: "l ' homme" -> "l'homme"


class _AsciiFold(dict[int, str]):
    """A ``str.translate`` table that folds each character with unidecode, once.

    unidecode maps characters one by one, so caching per character gives the same
    result as ``unidecode(text)`` at a third of the cost.
    """

    def __missing__(self, codepoint: int) -> str:
        folded = unidecode(chr(codepoint))
        self[codepoint] = folded
        return folded


class _DropMarks(dict[int, str | None]):
    """A ``str.translate`` table that deletes combining marks (Unicode category Mn)."""

    def __missing__(self, codepoint: int) -> str | None:
        char = chr(codepoint)
        kept = None if unicodedata.category(char) == "Mn" else char
        self[codepoint] = kept
        return kept


_DIGITS = str.maketrans("", "", "0123456789")


class Normalizer:
    """Normalise one sentence at a time; ``normalizer(text) -> str``.

    ``ascii_fold``: ``true``/``unidecode`` transliterates (é -> e, œ -> oe, € -> EUR),
    ``marks`` decomposes (NFD) and deletes combining marks (é -> e; œ stays), ``drop``
    decomposes and deletes every character left that is not ASCII (é -> e; œ goes).
    ``replace`` replaces strings literally, in order. ``letters_only``: ``true``/``unicode``
    keeps letters, digits, whitespace and kept punctuation, any other character becoming
    a space; ``ascii`` keeps ASCII letters and kept punctuation, each run of anything
    else (spaces too) becoming one space; with ``non_letters: delete`` what is not kept
    (bar spaces) is deleted instead. ``digits: strip`` deletes 0-9. ``punctuation``:
    ``keep`` leaves the characters of ``punctuation_chars`` alone, ``split`` puts a space
    on each side of each of them (one token per mark), ``split_before`` a space before
    each (``re.sub(r"([.!?])", r" \1", s)``), ``strip`` removes them.
    ``alpha_tokens_only`` drops whitespace tokens that are not ``str.isalpha()``.
    ``collapse_whitespace: false`` returns the text with its spaces as the steps left
    them. :meth:`detokenize` undoes ``split`` and ``split_before`` for display and BLEU.
    """

    def __init__(self, params: NormalizeParams) -> None:
        self.params = params
        chars = params.punctuation_chars
        self._non_letters = self._letters_rule(params)
        self._gap = "" if params.non_letters == "delete" else " "
        after = "" if params.punctuation == "split_before" else " "
        self._split = tuple((c, f" {c}{after}") for c in chars)
        self._strip_table = str.maketrans("", "", chars)
        self._fold = _AsciiFold()
        self._marks = _DropMarks()
        split = params.punctuation in ("split", "split_before")
        self._detok = self._detokenizer(chars) if split else None

    @staticmethod
    def _letters_rule(params: NormalizeParams) -> re.Pattern[str] | None:
        """What ``letters_only`` replaces: one character (unicode) or a run (ascii)."""
        kept = "" if params.punctuation == "strip" else params.punctuation_chars
        if params.letters_only == "ascii" and params.non_letters == "delete":
            return re.compile(rf"[^ a-zA-Z{re.escape(kept)}]")  # even other whitespace
        if params.letters_only == "ascii":
            # A run of anything else, spaces included, becomes one space (as the tutorial's
            # re.sub(r"[^a-zA-Z.!?]+", " ", s) does).
            return re.compile(rf"[^a-zA-Z{re.escape(kept)}]+")
        if params.letters_only:
            # ``\w`` is letters, digits and "_"; the underscore is not a letter, so it goes
            # too (unless kept). Whitespace is left alone (the final collapse handles it).
            underscore = "" if "_" in kept else "|_"
            return re.compile(rf"[^\w\s{re.escape(kept)}]{underscore}")
        return None

    def __call__(self, text: str) -> str:
        p = self.params
        if p.nfkc and not text.isascii():
            text = unicodedata.normalize("NFKC", text)
        if p.lowercase:
            text = text.lower()
        if p.ascii_fold and not text.isascii():
            text = self._ascii(text)
        for old, new in p.replace.items():
            if old in text:
                text = text.replace(old, new)
        if p.punctuation in ("split", "split_before"):
            for char, spaced in self._split:
                if char in text:  # str.replace beats one regex by 3x on long lines
                    text = text.replace(char, spaced)
        if self._non_letters is not None:
            text = self._non_letters.sub(self._gap, text)
        if p.digits == "strip":
            text = text.translate(_DIGITS)
        if p.punctuation == "strip":
            text = text.translate(self._strip_table)
        if p.alpha_tokens_only:
            return " ".join(t for t in text.split() if t.isalpha())
        if not p.collapse_whitespace:
            return text
        # Printable text holds no whitespace but " ": skip the split/join when it has
        # no run of spaces and no space at either end (most sentences).
        if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
            return text
        return " ".join(text.split())

    def _ascii(self, text: str) -> str:
        fold = self.params.ascii_fold
        if fold == "marks":
            return unicodedata.normalize("NFD", text).translate(self._marks)
        if fold == "drop":
            return unicodedata.normalize("NFD", text).encode("ascii", "ignore").decode("ascii")
        return text.translate(self._fold)

    def detokenize(self, text: str) -> str:
        """Undo ``split`` or ``split_before``: ``"oui , merci !"`` -> ``"oui, merci!"``.

        Closing marks (``. , ! ? ; :`` and the like) lose the space before them, opening
        brackets the space after, apostrophes and hyphens both; other marks keep theirs.
        A no-op for the other modes.
        """
        if self._detok is None:
            return text
        return self._detok.sub("", " ".join(text.split()))

    @staticmethod
    def _detokenizer(chars: str) -> re.Pattern[str] | None:
        # Marks of no known side (quotes, say) keep their spaces: guessing would be worse.
        closing = "".join(c for c in chars if c in _CLOSING)
        opening = "".join(c for c in chars if c in _OPENING)
        joining = "".join(c for c in chars if c in _JOINING)
        parts = []
        if closing:
            parts.append(rf" (?=[{re.escape(closing)}])")
        if opening:
            parts.append(rf"(?<=[{re.escape(opening)}]) ")
        if joining:
            parts.append(rf" (?=[{re.escape(joining)}])|(?<=[{re.escape(joining)}]) ")
        return re.compile("|".join(parts)) if parts else None
