"""Normalizer: each step on its own, the tutorial's rule, and detokenisation."""

from __future__ import annotations

import re
import unicodedata

import pytest
from unidecode import unidecode

from nmt.config.data import NormalizeParams
from nmt.data.normalize import Normalizer


def norm(text: str, **params: object) -> str:
    return Normalizer(NormalizeParams(**params))(text)


def test_nfkc_folds_compatibility_characters() -> None:
    assert norm("ﬁn Ｂｏｎｊｏｕｒ") == "fin Bonjour"
    assert norm("ﬁn", nfkc=False) == "ﬁn"
    decomposed = unicodedata.normalize("NFD", "été")
    assert norm(decomposed) == "été" and len(norm(decomposed)) == 3


def test_lowercase_is_optional() -> None:
    assert norm("Élise EST là.") == "Élise EST là."
    assert norm("Élise EST là.", lowercase=True) == "élise est là."


@pytest.mark.parametrize(
    "text", ["Élève œuvre à Noël", "Straße – «ça» € 5", "naïve café Ångström", "日本語"]
)
def test_ascii_fold_matches_unidecode(text: str) -> None:
    folded = norm(text, nfkc=False, ascii_fold=True)
    assert folded == " ".join(unidecode(text).split())
    assert folded.isascii()


def test_ascii_fold_is_off_by_default() -> None:
    assert norm("Élève") == "Élève"


def test_punctuation_keep_split_strip() -> None:
    text = "Oui, merci! Vraiment?"
    assert norm(text) == text
    assert norm(text, punctuation="split") == "Oui , merci ! Vraiment ?"
    assert norm(text, punctuation="strip") == "Oui merci Vraiment"
    assert norm("a.b", punctuation="split", punctuation_chars="!") == "a.b"


def test_letters_only_keeps_letters_digits_and_kept_punctuation() -> None:
    text = "I'm 42 — (really) l'été_2024!"
    assert norm(text, letters_only=True) == "I m 42 really l été 2024!"
    # stripped punctuation is not "kept": it goes too
    assert norm(text, letters_only=True, punctuation="strip") == "I m 42 really l été 2024"


def test_letters_only_keeps_an_underscore_only_if_asked() -> None:
    assert norm("snake_case!", letters_only=True) == "snake case!"
    assert norm("snake_case!", letters_only=True, punctuation_chars="_!") == "snake_case!"


def tutorial_normalize(s: str) -> str:
    """The PyTorch seq2seq tutorial's normalizeString (NFD + drop marks, as there)."""
    s = "".join(
        c for c in unicodedata.normalize("NFD", s.lower().strip()) if not unicodedata.combining(c)
    )
    s = re.sub(r"([.!?])", r" \1", s)
    s = re.sub(r"[^a-zA-Z.!?]+", r" ", s)
    return s.strip()


@pytest.mark.parametrize(
    "text", ["Go.", "I'm sure you'll love it!", "Qu'est-ce que c'est ?", "Ça va, Zoé ?"]
)
def test_tutorial_settings_reproduce_the_tutorial(text: str) -> None:
    tutorial = NormalizeParams(
        lowercase=True,
        ascii_fold=True,
        punctuation="split",
        punctuation_chars=".!?",
        letters_only=True,
    )
    assert Normalizer(tutorial)(text) == " ".join(tutorial_normalize(text).split())


def test_whitespace_is_collapsed_and_trimmed() -> None:
    assert norm("  a \t b\u00a0c\n d\u3000e  ") == "a b c d e"
    assert norm("") == ""
    assert norm(" \t ") == ""


def test_detokenize_undoes_split() -> None:
    n = Normalizer(NormalizeParams(punctuation="split"))
    text = "Oui, merci! Vraiment... Bon: fin; ok?"
    split = n(text)
    assert split == "Oui , merci ! Vraiment . . . Bon : fin ; ok ?"
    assert n.detokenize(split) == text
    # only marks it split are joined again: ")" was never split here
    assert n.detokenize(n("(oui.)")) == "(oui. )"


def test_detokenize_handles_brackets_and_apostrophes() -> None:
    n = Normalizer(NormalizeParams(punctuation="split", punctuation_chars=".(')"))
    split = n("l'homme (ici).")
    assert split == "l ' homme ( ici ) ."
    assert n.detokenize(split) == "l'homme (ici)."


def test_detokenize_is_a_no_op_for_other_modes() -> None:
    for mode in ("keep", "strip"):
        n = Normalizer(NormalizeParams(punctuation=mode))
        assert n.detokenize("oui , merci !") == "oui , merci !"
