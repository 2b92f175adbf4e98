"""Normalizer: each step on its own, the tutorial's rule, and detokenisation."""

from __future__ import annotations

import os
import re
import string
import unicodedata
import zipfile
from pathlib import Path

import pytest
from pydantic import ValidationError
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


def test_ascii_fold_marks_drops_combining_marks_only() -> None:
    # NFD, then no Mn: accents go, letters that do not decompose (œ, ß) stay
    assert norm("Élève œuvre à Noël, Straße", nfkc=False, ascii_fold="marks") == (
        "Eleve œuvre a Noel, Straße"
    )


def test_ascii_fold_drop_deletes_what_is_not_ascii() -> None:
    # NFD, then encode("ascii", "ignore"): œ, ß and € go without leaving a space
    text = "Élève œuvre 5 € Straße"
    assert norm(text, nfkc=False, ascii_fold="drop", collapse_whitespace=False) == (
        "Eleve uvre 5  Strae"
    )


def test_ascii_fold_true_is_unidecode() -> None:
    assert norm("cœur", ascii_fold=True) == norm("cœur", ascii_fold="unidecode") == "coeur"


def test_letters_only_ascii_keeps_ascii_letters_and_kept_punctuation() -> None:
    text = "J'ai 19 ans, cœur_brisé ! 3.5"
    kept = {"punctuation_chars": ".!?", "letters_only": "ascii"}
    assert norm(text, **kept) == "J ai ans c ur bris ! ."
    # unicode (true) keeps letters and digits of any script
    assert norm(text, letters_only=True, punctuation_chars=".!?") == "J ai 19 ans cœur brisé ! 3.5"


def test_non_letters_delete_removes_instead_of_spacing() -> None:
    text = "l'été, 3 ¿ok?"
    params = {"letters_only": "ascii", "non_letters": "delete", "punctuation_chars": ",?¿"}
    assert norm(text, nfkc=False, **params) == "lt, ¿ok?"
    with pytest.raises(ValidationError, match="delete needs letters_only"):
        NormalizeParams(non_letters="delete")


def test_digits_strip_deletes_ascii_digits() -> None:
    assert norm("Room 101, floor 2b", digits="strip") == "Room , floor b"
    assert norm("Room 101", digits="keep") == "Room 101"


def test_replace_runs_after_lowercase_and_before_punctuation() -> None:
    params = {"lowercase": True, "replace": {",": " COMMA"}, "punctuation": "strip"}
    assert norm("Yes, Sir, yes.", punctuation_chars=",.", **params) == "yes COMMA sir COMMA yes"
    with pytest.raises(ValidationError, match="must not be empty"):
        NormalizeParams(replace={"": "x"})


def test_split_before_puts_a_space_before_each_mark_only() -> None:
    assert norm("Five p.m. Wait...", punctuation="split_before", punctuation_chars=".") == (
        "Five p .m . Wait . . ."
    )
    n = Normalizer(NormalizeParams(punctuation="split_before", punctuation_chars=".!?"))
    assert n.detokenize(n("Oui. Non!")) == "Oui. Non!"


def test_alpha_tokens_only_drops_tokens_with_other_characters() -> None:
    assert norm("the 3rd item costs 5 euros", alpha_tokens_only=True) == "the item costs euros"


def test_collapse_whitespace_off_leaves_spaces_as_made() -> None:
    params = {"letters_only": "ascii", "punctuation_chars": "."}
    assert norm('"Look," she said.', **params) == "Look she said."
    assert norm('"Look," she said.', collapse_whitespace=False, **params) == " Look she said."


# Copies of the write-ups' code, kept apart from the library: the reference each option
# combination is held to.


def tutorial_normalize_string(s: str) -> str:
    """The PyTorch seq2seq tutorial's unicodeToAscii + normalizeString, as written."""
    s = "".join(
        c
        for c in unicodedata.normalize("NFD", s.lower().strip())
        if unicodedata.category(c) != "Mn"
    )
    s = re.sub(r"([.!?])", r" \1", s)
    s = re.sub(r"[^a-zA-Z.!?]+", r" ", s)
    return s


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def tf_lower_and_split_punct(text: str) -> str:
    """The TensorFlow tutorial's standardisation (tf.strings.lower lowers ASCII only)."""
    text = unicodedata.normalize("NFKD", text).translate(_ASCII_LOWER)
    text = re.sub("[^ a-z.?!,¿]", "", text)
    text = re.sub("[.?!,¿]", r" \g<0> ", text)
    return text.strip()


def clean_line(line: str) -> str:
    """clean_lines of the Europarl write-up, for one line."""
    re_print = re.compile(f"[^{re.escape(string.printable)}]")
    table = str.maketrans("", "", string.punctuation)
    line = unicodedata.normalize("NFD", line).encode("ascii", "ignore").decode("UTF-8")
    words = [w.lower() for w in line.split()]
    words = [re_print.sub("", w.translate(table)) for w in words]
    return " ".join(w for w in words if w.isalpha())


def keras_preprocess(x: str) -> str:
    """The Keras example's preprocessing of one sentence."""
    x = re.sub(",", " COMMA", re.sub("'", "", x.lower()))
    x = "".join(ch for ch in x if ch not in set(string.punctuation))
    return x.translate(str.maketrans("", "", string.digits))


