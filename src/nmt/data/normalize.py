"""Text normalisation, configured by :class:`~nmt.config.data.NormalizeParams`.

The steps run in a fixed order: Unicode NFKC, lower-casing, ASCII folding, the
``letters_only`` rule, the punctuation mode, and finally whitespace collapsing (runs of
whitespace become one space; ends are trimmed). Every step is cheap on ASCII text, which
is most of the data, so a :class:`Normalizer` can be called once per sentence.
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


class Normalizer:
    """Normalise one sentence at a time; ``normalizer(text) -> str``.

    ``punctuation``: ``keep`` leaves the characters of ``punctuation_chars`` alone,
    ``split`` puts a space on each side of each of them (one token per mark), ``strip``
    removes them. ``letters_only`` turns anything that is not a letter, a digit or a kept
    punctuation character into a space (the PyTorch tutorial's rule). :meth:`detokenize`
    undoes ``split`` for display and BLEU.
    """

    def __init__(self, params: NormalizeParams) -> None:
        self.params = params
        chars = params.punctuation_chars
        kept = "" if params.punctuation == "strip" else chars
        # ``\w`` is letters, digits and "_"; the underscore is not a letter, so it goes too
        # (unless kept). Whitespace is left alone here (the final collapse handles it).
        underscore = "" if "_" in kept else "|_"
        self._non_letters = re.compile(rf"[^\w\s{re.escape(kept)}]{underscore}")
        self._split = tuple((c, f" {c} ") for c in chars)
        self._strip_table = str.maketrans("", "", chars)
        self._fold = _AsciiFold()
        self._detok = self._detokenizer(chars) if params.punctuation == "split" else None

    def __call__(self, text: str) -> str:
        p = self.params
        if p.nfkc and not text.isascii():
            text = unicodedata.normalize("NFKC", text)
        if p.lowercase:
            text = text.lower()
        if p.ascii_fold and not text.isascii():
            text = text.translate(self._fold)
        if p.letters_only:
            text = self._non_letters.sub(" ", text)
        if p.punctuation == "split":
            for char, spaced in self._split:
                if char in text:  # str.replace beats one regex by 3x on long lines
                    text = text.replace(char, spaced)
        elif p.punctuation == "strip":
            text = text.translate(self._strip_table)
        # Printable text holds no whitespace but " ": skip the split/join when it has
        # no run of spaces and no space at either end (most sentences).
        if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
            return text
        return " ".join(text.split())

    def detokenize(self, text: str) -> str:
        """Undo the ``split`` punctuation mode: ``"oui , merci !"`` -> ``"oui, merci!"``.

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
