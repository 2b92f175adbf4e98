"""The prepare stage end to end on tiny raw corpora made in tmp_path."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from nmt.data.schema import read_pairs

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--raw", "data/raw", "--out", "data/prepared", "--metrics", "metrics/data.json"]
SPLITS = ("train", "valid", "test")


def load_stage() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stage_prepare", ROOT / "stages/prepare.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_params(root: Path, **prepare: Any) -> None:
    # Only the sections dvc.yaml lists for the stage: it must need nothing else.
    params = {
        "seed": 7,
        "data": {"src_lang": "fr", "tgt_lang": "en", "corpora": ["tatoeba", "europarl"]},
        "prepare": prepare,
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    raw = tmp_path / "data/raw"
    tatoeba = raw / "tatoeba/fra-eng/fra.txt"
    tatoeba.parent.mkdir(parents=True)
    lines = [f"Sentence number {i}.\tPhrase numéro {i}." for i in range(60)]
    tatoeba.write_bytes("\n".join([*lines, "broken line", "Nul\x00\tNul"]).encode() + b"\n")
    (raw / "europarl").mkdir()
    (raw / "europarl/europarl-v7.fr-en.fr").write_text("Reprise de la session\n\nMerci.\n")
    (raw / "europarl/europarl-v7.fr-en.en").write_text("Resumption of the session\n\nThanks.\n")
    test = raw / "newstest2014/test-full"
    test.mkdir(parents=True)
    for name, seg in [("src.fr", "Phrase numéro 3."), ("ref.en", "Sentence number 3.")]:
        text = f'<refset>\n<doc docid="d">\n<seg id="1">{seg}</seg>\n</doc>\n</refset>\n'
        (test / f"newstest2014-fren-{name}.sgm").write_text(text)
    write_params(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(args: list[str] = ARGS) -> Result:
    return CliRunner().invoke(load_stage().main, [*args, "--workers", "1"], catch_exceptions=False)


def test_stage_writes_tables_and_metrics(project: Path) -> None:
    result = invoke()
    assert result.exit_code == 0, result.output
    assert "tatoeba: read 62, kept 60" in result.output
    out = project / "data/prepared"
    files = sorted(p.name for p in out.iterdir())
    assert files == ["newstest2014.parquet", "test.parquet", "train.parquet", "valid.parquet"]

    metrics = json.loads((project / "metrics/data.json").read_text())
    assert set(metrics) == {"corpora", "test_sets", "splits", "leaked"}
    tatoeba = metrics["corpora"]["tatoeba"]
    assert (tatoeba["read"], tatoeba["kept"], tatoeba["dropped"]) == (62, 60, 2)
    assert tatoeba["dropped_bad_columns"] == tatoeba["dropped_invalid_chars"] == 1
    assert metrics["corpora"]["europarl"]["dropped_empty"] == 1
    assert metrics["test_sets"]["newstest2014"]["kept"] == 1
    for split in (*SPLITS, "newstest2014"):
        assert read_pairs(out / f"{split}.parquet").num_rows == metrics["splits"][split]
    # "Phrase numéro 3." is a test sentence: it may not stay in train or valid
    assert metrics["leaked"]["train"] + metrics["leaked"]["valid"] == 1
    # the metrics hold counts only (two levels deep), so they are reproducible
    for section in metrics.values():
        for value in section.values():
            assert isinstance(value, int) or all(isinstance(v, int) for v in value.values())


def test_stage_is_deterministic(project: Path) -> None:
    assert invoke().exit_code == 0
    first = {s: read_pairs(project / f"data/prepared/{s}.parquet") for s in SPLITS}
    metrics = (project / "metrics/data.json").read_text()
    assert invoke().exit_code == 0
    for split, table in first.items():
        assert read_pairs(project / f"data/prepared/{split}.parquet").equals(table)
    assert (project / "metrics/data.json").read_text() == metrics


def test_bad_params_name_the_key(project: Path) -> None:
    write_params(project, filters={"max_tokens": 0})
    result = invoke()
    assert result.exit_code == 1 and "prepare.filters.max_tokens" in result.output
    write_params(project, normalize={"punctuation": "drop"})
    result = invoke()
    assert result.exit_code == 1 and "prepare.normalize.punctuation" in result.output
    assert not (project / "data/prepared").exists() and not (project / "metrics").exists()


def test_missing_raw_data_is_named(project: Path) -> None:
    (project / "data/raw/europarl/europarl-v7.fr-en.en").unlink()
    result = invoke()
    assert result.exit_code == 1
    assert "europarl-v7.fr-en.en not found" in result.output
    assert not (project / "data/prepared").exists()


def test_dvc_stage_matches_the_cli() -> None:
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["prepare"]
    assert stage["cmd"] == "python stages/prepare.py " + " ".join(ARGS)
    assert stage["params"] == ["seed", "data", "prepare"]
    assert {"stages/prepare.py", "src/nmt/data", "src/nmt/config", "data/raw"} <= set(stage["deps"])
    assert stage["outs"] == ["data/prepared"]
    assert stage["metrics"] == [{"metrics/data.json": {"cache": False}}]


def test_stage_with_split_kind_train_says_so_in_the_metrics(project: Path) -> None:
    write_params(project, split={"kind": "train"}, drop_duplicates=False, head={"tatoeba": 10})
    result = invoke()
    assert result.exit_code == 0, result.output
    assert "tatoeba: read 10, kept 10" in result.output
    metrics = json.loads((project / "metrics/data.json").read_text())
    assert metrics["split"] == {"kind": "train"}
    assert metrics["splits"]["train"] == metrics["splits"]["valid"] == metrics["splits"]["test"]
    out = project / "data/prepared"
    train = read_pairs(out / "train.parquet")
    assert read_pairs(out / "valid.parquet").equals(train)
    assert read_pairs(out / "test.parquet").equals(train)