def clean_sentence(sent: str) -> str:
    """The English-Spanish write-up's clean_sentence."""
    return re.sub('[".,!?]', "", unidecode(sent.lower()))


TUTORIAL = NormalizeParams(
    nfkc=False,
    lowercase=True,
    ascii_fold="marks",
    punctuation="split_before",
    punctuation_chars=".!?",
    letters_only="ascii",
    collapse_whitespace=False,
)
TF = NormalizeParams(
    lowercase=True,
    ascii_fold="marks",
    punctuation="split",
    punctuation_chars=".?!,¿",
    letters_only="ascii",
    non_letters="delete",
)
CLEAN_LINES = NormalizeParams(
    nfkc=False,
    lowercase=True,
    ascii_fold="drop",
    punctuation="strip",
    punctuation_chars=string.punctuation,
    alpha_tokens_only=True,
)
KERAS = NormalizeParams(
    nfkc=False,
    lowercase=True,
    replace={",": " COMMA"},
    digits="strip",
    punctuation="strip",
    punctuation_chars=string.punctuation,
)
CLEAN_SENTENCE = NormalizeParams(
    nfkc=False,
    lowercase=True,
    ascii_fold=True,
    punctuation="strip",
    punctuation_chars='".,!?',
    collapse_whitespace=False,
)
# Lines of the mirror's eng-fra.txt (tutorial) and spa.txt where simpler rules go wrong:
# œ, digits, currency, guillemets, "...", "p.m.", a leading quote, curly apostrophes, a
# narrow no-break space, ranges and symbols.
ENG_FRA = [
    "Jette un œil !",
    "I'm 19.",
    "Here's $5.",
    "Dis : « s'il te plaît ».",
    "Un instant...",
    "I'll be there at five p.m.",
    '"Look," she said.',
    "Je l’ai vu.",
    "Cours\u202f!",
    "Arrête-toi !",
    "It's 99.9% effective.",
    "I like R & B.",
    "Le parc est à deux miles (~3.2km) d'ici.",
    "It's 3:30.",
]
SPA = [
    "¿Quién?",
    "¡Corre!",
    "Enséñamelo.",
    "It's 3:10.",
    'Di "por favor".',
    "¡Oh, no!",
    "El actinio se vaporiza a 3198ºC.",
    "Yo estuve en el área .",
    "Ninguno de los acusados \u200b\u200bfue declarado culpable.",
    "En vez de comer verduras, él las\xa0 pone en la licuadora.",
]


@pytest.mark.parametrize("text", ENG_FRA)
def test_tutorial_normalize_string_exactly(text: str) -> None:
    assert Normalizer(TUTORIAL)(text) == tutorial_normalize_string(text)


@pytest.mark.parametrize("text", ENG_FRA)
def test_tutorial_tokens_with_whitespace_collapsed(text: str) -> None:
    collapsed = TUTORIAL.model_copy(update={"collapse_whitespace": True})
    assert Normalizer(collapsed)(text).split(" ") == tutorial_normalize_string(text).split()


@pytest.mark.parametrize("text", SPA + ENG_FRA)
def test_tf_lower_and_split_punct_tokens(text: str) -> None:
    # TextVectorization splits the standardised text on whitespace
    assert Normalizer(TF)(text).split() == tf_lower_and_split_punct(text).split()


@pytest.mark.parametrize(
    "text",
    [
        "Resumption of the session",
        "(The House rose and observed a minute' s silence)",
        "Mr Hänsch, 1999's 3rd report: «ça» – 20% «oui» l'Union!",
        *ENG_FRA,
    ],
)
def test_clean_lines_exactly(text: str) -> None:
    assert Normalizer(CLEAN_LINES)(text) == clean_line(text)


@pytest.mark.parametrize("text", ["Hi, Tom, it's 5 o'clock.", "Va, cours !", *ENG_FRA])
def test_keras_preprocessing_tokens(text: str) -> None:
    assert Normalizer(KERAS)(text).split() == keras_preprocess(text).split()


@pytest.mark.parametrize("text", SPA)
def test_clean_sentence_exactly(text: str) -> None:
    assert Normalizer(CLEAN_SENTENCE)(text) == clean_sentence(text)


def _mirror_lines(archive: str, member: str) -> list[str]:
    mirror = os.environ.get("NMT_DATA_MIRROR")
    path = Path(mirror or "/nonexistent") / archive
    if not path.is_file():
        pytest.skip(f"no {archive} in NMT_DATA_MIRROR")
    with zipfile.ZipFile(path) as z:
        text = z.read(member).decode("utf-8")
    return [side for line in text.splitlines() for side in line.split("\t")[:2]]


@pytest.mark.integration
def test_tutorial_and_tf_rules_on_every_mirror_sentence() -> None:
    eng_fra = _mirror_lines("download.pytorch.org/tutorial/data.zip", "data/eng-fra.txt")
    tutorial = Normalizer(TUTORIAL)
    assert [s for s in eng_fra if tutorial(s) != tutorial_normalize_string(s)] == []
    spa = _mirror_lines("www.manythings.org/anki/spa-eng.zip", "spa-eng/spa.txt")
    tf = Normalizer(TF)
    assert [s for s in spa if tf(s).split() != tf_lower_and_split_punct(s).split()] == []


def test_replacements_may_be_given_as_pairs():
    assert NormalizeParams(replace=[[",", " COMMA"]]).replace == {",": " COMMA"}
