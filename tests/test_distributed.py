"""Data-parallel training: two gloo processes on this machine against one."""

import os
import socket
import sys
from datetime import timedelta

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from nmt.config import TrainParams
from nmt.training.distributed import (
    World,
    check_world,
    join,
    leave,
    process_threads,
    torchrun_command,
)
from test_loop import (
    CPU,
    DIGITS,
    RESUMABLE,
    data,
    kill_before_update,
    payload,
    timeless,
    tiny_model,
    train_params,
)

pytestmark = pytest.mark.usefixtures("one_thread")

EXACT = {"epochs": 2, "lr_schedule": {"kind": "warmup", "warmup_steps": 5}}  # no RNG draws


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fit_in(out_dir, params: TrainParams, world: World, model_kw: dict):
    from nmt.training.loop import fit

    model = tiny_model(0, **model_kw)
    train, valid = data()
    result = fit(
        model, train, valid, DIGITS.decode, params, seed=0, device=CPU, dtype=None,
        out_dir=out_dir, payload=lambda: payload(model), run_id="test", world=world,
    )  # fmt: skip
    return model, result


def worker(rank, size, port, out_dir, params, model_kw, kill_at, result_path):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    world = World(rank=rank, size=size, local_rank=rank)
    join(world, CPU, timeout=timedelta(seconds=60))
    try:
        if kill_at is not None and rank == 1:
            kill_before_update(pytest.MonkeyPatch(), kill_at)
        model, result = fit_in(out_dir, params, world, model_kw)
        if world.main:
            torch.save({"state": model.state_dict(), "history": result.state.history}, result_path)
    finally:
        leave(world)


def two_processes(tmp_path, out_dir, params, model_kw=None, kill_at=None):
    """Weights and history of ``fit`` in 2 processes (rank 0's), or raise as they did."""
    result_path = tmp_path / f"result-{free_port()}.pt"
    args = (2, free_port(), out_dir, params, model_kw or {}, kill_at, result_path)
    mp.spawn(worker, args=args, nprocs=2, join=True)
    saved = torch.load(result_path, weights_only=True)
    return saved["state"], saved["history"]


def test_two_processes_train_as_one_on_the_same_global_batches(tmp_path):
    params = train_params(**EXACT)
    torch.manual_seed(0)
    one, one_result = fit_in(tmp_path / "one", params, World(), {"dropout": 0.0})
    state, history = two_processes(tmp_path, tmp_path / "two", params, {"dropout": 0.0})
    assert len(history) == len(one_result.state.history) == 2
    for a, b in zip(history, one_result.state.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)
        assert a["valid_loss"] == pytest.approx(b["valid_loss"], abs=1e-5)
    for name, p in one.state_dict().items():
        torch.testing.assert_close(state[name], p, rtol=1e-4, atol=1e-5)
    # rank 0 alone wrote the checkpoints, each process's RNG state in last.pt
    last = torch.load(tmp_path / "two" / "last.pt", weights_only=True)
    assert len(last["training"]["rng_ranks"]) == 2
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "best.pt", "epoch-1.pt", "epoch-2.pt", "last.pt",
    ]  # fmt: skip


def test_two_processes_killed_mid_epoch_resume_as_if_never_stopped(tmp_path):
    # dropout and scheduled sampling: each process draws from its own RNG, saved by rank 0
    params = train_params(**RESUMABLE, checkpoint_every=4)
    whole_state, whole_history = two_processes(tmp_path, tmp_path / "whole", params)
    cut = tmp_path / "cut"
    # after step 14 rank 1 fails; rank 0, waiting for it, fails or is stopped in turn
    with pytest.raises((mp.ProcessRaisedException, mp.ProcessExitedException)):
        two_processes(tmp_path, cut, params, kill_at=14)
    training = torch.load(cut / "last.pt", weights_only=True)["training"]
    assert training["fit"]["steps"] == 12 and training["position"] is not None
    state, history = two_processes(tmp_path, cut, params)
    for name, p in whole_state.items():
        assert torch.equal(state[name], p), name
    assert timeless(history) == timeless(whole_history)


def test_a_batch_of_one_sentence_leaves_the_other_process_a_weightless_share():
    world = World(rank=1, size=2)
    assert world.shard(np.arange(5)).tolist() == [3, 4]
    assert world.shard(np.arange(1)).tolist() == []
    assert World().shard(np.arange(3)).tolist() == [0, 1, 2]


def test_the_launcher_and_the_world_size_check():
    cmd = torchrun_command(4, ["stages/train.py", "--model", "gru"])
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert cmd[3:] == ["--standalone", "--nproc_per_node=4", "stages/train.py", "--model", "gru"]
    check_world(World(rank=0, size=8), 8)
    with pytest.raises(ValueError, match="train.processes is 2 but torchrun started 8"):
        check_world(World(rank=0, size=8), 2)


def test_auto_threads_split_the_cpus_between_the_processes_of_a_machine(monkeypatch):
    from nmt.threads import available_cpus

    assert process_threads("auto") == "auto"  # one process: the usual auto
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert process_threads("auto") == max(1, available_cpus() // 2)
    assert process_threads(3) == 3
