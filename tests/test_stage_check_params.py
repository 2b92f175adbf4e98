import sys
from pathlib import Path

import yaml
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "stages"))
import check_params as check_stage  # noqa: E402


def check(path: Path):
    return CliRunner().invoke(check_stage.main, ["--params", str(path)])


def test_the_shipped_params_pass():
    result = check(ROOT / "params.yaml")
    assert result.exit_code == 0, result.output
    assert "valid (models: gru, attention)" in result.output


def test_a_misspelt_top_level_section_fails_naming_it(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text() + "trian: {epochs: 3}\n")
    result = check(path)
    assert result.exit_code != 0 and "trian: unknown key" in result.output


def test_an_error_in_a_section_no_stage_would_rerun_for_is_named(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["evaluate"]["beam_size"] = 0
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    result = check(path)
    assert result.exit_code != 0 and "evaluate.beam_size:" in result.output


def test_dvc_yaml_makes_the_stage_depend_on_every_param():
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["check_params"]
    assert stage["params"] == [{"params.yaml": None}]  # the whole file
    assert "stages/check_params.py" in stage["deps"] and "src/nmt/config" in stage["deps"]
    assert not stage.get("outs")  # nothing downstream re-runs because it did
