import string
from pathlib import Path
from typing import Annotated, Literal

import pytest
import yaml
from pydantic import Discriminator, Tag, ValidationError

from nmt.config import ParamsError, StrictModel, _format_error, load_params, parse_params
from nmt.config.evaluate import ComparisonPair
from nmt.config.model import RNNParams, TransformerParams, parse_model_params

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_params_validate():
    params = load_params(ROOT / "params.yaml")
    assert params.data.src_lang == "fr" and params.models


@pytest.mark.parametrize(
    ("bad", "key", "says"),
    [
        ({"prepare": {"filters": {"max_tokens": -3}}}, "prepare.filters.max_tokens", "greater"),
        ({"vocab": {"kind": "bytes"}}, "vocab.kind", "'word', 'char' or 'subword'"),
        ({"vocab": {"sise": 3}}, "vocab.sise", "unknown key"),
        ({"data": {"corpora": ["nope"]}}, "data.corpora", "unknown corpus 'nope'"),
        ({"data": {"src_lang": "es", "corpora": ["europarl"]}}, "data.corpora", "no es-en"),
        ({"data": {"test_sets": ["tatoeba"]}}, "data.test_sets", "not a test corpus"),
        ({"data": {"tgt_lang": "fr"}}, "data.tgt_lang", "differ"),
        ({"models": {"m": {"hidden_dim": "big"}}}, "models.m.hidden_dim", "integer"),
        ({"models": {"m": {"arch": "lstm"}}}, "models.m", "arch must be one of: rnn, transformer"),
        (
            {"models": {"m": {"arch": "transformer", "hidden_dim": 8}}},
            "models.m.hidden_dim",
            "unknown key",
        ),
        (
            {"models": {"m": {"arch": "transformer", "model_dim": 30, "heads": 4}}},
            "models.m",
            "multiple of heads",
        ),
        ({"seed": "x"}, "seed", "integer"),
        ({"seed": 1180591620717411303424}, "seed", "less than 4294967296"),
        ({"seed": -1}, "seed", "greater than or equal to 0"),
        ({"train": {"lr": float("inf")}}, "train.lr", "finite number"),
        ({"train": {"clip_grad_norm": float("nan")}}, "train.clip_grad_norm", "finite number"),
        ({"evaluate": {"length_penalty": float("inf")}}, "evaluate.length_penalty", "finite"),
        ({"prepare": {"filters": {"max_length_ratio": float("inf")}}}, "max_length_ratio", "fin"),
        ({"extra": 1}, "extra", "unknown key"),
        (
            {"prepare": {"normalize": {"ascii_fold": "yes"}}},
            "prepare.normalize.ascii_fold",
            "marks",
        ),
        (
            {"prepare": {"normalize": {"letters_only": 1}}},
            "prepare.normalize.letters_only",
            "ascii",
        ),
        (
            {"prepare": {"normalize": {"non_letters": "delete"}}},
            "prepare.normalize.non_letters",
            "needs letters_only",
        ),
        ({"prepare": {"normalize": {"digits": "drop"}}}, "prepare.normalize.digits", "'strip'"),
        (
            {"prepare": {"normalize_corpora": {"europarl": {"lowercas": True}}}},
            "prepare.normalize_corpora.europarl.lowercas",
            "unknown key",
        ),
        ({"prepare": {"head": {"tatoeba": 0}}}, "prepare.head", "tatoeba: must be at least 1"),
        ({"prepare": {"split": {"kind": "all"}}}, "prepare.split.kind", "'hash' or 'train'"),
        ({"prepare": {"split": {"valid": 0}}}, "prepare.split.valid", "greater than 0"),
        ({"prepare": {"drop_duplicates": "maybe"}}, "prepare.drop_duplicates", "boolean"),
    ],
)
def test_bad_params_name_the_key(bad, key, says):
    with pytest.raises(ParamsError) as err:
        parse_params(bad, "params.yaml")
    assert f"{key}:" in str(err.value) and says in str(err.value)


