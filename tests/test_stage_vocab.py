"""The vocab stage end to end on tiny prepared parquet files made in tmp_path."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner, Result

from nmt.vocab import UNK_ID, load_tokenizers

ROOT = Path(__file__).resolve().parents[1]
FR = [
    "le chat est noir .",
    "le chien est blanc .",
    "un chat et un chien jouent dans le jardin .",
    "où est la gare ?",
    "nous allons à la plage demain .",
    "elle mange une pomme rouge .",
]
EN = [
    "the cat is black .",
    "the dog is white .",
    "a cat and a dog play in the garden .",
    "where is the station ?",
    "we are going to the beach tomorrow .",
    "she eats a red apple .",
]
ARGS = ["--prepared", "data/prepared", "--out", "data/vocab", "--metrics", "metrics/vocab.json"]


def load_stage() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stage_vocab", ROOT / "stages/vocab.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_pairs(path: Path, src: list[str], tgt: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    corpus = (
        pa.array(["toy"] * len(src))
        .dictionary_encode()
        .cast(pa.dictionary(pa.int32(), pa.string()))
    )
    pq.write_table(pa.table({"src": src, "tgt": tgt, "ref": tgt, "corpus": corpus}), path)


def write_params(root: Path, **vocab: Any) -> None:
    # Only the sections dvc.yaml lists for the stage: it must need nothing else.
    (root / "params.yaml").write_text(yaml.safe_dump({"seed": 3, "vocab": vocab}))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_pairs(tmp_path / "data/prepared/train.parquet", FR * 5, EN * 5)
    write_pairs(tmp_path / "data/prepared/valid.parquet", ["le chat zèbre ."], ["the cat ."])
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(args: list[str] = ARGS) -> Result:
    return CliRunner().invoke(load_stage().main, args, catch_exceptions=False)


@pytest.mark.parametrize(
    "vocab",
    [
        {"kind": "word", "joint": False},
        {"kind": "char", "joint": True, "min_freq": 2},
        {"kind": "subword", "joint": True, "vocab_size": 40, "model_type": "bpe"},
        {"kind": "subword", "joint": False, "vocab_size": 36, "model_type": "unigram"},
    ],
    ids=["word", "char", "bpe-joint", "unigram-separate"],
)
def test_stage_writes_tokenizers_and_metrics(project: Path, vocab: dict[str, Any]) -> None:
    write_params(project, **vocab)
    result = invoke()
    assert result.exit_code == 0, result.output
    assert f"{vocab['kind']} vocabularies" in result.output

    src, tgt = load_tokenizers(project / "data/vocab")
    assert sorted(p.name for p in (project / "data/vocab").iterdir()) == ["src.json", "tgt.json"]
    assert (src == tgt) is vocab["joint"]
    assert [src.decode(src.encode(t)) for t in FR] == FR
    assert [tgt.decode(tgt.encode(t)) for t in EN] == EN

    metrics = json.loads((project / "metrics/vocab.json").read_text())
    assert metrics["kind"] == vocab["kind"] and metrics["joint"] is vocab["joint"]
    assert (metrics["src_vocab_size"], metrics["tgt_vocab_size"]) == (len(src), len(tgt))
    assert metrics["sentences_train"] == 30 and metrics["sentences_valid"] == 1
    unk = src.encode("le chat zèbre .").count(UNK_ID) / len(src.encode("le chat zèbre ."))
    assert unk > 0 and metrics["src_unk_rate_valid"] == pytest.approx(unk, abs=1e-6)
    assert metrics["tgt_unk_rate_valid"] == 0.0
    for key in ("src_tokens_per_sentence_train", "tgt_tokens_per_sentence_valid"):
        assert metrics[key] > 0
    if "vocab_size" in vocab:
        assert len(src) == len(tgt) == vocab["vocab_size"]


def test_stage_is_deterministic(project: Path) -> None:
    write_params(project, kind="subword", vocab_size=40)
    assert invoke().exit_code == 0
    first = (project / "data/vocab/src.json").read_bytes()
    assert invoke().exit_code == 0
    assert (project / "data/vocab/src.json").read_bytes() == first


def test_too_large_vocab_size_fails_cleanly(project: Path) -> None:
    write_params(project, kind="subword", vocab_size=4000)
    result = invoke()
    assert result.exit_code == 1
    assert "vocab.vocab_size=4000 is too large" in result.output
    assert not (project / "data/vocab").exists() and not (project / "metrics").exists()


def test_bad_params_name_the_key(project: Path) -> None:
    write_params(project, kind="bytes")
    result = invoke()
    assert result.exit_code == 1 and "vocab.kind" in result.output
    write_params(project, kind="word", max_size=2)
    result = invoke()
    assert result.exit_code == 1 and "vocab.max_size" in result.output


def test_missing_prepared_data_is_named(project: Path) -> None:
    write_params(project, kind="word")
    (project / "data/prepared/valid.parquet").unlink()
    result = invoke()
    assert result.exit_code == 1
    assert "valid.parquet: file not found" in result.output


def test_dvc_stage_matches_the_cli() -> None:
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["vocab"]
    assert stage["cmd"] == "python stages/vocab.py " + " ".join(ARGS)
    assert stage["params"] == ["seed", "vocab"]
    assert {"stages/vocab.py", "src/nmt/vocab.py", "data/prepared"} <= set(stage["deps"])
    assert stage["outs"] == ["data/vocab"]
    assert stage["metrics"] == [{"metrics/vocab.json": {"cache": False}}]


def test_a_typo_in_a_section_the_stage_does_not_read_does_not_stop_it(project: Path) -> None:
    params = {"seed": 3, "vocab": {"kind": "word"}, "evaluate": {"beam_sise": 3}}
    params["train"] = {"lr": -1.0}  # invalid, but the vocab stage does not read it
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    result = invoke()
    assert result.exit_code == 0, result.output
    assert "word vocabularies" in result.output


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"seed": 3, "vocab": {"kind": "word", "min_freqq": 2}}, "vocab.min_freqq: unknown key"),
        ({"seed": "three", "vocab": {"kind": "word"}}, "seed: Input should be a valid integer"),
    ],
)
def test_a_typo_in_a_section_the_stage_reads_stops_it_naming_the_key(
    project: Path, params: dict[str, Any], key: str
) -> None:
    params["evaluate"] = {"beam_sise": 3}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    result = invoke()
    assert result.exit_code == 1 and key in result.output, result.output
    assert "beam_sise" not in result.output
    assert not (project / "data/vocab").exists()
