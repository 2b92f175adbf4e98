import pytest
import torch

from nmt.training.checkpoint import (
    CheckpointError,
    average_checkpoints,
    delivered_model,
    epoch_checkpoints,
    epoch_path,
    read_checkpoint,
    save_checkpoint,
)
from test_translate import make_checkpoint


def test_averaging_takes_the_mean_of_every_weight_and_the_rest_of_the_last(tmp_path):
    paths = [make_checkpoint(epoch_path(tmp_path, e), seed=e) for e in (1, 2, 3)]
    states = [read_checkpoint(p)["model_state"] for p in paths]
    averaged = average_checkpoints(paths)
    assert averaged.keys() >= {"model_params", "src_tokenizer", "tgt_tokenizer", "model_state"}
    for name, value in averaged["model_state"].items():
        expected = sum(s[name].double() for s in states) / 3
        assert value.dtype == states[-1][name].dtype
        torch.testing.assert_close(value, expected.to(value.dtype), rtol=0, atol=1e-7)
    assert not torch.equal(
        averaged["model_state"]["generator.weight"], states[-1]["generator.weight"]
    )
    # averaging one checkpoint gives it back
    one = average_checkpoints(paths[-1:])["model_state"]
    assert all(torch.equal(v, states[-1][k]) for k, v in one.items())


def test_checkpoints_of_other_models_are_not_averaged(tmp_path):
    a = make_checkpoint(tmp_path / "a.pt")
    b = make_checkpoint(tmp_path / "b.pt", attention="none")
    with pytest.raises(CheckpointError, match="a.pt: another model than .*b.pt"):
        average_checkpoints([a, b])
    with pytest.raises(CheckpointError, match="no checkpoints"):
        average_checkpoints([])


def test_epoch_checkpoints_lists_kept_epochs_in_order(tmp_path):
    for e in (10, 2, 9):
        make_checkpoint(epoch_path(tmp_path, e))
    (tmp_path / "epoch-x.pt").write_text("not an epoch")
    assert list(epoch_checkpoints(tmp_path)) == [2, 9, 10]
    assert epoch_checkpoints(tmp_path / "missing") == {}


def test_the_delivered_model_is_the_best_epoch_or_the_last_ones_averaged(tmp_path):
    for e in (1, 2, 3):
        make_checkpoint(epoch_path(tmp_path, e), seed=e)
    best = read_checkpoint(make_checkpoint(tmp_path / "best.pt", seed=2))
    best["metrics"] = {"epoch": 2}
    best["training"] = {"run_id": "x"}
    save_checkpoint(tmp_path / "best.pt", {k: v for k, v in best.items() if k != "format"})

    one = delivered_model(tmp_path, 1)
    assert one["delivered"] == {"epochs": [2], "average_last": 1} and "training" not in one
    assert all(torch.equal(v, best["model_state"][k]) for k, v in one["model_state"].items())
    two = delivered_model(tmp_path, 2)
    assert two["delivered"] == {"epochs": [2, 3], "average_last": 2}
    expected = average_checkpoints([epoch_path(tmp_path, 2), epoch_path(tmp_path, 3)])
    assert all(torch.equal(v, expected["model_state"][k]) for k, v in two["model_state"].items())
    with pytest.raises(
        CheckpointError, match=r"average.last is 4 but .* keeps .* 3 epoch\(s\) \(1, 2, 3\)"
    ):
        delivered_model(tmp_path, 4)


def test_a_folder_means_its_delivered_model_else_its_best_epoch(tmp_path):
    make_checkpoint(tmp_path / "best.pt", attention="none")
    assert read_checkpoint(tmp_path)["model_params"]["attention"] == "none"
    make_checkpoint(tmp_path / "model.pt", attention="bahdanau")
    assert read_checkpoint(tmp_path)["model_params"]["attention"] == "bahdanau"
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="empty/model.pt: no such checkpoint"):
        read_checkpoint(tmp_path / "empty")
