"""train.deterministic: applied where the device is resolved, on CUDA only (checked on CPU
by telling resolve_device that CUDA is there)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from nmt.config import TrainParams, load_params
from nmt.device import CUBLAS_WORKSPACE_CONFIG, determinism, resolve_device, use_deterministic

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def restored(monkeypatch: pytest.MonkeyPatch):
    """torch's global determinism flags as they were, and no CUBLAS_WORKSPACE_CONFIG."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    yield
    torch.use_deterministic_algorithms(before[0])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[1:]


def test_deterministic_cuda_sets_every_switch(restored):
    torch.backends.cudnn.benchmark = True
    device = resolve_device("cuda", lambda: True, deterministic=True)
    assert device == torch.device("cuda")
    assert determinism() == {
        "deterministic_algorithms": True,
        "cudnn_deterministic": True,
        "cudnn_benchmark": False,
        "cublas_workspace_config": CUBLAS_WORKSPACE_CONFIG,
    }
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_auto_on_a_gpu_applies_it_too(restored):
    resolve_device("auto", lambda: True, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize(
    ("name", "deterministic"), [("cpu", True), ("auto", True), ("cuda", False)]
)
def test_nothing_changes_on_cpu_or_when_off(restored, name: str, deterministic: bool):
    before = determinism()
    resolve_device(name, lambda: name == "cuda", deterministic=deterministic)
    assert determinism() == before
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ


def test_a_workspace_the_user_set_is_kept(restored):
    environ = {"CUBLAS_WORKSPACE_CONFIG": ":16:8"}
    assert use_deterministic(environ)["cublas_workspace_config"] == ":16:8"


def test_the_param_defaults_to_off_and_params_yaml_says_so():
    assert TrainParams().deterministic is False
    assert TrainParams(deterministic=True).deterministic is True
    assert load_params(ROOT / "params.yaml", sections=["train"]).train.deterministic is False
