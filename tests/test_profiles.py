from pathlib import Path

import pytest
import yaml

from nmt.profiles import (
    ProfileError,
    apply_profile,
    leaves,
    merge,
    profile_path,
    read_yaml,
    set_args,
    write_params,
)

ROOT = Path(__file__).resolve().parents[1]
BASE = {
    "seed": 1,
    "data": {"src_lang": "fr", "tgt_lang": "en", "corpora": ["tatoeba"]},
    "models": {"gru": {"hidden_dim": 8, "attention": "none"}, "attention": {"hidden_dim": 8}},
}


def test_merge_is_deep_and_does_not_touch_base():
    merged = merge(BASE, {"data": {"corpora": ["europarl"]}, "models": {"gru": {"hidden_dim": 4}}})
    assert merged["data"] == {"src_lang": "fr", "tgt_lang": "en", "corpora": ["europarl"]}
    assert merged["models"]["gru"] == {"hidden_dim": 4, "attention": "none"}
    assert BASE["models"]["gru"]["hidden_dim"] == 8


def test_null_entry_is_removed_and_becomes_a_delete_override():
    profile = {"models": {"attention": None, "lstm": {"cell": "lstm"}}}
    assert set(merge(BASE, profile)["models"]) == {"gru", "lstm"}
    assert set_args(BASE, profile) == ["-S", "~models.attention", "-S", '++models.lstm.cell="lstm"']


def test_leaves_are_dotted():
    assert dict(leaves({"a": {"b": 1, "c": {}}, "d": [1]})) == {"a.b": 1, "a.c": {}, "d": [1]}


def test_bad_profile_names_the_key():
    with pytest.raises(ProfileError, match="prepare.filters.max_tokens"):
        apply_profile(BASE, {"prepare": {"filters": {"max_tokens": -3}}}, "profiles/bad.yaml")


@pytest.mark.parametrize(
    ("base", "profile"),
    [({**BASE, "trian": {"epochs": 3}}, {"seed": 2}), (BASE, {"trian": {"epochs": 3}})],
    ids=["in params.yaml", "in the profile"],
)
def test_a_misspelt_top_level_section_is_refused(base, profile):
    with pytest.raises(ProfileError, match="trian: unknown key"):
        apply_profile(base, profile, "profiles/p.yaml")


def test_unknown_profile_lists_the_known_ones(tmp_path):
    (tmp_path / "one.yaml").write_text("seed: 2\n")
    with pytest.raises(ProfileError, match="known: one"):
        profile_path("two", tmp_path)


@pytest.mark.parametrize("path", sorted((ROOT / "profiles").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_profile_validates_over_params_yaml(path):
    base = read_yaml(ROOT / "params.yaml")
    apply_profile(base, read_yaml(path), str(path))
    assert set_args(base, read_yaml(path))  # every profile changes something


def test_write_params_round_trips(tmp_path):
    out = tmp_path / "params.yaml"
    write_params(out, BASE)
    assert yaml.safe_load(out.read_text()) == BASE
    assert list(yaml.safe_load(out.read_text())) == list(BASE)