def test_prepare_options_default_to_the_plain_behaviour():
    prepare = parse_params({}).prepare
    n = prepare.normalize
    assert (n.ascii_fold, n.letters_only, n.non_letters) == (False, False, "space")
    assert n.digits == "keep"
    assert (n.replace, n.alpha_tokens_only, n.collapse_whitespace) == ({}, False, True)
    assert (prepare.split.kind, prepare.drop_duplicates) == ("hash", True)
    assert (prepare.head, prepare.normalize_corpora) == ({}, {})
    # held-out fractions of 0 are fine where the split takes none
    assert parse_params({"prepare": {"split": {"kind": "train", "valid": 0, "test": 0}}})


def test_ascii_punctuation_is_written_in_yaml_as_documented():
    # the value README gives for string.punctuation, in single quotes
    text = "punctuation_chars: '!\"#$%&''()*+,-./:;<=>?@[\\]^_`{|}~'\n"
    assert yaml.safe_load(text)["punctuation_chars"] == string.punctuation


def test_a_model_without_arch_is_recurrent_and_arch_picks_the_params_class():
    params = parse_params(
        {"models": {"old": {"hidden_dim": 8}, "t": {"arch": "transformer", "heads": 2}}}
    )
    assert isinstance(params.models["old"], RNNParams) and params.models["old"].arch == "rnn"
    assert isinstance(params.models["t"], TransformerParams) and params.models["t"].heads == 2
    # a checkpoint's params, written before there was a choice, still parse
    saved = RNNParams(hidden_dim=8).model_dump()
    del saved["arch"]
    assert parse_model_params(saved) == RNNParams(hidden_dim=8)


def test_sections_validate_only_what_a_stage_reads(tmp_path):
    path = write(tmp_path, {"data": {"src_lang": "fr"}, "vocab": {"kind": "bytes"}})
    assert load_params(path, sections=["data"]).data.src_lang == "fr"
    with pytest.raises(ParamsError, match="vocab.kind"):
        load_params(path, sections=["data", "vocab"])
    with pytest.raises(ParamsError, match="typo: unknown key"):
        load_params(write(tmp_path, {"typo": 1}), sections=["data"])


def test_unreadable_files_are_named(tmp_path):
    with pytest.raises(ParamsError, match="file not found"):
        load_params(tmp_path / "missing.yaml")
    (tmp_path / "params.yaml").write_text("data: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(tmp_path / "params.yaml")


def test_non_finite_yaml_floats_are_refused_by_name(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  lr: .inf\n")
    with pytest.raises(ParamsError, match=r"train\.lr: Input should be a finite number"):
        load_params(path)


class _A(StrictModel):
    kind: Literal["a"] = "a"
    size: int = 1


class _B(StrictModel):
    kind: Literal["b"]
    name: str


def _kind(value: object) -> str:
    return value.get("kind", "a") if isinstance(value, dict) else getattr(value, "kind", "a")


class _Holder(StrictModel):
    """A tagged union, as the entries of ``models:`` are, and a list of mappings."""

    items: dict[
        str, Annotated[Annotated[_A, Tag("a")] | Annotated[_B, Tag("b")], Discriminator(_kind)]
    ] = {}
    pairs: list[ComparisonPair] = []


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"items": {"x": {"size": "big"}}}, "items.x.size"),  # pydantic's path: items.x.a.size
        ({"items": {"x": {"kind": "b", "name": "n", "nam": "n"}}}, "items.x.nam"),  # under b
        ({"items": {"x": {"kind": "b"}}}, "items.x.name"),  # a missing key stays named
        ({"pairs": [{"baseline": "a", "candidate": "b"}, {"baseline": "a"}]}, "pairs.1.candidate"),
        ({"pairs": [{"baseline": "a", "candidate": "a"}]}, "pairs.0"),  # a model validator
    ],
)
def test_error_keys_are_the_keys_of_the_file(raw, key):
    with pytest.raises(ValidationError) as err:
        _Holder.model_validate(raw)
    lines = _format_error(err.value, "p.yaml", raw).splitlines()
    assert lines[0] == "invalid parameters in p.yaml:"
    assert [line.split(":")[0].strip() for line in lines[1:]] == [key]
