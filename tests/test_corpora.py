"""The corpus registry: lookups, and the small corpora that ship with the package."""

from __future__ import annotations

import importlib.resources

import pytest

from nmt.data.corpora import UnknownCorpusError, get_corpus

# The six pairs of the seq2seq write-up's toy task, exactly as it lists them.
SEQ_DATA = [
    ["man", "women"],
    ["black", "white"],
    ["king", "queen"],
    ["girl", "boy"],
    ["up", "down"],
    ["high", "low"],
]


def shipped(corpus_url: str) -> list[list[str]]:
    path = corpus_url.removeprefix("package:")
    text = importlib.resources.files("nmt").joinpath(path).read_text("utf-8")
    return [line.split("\t") for line in text.splitlines()]


def test_antonyms6_is_the_write_up_list_exactly() -> None:
    corpus = get_corpus("antonyms6", "en", "en-x-antonym")
    assert corpus.role == "train" and corpus.format == "tsv"
    assert corpus.columns == ("en", "en-x-antonym")
    assert shipped(corpus.url) == SEQ_DATA


def test_antonyms_keeps_its_262_pairs_beside_it() -> None:
    pairs = shipped(get_corpus("antonyms", "en", "en-x-antonym").url)
    assert len(pairs) == 262 and pairs[0] == ["man", "woman"]


def test_unknown_names_and_pairs_say_what_exists() -> None:
    with pytest.raises(UnknownCorpusError, match="known: .*antonyms6"):
        get_corpus("antonym6", "en", "en-x-antonym")
    with pytest.raises(UnknownCorpusError, match="exists for: en-en-x-antonym"):
        get_corpus("antonyms6", "en", "fr")
