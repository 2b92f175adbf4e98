"""Slices of the held-out split that measure generalisation rather than closeness to the
training data.

The held-out split shares no source or target sentence with the training split, but
Tatoeba holds many near-variants: the same sentence with another name, number, pronoun,
gender or punctuation ("Tom is here." / "Mary is here!", "Tu as l'air japonais." / "Tu
as l'air japonaise."). A held-out pair whose variant was trained on is mostly recall. Two
slices are scored beside the whole split:

- ``novel``: held-out pairs with no near-variant in the training split, on either side.
  Two sentences are near-variants when their *skeletons* are equal or, from
  :data:`MIN_SUBSTITUTION_WORDS` words on, differ in one word. The skeleton lowercases
  the words, drops punctuation, writes every number as ``0`` and every proper name as
  ``<name>`` (a word seen capitalised but never in lower case on that side of the
  training split).
- ``long``: held-out pairs of at least :data:`LONG_WORDS` source words (split at white
  space, as the BLEU-by-length buckets count them).

Nothing here imports torch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

#: The source length (in words) from which a held-out pair is in the ``long`` slice.
LONG_WORDS = 10
#: From this many skeleton words on, sentences one word apart are near-variants.
MIN_SUBSTITUTION_WORDS = 3
#: The slices :func:`heldout_slices` returns, in order.
SLICES: tuple[str, ...] = ("novel", "long")

_WORD = re.compile(r"\w+")
_DIGITS = re.compile(r"\d+")
NAME, NUMBER = "<name>", "0"


def words(text: str) -> list[str]:
    """The words of ``text``: runs of letters, digits and underscores (punctuation dropped)."""
    return _WORD.findall(text)


def proper_names(texts: Iterable[str]) -> frozenset[str]:
    """Lower-cased words that occur capitalised but never in lower case in ``texts``."""
    capitalised: set[str] = set()
    lower: set[str] = set()
    for text in texts:
        for word in words(text):
            if word[0].isupper():
                capitalised.add(word.lower())
            elif word.islower():
                lower.add(word)
    return frozenset(capitalised - lower)


def skeleton(text: str, names: frozenset[str]) -> str:
    """``text`` with its near-variants' differences removed (see the module doc)."""
    out = []
    for word in words(text):
        low = word.lower()
        if low in names:
            out.append(NAME)
        else:
            out.append(_DIGITS.sub(NUMBER, low))
    return " ".join(out)


def _variant_keys(skel: str) -> list[str]:
    """The skeleton itself and, from MIN_SUBSTITUTION_WORDS words, each one-word wildcard."""
    tokens = skel.split(" ")
    if len(tokens) < MIN_SUBSTITUTION_WORDS:
        return [skel]
    return [skel] + [" ".join([*tokens[:i], "*", *tokens[i + 1 :]]) for i in range(len(tokens))]


def has_variant(texts: Sequence[str], trained: Sequence[str]) -> np.ndarray:
    """(len(texts),) bool: whether each text has a near-variant among ``trained``."""
    names = proper_names(trained)
    keys = {key for text in trained for key in _variant_keys(skeleton(text, names))}
    return np.array(
        [any(k in keys for k in _variant_keys(skeleton(text, names))) for text in texts],
        dtype=bool,
    )


def heldout_slices(
    sources: Sequence[str],
    references: Sequence[str],
    train_sources: Sequence[str],
    train_targets: Sequence[str],
) -> dict[str, np.ndarray]:
    """``{slice: row indices into the held-out pairs}`` for each of :data:`SLICES`."""
    seen = has_variant(sources, train_sources) | has_variant(references, train_targets)
    long = np.array([len(text.split()) >= LONG_WORDS for text in sources], dtype=bool)
    return {"novel": np.flatnonzero(~seen), "long": np.flatnonzero(long)}
