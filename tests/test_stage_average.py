"""The average stage on tiny checkpoints in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from nmt.training.checkpoint import (
    average_checkpoints,
    epoch_path,
    read_checkpoint,
    save_checkpoint,
)
from test_stage_evaluate import load_stage
from test_translate import make_checkpoint

average_stage = load_stage("average")
ARGS = ["--checkpoints", "checkpoints/m", "--out", "models/m/model.pt"]


@pytest.fixture
def run_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """checkpoints/m as a 3-epoch run leaves it: epochs 2 and 3 kept, epoch 2 the best."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "checkpoints/m"
    for epoch in (2, 3):
        make_checkpoint(epoch_path(folder, epoch), seed=epoch)
    best = read_checkpoint(epoch_path(folder, 2))
    best.pop("format")
    save_checkpoint(folder / "best.pt", {**best, "metrics": {"epoch": 2}})
    return tmp_path


def invoke(root: Path, last: int):
    (root / "params.yaml").write_text(yaml.safe_dump({"average": {"last": last}}))
    return CliRunner().invoke(average_stage.main, ARGS)


def test_last_one_delivers_the_best_epoch(run_folder):
    result = invoke(run_folder, 1)
    assert result.exit_code == 0, result.output
    assert "the best epoch (2) of checkpoints/m" in result.output
    model = read_checkpoint(run_folder / "models/m")
    best = read_checkpoint(run_folder / "checkpoints/m/best.pt")
    assert model["delivered"] == {"epochs": [2], "average_last": 1}
    assert all(torch.equal(v, best["model_state"][k]) for k, v in model["model_state"].items())


def test_last_two_delivers_the_average_of_the_last_two_epochs(run_folder):
    result = invoke(run_folder, 2)
    assert result.exit_code == 0, result.output
    assert "average of epochs [2, 3]" in result.output
    model = read_checkpoint(run_folder / "models/m/model.pt")
    folder = run_folder / "checkpoints/m"
    expected = average_checkpoints([epoch_path(folder, 2), epoch_path(folder, 3)])["model_state"]
    assert all(torch.equal(v, expected[k]) for k, v in model["model_state"].items())


def test_more_epochs_than_kept_is_a_clear_error_and_writes_nothing(run_folder):
    result = invoke(run_folder, 3)
    assert result.exit_code != 0
    assert "average.last is 3 but checkpoints/m keeps the weights of 2 epoch(s) (2, 3)" in (
        result.output
    )
    assert "train.keep_epochs" in result.output
    assert not (run_folder / "models").exists()


def test_dvc_yaml_average_stage_reads_only_the_average_params():
    stages = yaml.safe_load((Path(__file__).resolve().parents[1] / "dvc.yaml").read_text())
    average = stages["stages"]["average"]["do"]
    assert average["params"] == ["average"] and average["outs"] == ["models/${key}/model.pt"]
    assert "checkpoints/${key}" in average["deps"]
