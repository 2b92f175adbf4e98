"""The registry of corpora the pipeline knows: where each comes from and how it is laid out.

A corpus is one downloadable archive plus the member(s) inside it that hold a language
pair. ``role`` says whether it trains (its pairs are split into train/valid/test) or is
an external test set (kept whole, and removed from train/valid to prevent leakage).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

Format = Literal["tsv", "aligned", "sgml"]
Role = Literal["train", "test"]


@dataclass(frozen=True)
class Corpus:
    """One corpus for one language pair.

    ``members`` maps a language code to the archive member holding that side; a TSV
    corpus has both sides in one member, listed in ``columns`` order.
    """

    name: str
    langs: frozenset[str]
    url: str
    format: Format
    role: Role
    members: dict[str, str]
    columns: tuple[str, ...] = ()
    sha256: str | None = None  # pinned checksum of the canonical file, when one is known
    credit: str = ""
    terms: str = ""  # the licence or terms of use, as the corpus states them
    # Test sets built in both directions keep a different source file per direction:
    # "src-tgt" -> {lang: member}; when absent, ``members`` serves both directions.
    direction_members: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    def members_for(self, src_lang: str, tgt_lang: str) -> dict[str, str]:
        """The archive member holding each side, for translating src_lang -> tgt_lang."""
        for direction, members in self.direction_members:
            if direction == f"{src_lang}-{tgt_lang}":
                return dict(members)
        return dict(self.members)

    @property
    def archive_name(self) -> str:
        return urlsplit(self.url).path.rsplit("/", 1)[-1]


TATOEBA_CREDIT = "www.manythings.org/anki and tatoeba.org (CC-BY 2.0 France)"
EUROPARL_CREDIT = "Koehn (2005), Europarl: A Parallel Corpus for Statistical Machine Translation"
WMT_CREDIT = "WMT14 news test sets, statmt.org (research use)"
TATOEBA_TERMS = "CC BY 2.0 FR: credit tatoeba.org and manythings.org"
EUROPARL_TERMS = "no known copyright restrictions (statmt.org/europarl); cite Koehn (2005)"
WMT_TERMS = "WMT14 shared-task data, for research use (statmt.org/wmt14)"

_ENTRIES: tuple[Corpus, ...] = (
    Corpus(
        name="tatoeba",
        langs=frozenset({"en", "fr"}),
        url="https://www.manythings.org/anki/fra-eng.zip",
        format="tsv",
        role="train",
        members={"en": "fra-eng/fra.txt", "fr": "fra-eng/fra.txt"},
        columns=("en", "fr"),
        credit=TATOEBA_CREDIT,
        terms=TATOEBA_TERMS,
    ),
    Corpus(
        name="tatoeba",
        langs=frozenset({"en", "es"}),
        url="https://www.manythings.org/anki/spa-eng.zip",
        format="tsv",
        role="train",
        members={"en": "spa-eng/spa.txt", "es": "spa-eng/spa.txt"},
        columns=("en", "es"),
        credit=TATOEBA_CREDIT,
        terms=TATOEBA_TERMS,
    ),
    Corpus(
        name="tutorial",
        langs=frozenset({"en", "fr"}),
        url="https://download.pytorch.org/tutorial/data.zip",
        format="tsv",
        role="train",
        members={"en": "data/eng-fra.txt", "fr": "data/eng-fra.txt"},
        columns=("en", "fr"),
        credit="PyTorch seq2seq tutorial data (from tatoeba.org via manythings.org)",
        terms=TATOEBA_TERMS,
    ),
    Corpus(
        name="europarl",
        langs=frozenset({"en", "fr"}),
        url="https://www.statmt.org/europarl/v7/fr-en.tgz",
        format="aligned",
        role="train",
        members={"en": "europarl-v7.fr-en.en", "fr": "europarl-v7.fr-en.fr"},
        credit=EUROPARL_CREDIT,
        terms=EUROPARL_TERMS,
    ),
    Corpus(
        name="antonyms",
        # A toy task: an English word to its opposite (man -> woman, black -> white). The
        # target "language" is a BCP 47 private-use tag; the file ships with the package.
        langs=frozenset({"en", "en-x-antonym"}),
        url="package:resources/antonyms.tsv",
        format="tsv",
        role="train",
        members={"en": "antonyms.tsv", "en-x-antonym": "antonyms.tsv"},
        columns=("en", "en-x-antonym"),
        credit="nmt (a hand-made list of English antonym pairs)",
        terms="MIT, with nmt",
    ),
    Corpus(
        name="antonyms6",
        # The six pairs of a seq2seq write-up's toy task, exactly as it lists them
        # (including "man" -> "women"), for a faithful reproduction of it.
        langs=frozenset({"en", "en-x-antonym"}),
        url="package:resources/antonyms6.tsv",
        format="tsv",
        role="train",
        members={"en": "antonyms6.tsv", "en-x-antonym": "antonyms6.tsv"},
        columns=("en", "en-x-antonym"),
        credit="nmt (six antonym pairs as listed in a public seq2seq tutorial)",
        terms="MIT, with nmt",
    ),
    Corpus(
        name="newstest2014",
        langs=frozenset({"en", "fr"}),
        url="https://www.statmt.org/wmt14/test-full.tgz",
        format="sgml",
        role="test",
        # Both directions hold all 3,003 segments; each takes its own source file, as
        # sacrebleu does (fr->en: src.fr + ref.en; en->fr: src.en + ref.fr).
        members={
            "en": "test-full/newstest2014-fren-ref.en.sgm",
            "fr": "test-full/newstest2014-fren-src.fr.sgm",
        },
        direction_members=(
            (
                "en-fr",
                (
                    ("en", "test-full/newstest2014-fren-src.en.sgm"),
                    ("fr", "test-full/newstest2014-fren-ref.fr.sgm"),
                ),
            ),
        ),
        credit=WMT_CREDIT,
        terms=WMT_TERMS,
    ),
    Corpus(
        name="newstest2013",
        langs=frozenset({"en", "fr"}),
        url="https://www.statmt.org/wmt14/dev.tgz",
        format="aligned",
        role="test",
        members={"en": "dev/newstest2013.en", "fr": "dev/newstest2013.fr"},
        credit=WMT_CREDIT,
        terms=WMT_TERMS,
    ),
)

REGISTRY: dict[tuple[str, frozenset[str]], Corpus] = {(c.name, c.langs): c for c in _ENTRIES}
NAMES: frozenset[str] = frozenset(c.name for c in _ENTRIES)


class UnknownCorpusError(KeyError):
    pass


def get_corpus(name: str, src_lang: str, tgt_lang: str) -> Corpus:
    """Look up ``name`` for the pair {src_lang, tgt_lang}; raise naming what exists."""
    key = (name, frozenset({src_lang, tgt_lang}))
    if key in REGISTRY:
        return REGISTRY[key]
    if name not in NAMES:
        raise UnknownCorpusError(f"unknown corpus {name!r}; known: {', '.join(sorted(NAMES))}")
    pairs = sorted("-".join(sorted(c.langs)) for c in _ENTRIES if c.name == name)
    raise UnknownCorpusError(
        f"corpus {name!r} has no {src_lang}-{tgt_lang} data; it exists for: {', '.join(pairs)}"
    )
