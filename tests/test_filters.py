"""Pair filters: each predicate, their order in PairFilter, and the reason codes."""

from __future__ import annotations

import re

import pytest

from nmt.config.data import FilterParams
from nmt.data.filters import (
    CODES,
    KEPT,
    REASONS,
    TEST_SET_REASONS,
    PairFilter,
    count_tokens,
    empty_side,
    english_prefix,
    identical,
    invalid_chars,
    length_ratio,
    token_count,
)


def test_codes_are_unique_and_leave_zero_for_kept() -> None:
    assert KEPT == 0
    assert sorted(CODES.values()) == list(range(1, len(REASONS) + 1))
    assert set(TEST_SET_REASONS) <= set(REASONS)


def test_count_tokens_on_normalised_text() -> None:
    assert count_tokens("") == 0
    assert count_tokens("a") == 1
    assert count_tokens("le chat dort .") == 4


@pytest.mark.parametrize(
    "text", ["a\x00b", "bell\x07", "vt\x0bx", "del\x7f", "nel\x85", "bad\ufffd"]
)
def test_invalid_chars_drops_controls_and_replacement_char(text: str) -> None:
    assert invalid_chars(text) == "invalid_chars"


@pytest.mark.parametrize("text", ["tab\tok", "line\r\n", "été – «ça»", "日本語", ""])
def test_invalid_chars_keeps_whitespace_and_ordinary_text(text: str) -> None:
    assert invalid_chars(text) is None


def test_invalid_chars_fast_path_agrees_with_the_full_rule() -> None:
    rule = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")
    for cp in [*range(0, 0x3100), *range(0xFEF0, 0x10000)]:
        if 0xD800 <= cp < 0xE000:
            continue  # surrogates never come out of a UTF-8 decoder
        text = f"ab{chr(cp)}cd"
        assert (invalid_chars(text) is not None) == bool(rule.search(text)), hex(cp)


def test_empty_side() -> None:
    assert empty_side("", "x") == "empty"
    assert empty_side("x", "") == "empty"
    assert empty_side("x", "y") is None


def test_token_count_bounds_apply_to_each_side() -> None:
    assert token_count(1, 3, min_tokens=2, max_tokens=5) == "too_short"
    assert token_count(3, 6, min_tokens=2, max_tokens=5) == "too_long"
    assert token_count(2, 5, min_tokens=2, max_tokens=5) is None


def test_length_ratio_either_way() -> None:
    assert length_ratio(2, 7, 3.0) == "length_ratio"
    assert length_ratio(7, 2, 3.0) == "length_ratio"
    assert length_ratio(2, 6, 3.0) is None
    assert length_ratio(0, 6, 3.0) is None  # empty sides are another filter's business


def test_identical() -> None:
    assert identical("Paris", "Paris") == "identical"
    assert identical("Paris", "paris") is None


def test_english_prefix() -> None:
    prefixes = ("i am ", "he is ")
    assert english_prefix("i am cold .", prefixes) is None
    assert english_prefix("he is tall", prefixes) is None
    assert english_prefix("she is tall", prefixes) == "english_prefix"
    assert english_prefix("I am cold", prefixes) == "english_prefix"  # compared as is
    assert english_prefix("anything", ()) is None  # no prefixes: off


def test_pair_filter_reports_the_first_reason_in_order() -> None:
    f = PairFilter(FilterParams(min_tokens=1, max_tokens=4, max_length_ratio=2.0))
    assert f("", "a b c d e f") == "empty"
    assert f("a", "a b c d e f") == "too_long"  # before the ratio
    assert f("a", "a b c") == "length_ratio"
    assert f("a b", "a b") == "identical"
    assert f("le chat", "the cat") is None


def test_pair_filter_identical_can_be_off() -> None:
    assert PairFilter(FilterParams(drop_identical=False))("Paris", "Paris") is None


def test_pair_filter_prefix_applies_to_the_english_side() -> None:
    params = FilterParams(english_prefixes=["i am "])
    to_en = PairFilter(params, english_side="tgt")
    assert to_en("je suis là", "i am here") is None
    assert to_en("i am here", "je suis là") == "english_prefix"
    from_en = PairFilter(params, english_side="src")
    assert from_en("i am here", "je suis là") is None


def test_pair_filter_prefix_needs_an_english_side() -> None:
    with pytest.raises(ValueError, match="english_prefixes"):
        PairFilter(FilterParams(english_prefixes=["i am "]), english_side=None)
    assert PairFilter(FilterParams(), english_side=None)("a", "b") is None


def test_english_prefix_is_taken_exactly_as_given() -> None:
    # The tutorial's list has "he is" and "she s" without a trailing space: no space is
    # implied, so they also keep "he isn t ..." and "she said ...", as str.startswith does.
    prefixes = ("he is", "she s", "i am ")
    assert english_prefix("he isn t here .", prefixes) is None
    assert english_prefix("she said no .", prefixes) is None
    assert english_prefix("i amuse myself .", prefixes) == "english_prefix"
    assert english_prefix(" he is here .", prefixes) == "english_prefix"  # a leading space


def test_token_count_is_split_on_a_space() -> None:
    # < 10 tokens in the tutorial is max_tokens: 9, punctuation tokens counted; text whose
    # spaces were left as made (collapse_whitespace: false) counts its empty tokens, as
    # len(s.split(" ")) does
    for text in ["i m cold .", "a  b", " a b ", "a"]:
        assert count_tokens(text) == len(text.split(" "))
    f = PairFilter(FilterParams(max_tokens=9), english_side="tgt")
    assert f("un deux trois quatre cinq six sept huit .", "one two three four five six .") is None
    assert f("un deux trois quatre cinq six sept huit neuf .", "one two .") == "too_long"


def test_max_length_ratio_can_be_off() -> None:
    assert PairFilter(FilterParams(max_length_ratio=None))("a", "a b c d e f g") is None
    assert PairFilter(FilterParams())("a", "a b c d e f g") == "length_ratio"
