"""nmt.evaluation.compare and the compare stage on tiny translation files in tmp_path."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sacrebleu
import yaml
from click.testing import CliRunner

from nmt.config.evaluate import CompareParams, ComparisonPair
from nmt.evaluation.bootstrap import BOOTSTRAP_TEST
from nmt.evaluation.compare import META_KEYS, compare_translations
from nmt.evaluation.scoring import EvaluationError, write_translations

ROOT = Path(__file__).resolve().parents[1]
SRC = ["Le chat est noir.", "Un grand chien.", "La maison est petite.", "Où est la gare ?"]
REF = ["The cat is black.", "A big dog.", "The house is small.", "Where is the station?"]
HYPS = {
    "gru": {
        "heldout": ["The cat is white.", "A dog.", "The house is small.", "Where station?"],
        "newstest2014": ["cat black", "A big dog.", "house small", "Where is it?"],
    },
    "attention": {
        "heldout": ["The cat is black.", "A big dog.", "The house is big.", REF[3]],
        "newstest2014": [REF[0], "A dog.", "The house is small.", "Where is the gare?"],
    },
}
PAIR = ComparisonPair(baseline="gru", candidate="attention")
# What the compare stage wrote for these files with 25 resamples, before its logic moved
# into nmt.evaluation.compare (the signature's sacrebleu version aside).
EXPECTED = {
    "heldout": {
        "bleu": {
            "baseline": 52.1224,
            "candidate": 83.2287,
            "difference": 31.1063,
            "difference_ci95": [-24.3576, 100.0],
            "p_value": 0.28,
        },
        "chrf": {
            "baseline": 65.7962,
            "candidate": 87.7329,
            "difference": 21.9368,
            "difference_ci95": [-14.6106, 58.5031],
            "p_value": 0.12,
        },
    },
    "newstest2014": {
        "bleu": {
            "baseline": 32.467,
            "candidate": 72.5662,
            "difference": 40.0992,
            "difference_ci95": [-54.6152, 100.0],
            "p_value": 0.16,
        },
        "chrf": {
            "baseline": 42.4034,
            "candidate": 76.7062,
            "difference": 34.3029,
            "difference_ci95": [-29.5806, 67.5902],
            "p_value": 0.16,
        },
    },
    "models": {"baseline": "gru", "candidate": "attention"},
    "search": "beam",
    "signature": (
        "nrefs:1|bs:25|seed:12345|case:mixed|eff:no|tok:13a|smooth:exp"
        f"|version:{sacrebleu.__version__}"
    ),
    "significance_test": BOOTSTRAP_TEST,
}
OUTPUT = [
    "heldout: BLEU gru 52.12 vs attention 83.23, one-sided p = 0.2800",
    "newstest2014: BLEU gru 32.47 vs attention 72.57, one-sided p = 0.1600",
]


def load_stage() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stage_compare", ROOT / "stages/compare.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    """``<tmp>/<model>/<test set>.<greedy|beam>.parquet``; greedy holds reversed output."""
    for model, sets in HYPS.items():
        for name, hyps in sets.items():
            folder = tmp_path / model
            write_translations(folder / f"{name}.beam.parquet", SRC, REF, hyps, [0.0] * 4)
            write_translations(folder / f"{name}.greedy.parquet", SRC, REF, hyps[::-1], [0.0] * 4)
    return tmp_path


def compare(root: Path, **params: object) -> dict:
    config = CompareParams(resamples=25, **params)
    return compare_translations(root / "gru", root / "attention", config, PAIR)


def test_results_are_what_the_stage_wrote_before(folders: Path) -> None:
    results = compare(folders)
    assert json.loads(json.dumps(results)) == EXPECTED
    assert list(results)[-len(META_KEYS) :] == list(META_KEYS)  # test sets first, sorted


def test_search_picks_the_files(folders: Path) -> None:
    greedy = compare(folders, search="greedy")
    assert greedy["search"] == "greedy"
    assert greedy["heldout"] != EXPECTED["heldout"]  # the reversed hypotheses
    (folders / "gru/newstest2014.greedy.parquet").unlink()
    assert set(compare(folders, search="greedy")) == {"heldout", *META_KEYS}


def test_the_stage_writes_the_results_and_prints_one_line_per_test_set(
    folders: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = {"evaluate": {"compare": {"resamples": 25}}}
    (folders / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(folders)
    args = ["--pair", "attention_vs_gru", "--baseline", "gru", "--candidate", "attention"]
    result = CliRunner().invoke(load_stage().main, [*args, "--metrics", "out/c.json"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == OUTPUT
    assert json.loads((folders / "out/c.json").read_text()) == EXPECTED


def test_a_missing_candidate_file_is_named(folders: Path) -> None:
    (folders / "attention/newstest2014.beam.parquet").unlink()
    with pytest.raises(EvaluationError) as err:
        compare(folders)
    message = str(err.value)
    assert str(folders / "attention/newstest2014.beam.parquet") in message
    assert "no such translations file" in message and str(folders / "gru") in message


def test_a_baseline_without_translations_is_named(folders: Path) -> None:
    with pytest.raises(EvaluationError, match=r"no \*\.beam\.parquet translations") as err:
        compare_translations(folders / "nowhere", folders / "attention", CompareParams(), PAIR)
    assert str(folders / "nowhere") in str(err.value) and "no such folder" in str(err.value)
    (folders / "empty").mkdir()
    with pytest.raises(EvaluationError, match=r"empty: no \*\.beam\.parquet") as err:
        compare_translations(folders / "empty", folders / "attention", CompareParams(), PAIR)
    assert "no such folder" not in str(err.value)


def test_different_references_are_refused(folders: Path) -> None:
    path = folders / "attention/heldout.beam.parquet"
    refs = [*REF[:3], "Where is the train station?"]
    write_translations(path, SRC, refs, HYPS["attention"]["heldout"], [0.0] * 4)
    with pytest.raises(EvaluationError, match="hold different references") as err:
        compare(folders)
    assert str(err.value).startswith("heldout: ")
    assert str(folders / "gru/heldout.beam.parquet") in str(err.value)
    assert str(path) in str(err.value)


def test_a_malformed_file_is_named(folders: Path) -> None:
    path = folders / "attention/heldout.beam.parquet"
    pq.write_table(pa.table({"source": SRC}), path)
    with pytest.raises(EvaluationError, match="missing column") as err:
        compare(folders)
    assert str(path) in str(err.value)


def test_no_torch() -> None:
    code = "import sys, nmt.evaluation.compare; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
