"""Held-out slices: proper names, skeletons, near-variants and the two slices."""

from __future__ import annotations

import numpy as np

from nmt.evaluation.slices import (
    LONG_WORDS,
    has_variant,
    heldout_slices,
    proper_names,
    skeleton,
    words,
)


def test_words_drop_punctuation_and_split_elisions():
    assert words("Tu as l'air japonais !") == ["Tu", "as", "l", "air", "japonais"]


def test_proper_names_are_words_never_seen_in_lower_case():
    names = proper_names(["Tom est ici.", "Il est là.", "il part.", "Marie se marie."])
    assert "tom" in names
    assert "il" not in names  # capitalised at the start of a sentence, lower case elsewhere
    assert "marie" not in names  # also a verb: a word, not a name


def test_skeleton_removes_names_numbers_case_and_punctuation():
    names = frozenset({"tom", "mary"})
    assert skeleton("Tom has 3 cats!", names) == "<name> has 0 cats"
    assert skeleton("mary has 12 cats.", names) == skeleton("Tom has 3 cats!", names)
    assert skeleton("Tom has cats.", names) != skeleton("Tom has 3 cats!", names)


def test_near_variants_differ_in_one_word_from_three_words_on():
    trained = ["Tu as l'air japonais.", "Je pars.", "Tom est ici.", "Il fait très froid."]
    trained.append("je sais que tu es là.")  # "je" and "tu" are words, not names
    texts = [
        "Tu as l'air japonaise !",  # one word apart, 5 words: a variant
        "Tu pars.",  # one word apart but only 2 words: not
        "Marie est ici.",  # a name for a name ("Tom" is one; "Marie" unseen)
        "Il fait très chaud ce soir.",  # another length: not
        "Je pars",  # the same skeleton
        "Il ne fait pas froid.",  # two words apart: not
    ]
    assert has_variant(texts, trained).tolist() == [True, False, True, False, True, False]


def test_heldout_slices_judge_either_side_and_count_source_words():
    train_src, train_tgt = ["Le chat dort."], ["The dog is black."]
    src = ["Le chien dort.", "Un chien est noir.", "Une phrase longue " + "de mots " * 4 + "."]
    ref = ["The dog sleeps.", "A dog is black.", "A long sentence of words."]
    slices = heldout_slices(src, ref, train_src, train_tgt)
    # row 0: a source-side variant; row 1: a target-side variant ("a" for "the")
    assert slices["novel"].tolist() == [2]
    assert len(src[2].split()) >= LONG_WORDS > len(src[1].split())
    assert slices["long"].tolist() == [2]
    assert all(rows.dtype == np.int64 for rows in slices.values())


def test_no_training_pairs_leaves_every_pair_novel():
    slices = heldout_slices(["Bonjour."], ["Hello."], [], [])
    assert slices["novel"].tolist() == [0]
    assert slices["long"].tolist() == []
