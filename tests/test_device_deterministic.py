"""train.deterministic: applied where the device is resolved, on CUDA only (checked on CPU
by telling resolve_device that CUDA is there)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_deterministic_training_on_cuda_repeats_to_the_same_weights(restored):
    from nmt.config.model import RNNParams
    from nmt.models import build_model
    from nmt.training.batching import make_batches, tokenize_pairs
    from nmt.training.loop import train_epoch
    from nmt.training.optim import build_optimizer
    from nmt.vocab import SPECIALS, WordTokenizer

    device = resolve_device("cuda", deterministic=True)
    digits = WordTokenizer([*SPECIALS, *"0123456789"])
    rng = np.random.default_rng(0)
    src = [" ".join(rng.choice(list("0123456789"), rng.integers(2, 12))) for _ in range(256)]
    pairs = tokenize_pairs(src, [" ".join(reversed(s.split())) for s in src], digits, digits)
    batches = make_batches(pairs.src_lengths, pairs.tgt_lengths, batch_size=32, seed=0)
    params = TrainParams(batch_size=32, batch_tokens=None, deterministic=True)

    def weights() -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        rnn = RNNParams(embedding_dim=32, hidden_dim=64, attention="bahdanau")
        model = build_model(rnn, len(digits), len(digits)).to(device)
        train_epoch(
            model, pairs, batches, build_optimizer(model, params), step_scheduler=None,
            params=params, ratio=1.0, device=device, dtype=torch.bfloat16,
        )  # fmt: skip
        return {k: v.detach().cpu() for k, v in model.state_dict().items()}

    first, second = weights(), weights()
    for name, value in first.items():
        assert torch.equal(value, second[name]), name
