"""The evaluate and compare stages end to end on tiny models and test sets in tmp_path."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from nmt.config.evaluate import EvaluateParams
from nmt.evaluation.scoring import score_corpus, write_translations
from nmt.threads import available_cpus
from test_translate import make_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SRC = ["Le chat est noir.", "Un grand chien.", "la maison est petite , le chat est grand ."] * 3
REF = ["The cat is black.", "A big dog.", "The house is small, the cat is big."] * 3


def load_stage(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / f"stages/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_pairs(path: Path, n: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    src = [s.lower().replace(".", " .").replace(",", " ,") for s in SRC[:n]]
    table = pa.table({"src": src, "tgt": [r.lower() for r in REF[:n]], "ref": REF[:n]})
    pq.write_table(table, path)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    params = {
        "data": {"test_sets": ["newstest2014"]},
        "evaluate": {
            "beam_size": 2,
            "batch_size": 2,
            "max_sentences": 6,
            "heatmaps": 2,
            "max_length_extra": 3,
            "device": "cpu",
            "compare": {
                "resamples": 20,
                "pairs": {"attention_vs_gru": {"baseline": "gru", "candidate": "attention"}},
            },
        },
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    write_pairs(tmp_path / "data/prepared/test.parquet", 9)
    write_pairs(tmp_path / "data/prepared/newstest2014.parquet", 4)
    # A near-variant of the first held-out pair (one word apart) and an unrelated pair
    train = {"src": ["le chien est noir .", "bonjour ."], "tgt": ["the dog is black .", "hello ."]}
    pq.write_table(pa.table(train), tmp_path / "data/prepared/train.parquet")
    make_checkpoint(tmp_path / "models/gru/model.pt", attention="none")
    make_checkpoint(tmp_path / "models/attention/model.pt", attention="bahdanau", seed=1)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def evaluate_args(model: str) -> list[str]:
    return [
        "--model", f"models/{model}",
        "--prepared", "data/prepared",
        "--translations", f"data/eval/{model}/translations",
        "--lengths", f"metrics/eval/{model}/bleu_by_length",
        "--attention", f"data/eval/{model}/attention",
        "--metrics", f"metrics/eval/{model}.json",
    ]  # fmt: skip


def test_evaluate_then_compare(project: Path):
    evaluate = load_stage("evaluate")
    for model in ("gru", "attention"):
        result = CliRunner().invoke(evaluate.main, evaluate_args(model))
        assert result.exit_code == 0, result.output
        metrics = json.loads((project / f"metrics/eval/{model}.json").read_text())
        assert set(metrics) == {
            "heldout", "heldout_novel", "heldout_long", "newstest2014", "settings", "signatures"
        }  # fmt: skip
        assert metrics["heldout"]["sentences"] == 6  # capped by max_sentences
        assert metrics["newstest2014"]["sentences"] == 4
        for search in ("greedy", "beam"):
            assert 0 <= metrics["heldout"][search]["bleu"] <= 100
            assert 0 <= metrics["heldout"][search]["chrf"] <= 100
        assert metrics["settings"]["beam_size"] == 2
        assert metrics["settings"]["threads"] == available_cpus()  # evaluate.threads: auto
        assert isinstance(metrics["settings"]["omp_wait"], str)
        assert metrics["signatures"]["bleu"].startswith("nrefs:1|")
        out = pd.read_parquet(project / f"data/eval/{model}/translations/heldout.beam.parquet")
        assert out.columns.tolist() == ["source", "reference", "hypothesis", "chrf"]
        assert out["reference"].tolist() == REF[:6]
        # the slices are scored from the held-out translations: rows 0 and 3 have a
        # near-variant in train, rows 2 and 5 have 10 source words
        for name, rows in (("heldout_novel", [1, 2, 4, 5]), ("heldout_long", [2, 5])):
            assert metrics[name]["sentences"] == len(rows)
            part = score_corpus(out["hypothesis"][rows].tolist(), out["reference"][rows].tolist())
            assert metrics[name]["beam"] == {"bleu": part.bleu, "chrf": part.chrf}
        lengths = pd.read_csv(
            project / f"metrics/eval/{model}/bleu_by_length/newstest2014.tsv", sep="\t"
        )
        assert lengths.columns.tolist() == ["src_len", "sentences", "greedy", "beam"]
        assert lengths["sentences"].sum() == 4
    maps = sorted(p.name for p in (project / "data/eval/attention/attention").iterdir())
    assert maps == ["heldout-0.png", "heldout-1.png"]
    # no attention: one PNG that says so (an empty folder would vanish from git)
    assert [p.name for p in (project / "data/eval/gru/attention").iterdir()] == ["no-attention.png"]

    compare = load_stage("compare")
    args = [
        "--pair", "attention_vs_gru",
        "--baseline", "data/eval/gru/translations",
        "--candidate", "data/eval/attention/translations",
        "--metrics", "metrics/eval/compare/attention_vs_gru.json",
    ]  # fmt: skip
    result = CliRunner().invoke(compare.main, args)
    assert result.exit_code == 0, result.output
    report = json.loads((project / "metrics/eval/compare/attention_vs_gru.json").read_text())
    assert report["models"] == {"baseline": "gru", "candidate": "attention"}
    assert "bs:20" in report["signature"]
    assert "one-sided" in report["significance_test"]
    for name in ("heldout", "newstest2014"):
        for metric in ("bleu", "chrf"):
            entry = report[name][metric]
            assert 0 <= entry["p_value"] <= 1
            # each of the three is rounded to 4 decimals on its own
            difference = entry["candidate"] - entry["baseline"]
            assert entry["difference"] == pytest.approx(difference, abs=2e-4)
        gru = json.loads((project / "metrics/eval/gru.json").read_text())
        assert report[name]["bleu"]["baseline"] == pytest.approx(gru[name]["beam"]["bleu"])


def test_clear_errors(project: Path):
    evaluate = load_stage("evaluate")
    (project / "data/prepared/newstest2014.parquet").unlink()
    result = CliRunner().invoke(evaluate.main, evaluate_args("attention"))
    assert result.exit_code == 1 and "newstest2014.parquet" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    write_pairs(project / "data/prepared/newstest2014.parquet", 2)
    result = CliRunner().invoke(evaluate.main, evaluate_args("missing"))
    assert result.exit_code == 1 and "no such checkpoint" in result.output
    compare = load_stage("compare")
    args = ["--baseline", "nowhere", "--candidate", "x", "--metrics", "c.json"]
    result = CliRunner().invoke(compare.main, ["--pair", "attention_vs_gru", *args])
    assert result.exit_code == 1 and "no *.beam.parquet" in result.output
    result = CliRunner().invoke(compare.main, ["--pair", "nope", *args])
    assert result.exit_code == 1 and "evaluate.compare.pairs.nope" in result.output


def test_compare_identical_translations_gives_p_one(tmp_path: Path, monkeypatch):
    params = {"evaluate": {"compare": {"resamples": 50}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    hyps = ["The cat is black.", "nothing", "The house is big.", "a dog"]  # BLEU about 30
    for model in ("gru", "attention"):
        for name, out in (("heldout", hyps), ("newstest2014", ["x y z"] * 4)):  # BLEU 0
            folder = tmp_path / f"data/eval/{model}/translations"
            folder.mkdir(parents=True, exist_ok=True)
            write_translations(folder / f"{name}.beam.parquet", SRC[:4], REF[:4], out, [0.0] * 4)
    monkeypatch.chdir(tmp_path)
    args = [
        "--pair", "attention_vs_gru",
        "--baseline", "data/eval/gru/translations",
        "--candidate", "data/eval/attention/translations",
        "--metrics", "c.json",
    ]  # fmt: skip
    result = CliRunner().invoke(load_stage("compare").main, args)
    assert result.exit_code == 0, result.output
    assert "one-sided p = 1.0000" in result.output
    report = json.loads((tmp_path / "c.json").read_text())
    assert report["heldout"]["bleu"]["baseline"] > 0 == report["newstest2014"]["bleu"]["baseline"]
    for name in ("heldout", "newstest2014"):
        for metric in ("bleu", "chrf"):
            assert report[name][metric]["p_value"] == 1.0
            assert report[name][metric]["difference_ci95"] == [0.0, 0.0]


def test_dvc_yaml_lists_what_the_stages_read():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    evaluate = stages["evaluate"]["do"]
    read = {f"evaluate.{k}" for k in EvaluateParams.model_fields if k != "compare"}
    assert set(evaluate["params"]) == read | {"data.test_sets"}
    assert "models/${key}/model.pt" in evaluate["deps"]
    for flag in ("--translations", "--lengths", "--attention", "--metrics"):
        assert flag in evaluate["cmd"]
    compare = stages["compare"]
    assert compare["foreach"] == "${evaluate.compare.pairs}"
    assert set(compare["do"]["params"]) == {
        "evaluate.compare.search",
        "evaluate.compare.resamples",
        "evaluate.compare.pairs.${key}",
    }
    for model in ("baseline", "candidate"):
        assert f"data/eval/${{item.{model}}}/translations" in compare["do"]["deps"]


def edit_params(root: Path, section: str, **values) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params.setdefault(section, {}).update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def test_evaluate_validates_only_the_sections_it_reads(project: Path):
    evaluate = load_stage("evaluate")
    edit_params(project, "train", epoch=3)
    edit_params(project, "vocab", kind="bytes")
    # A missing checkpoint fails right after the params are read: they loaded.
    result = CliRunner().invoke(evaluate.main, evaluate_args("missing"))
    assert result.exit_code == 1 and "no such checkpoint" in result.output, result.output
    for section, values, key in [
        ("evaluate", {"beam_sise": 3}, "evaluate.beam_sise: unknown key"),
        ("data", {"test_set": []}, "data.test_set: unknown key"),
    ]:
        edit_params(project, section, **values)
        result = CliRunner().invoke(evaluate.main, evaluate_args("attention"))
        assert result.exit_code == 1 and key in result.output, result.output
        assert "train.epoch" not in result.output and "vocab.kind" not in result.output
    assert not (project / "data/eval").exists()


def test_compare_validates_only_the_sections_it_reads(tmp_path: Path, monkeypatch):
    params = {"evaluate": {"compare": {"resamples": 10}}, "train": {"epoch": 3}, "data": {"x": 1}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    for model in ("gru", "attention"):
        path = tmp_path / f"{model}/heldout.beam.parquet"
        write_translations(path, SRC[:3], REF[:3], REF[:3], [0.0] * 3)
    monkeypatch.chdir(tmp_path)
    compare = load_stage("compare")
    args = ["--pair", "attention_vs_gru", "--baseline", "gru", "--candidate", "attention"]
    result = CliRunner().invoke(compare.main, [*args, "--metrics", "c.json"])
    assert result.exit_code == 0, result.output
    edit_params(tmp_path, "evaluate", compare={"resample": 10})
    result = CliRunner().invoke(compare.main, [*args, "--metrics", "d.json"])
    assert result.exit_code == 1 and "evaluate.compare.resample: unknown key" in result.output
    assert "train.epoch" not in result.output and not (tmp_path / "d.json").exists()
