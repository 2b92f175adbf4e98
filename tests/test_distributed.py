"""Data-parallel training: two gloo processes on this machine against one."""

import os
import shutil
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
    Interrupt,
    data,
    kill_before_update,
    payload,
    timeless,
    tiny_model,
    train_params,
)

pytestmark = pytest.mark.usefixtures("one_thread")

EXACT = {"epochs": 2, "lr_schedule": {"kind": "warmup", "warmup_steps": 5}}  # no RNG draws
# Batches of one sentence (of 40): one of the two processes has nothing of its own.
ONES = train_params(epochs=1, batch_tokens=None, batch_size=1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fit_in(out_dir, params: TrainParams, world: World, model_kw: dict):
    from nmt.training.loop import fit

    model = tiny_model(0, **model_kw)
    train, valid = data(40) if params.batch_size == 1 else data()
    result = fit(
        model, train, valid, DIGITS.decode, params, seed=0, device=CPU, dtype=None,
        out_dir=out_dir, payload=lambda: payload(model), run_id="test", world=world,
    )  # fmt: skip
    return model, result


def worker(rank, size, port, jobs):
    """Run ``jobs`` one after another in this process of ``size``; rank 0 saves results."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    world = World(rank=rank, size=size, local_rank=rank)
    join(world, CPU, timeout=timedelta(seconds=60))
    try:
        for out_dir, params, model_kw, kill_at, result_path in jobs:
            with pytest.MonkeyPatch.context() as m:
                if kill_at is not None:  # every process stops there, as torchrun stops all
                    kill_before_update(m, kill_at)
                try:
                    model, result = fit_in(out_dir, params, world, model_kw)
                except Interrupt:  # keep the last.pt it left
                    if world.main:
                        shutil.copy(out_dir / "last.pt", result_path)
                    continue
            if world.main:
                saved = {"state": model.state_dict(), "history": result.state.history}
                torch.save(saved, result_path)
    finally:
        leave(world)


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """Runs of 2 processes, in one pair of processes (started once: it takes seconds).
    A run stopped there stops in every process at once, as torchrun stops them all when
    one fails (``test_stage_train`` has one process fail alone)."""
    root = tmp_path_factory.mktemp("two")
    exact = train_params(**EXACT)
    resumable = train_params(**RESUMABLE, checkpoint_every=4)
    by_clock = train_params(**RESUMABLE, checkpoint_minutes=1e-9)
    jobs = [
        (root / "exact", exact, {"dropout": 0.0}, None, root / "exact.pt"),
        (root / "ones", ONES, {"dropout": 0.0}, None, root / "ones.pt"),
        (root / "whole", resumable, {}, None, root / "whole.pt"),
        (root / "cut", resumable, {}, 14, root / "cut-last.pt"),  # stopped after step 14
        (root / "cut", resumable, {}, None, root / "resumed.pt"),  # and resumed
        # by rank 0's clock (every step), which both processes follow
        (root / "clock", by_clock, {}, 9, root / "clock-last.pt"),
        (root / "clock", by_clock, {}, None, root / "clock.pt"),
    ]
    mp.spawn(worker, args=(2, free_port(), jobs), nprocs=2, join=True)
    cut = torch.load(root / "cut-last.pt", weights_only=True)["training"]
    clock = torch.load(root / "clock-last.pt", weights_only=True)["training"]
    assert clock["fit"]["steps"] == 9
    names = ("exact", "ones", "whole", "resumed", "clock")
    runs = {name: torch.load(root / f"{name}.pt") for name in names}
    return root, runs, cut


def test_two_processes_train_as_one_on_the_same_global_batches(tmp_path, two):
    root, runs, _ = two
    params = train_params(**EXACT)
    torch.manual_seed(0)
    one, one_result = fit_in(tmp_path / "one", params, World(), {"dropout": 0.0})
    history = runs["exact"]["history"]
    assert len(history) == len(one_result.state.history) == 2
    for a, b in zip(history, one_result.state.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)
        assert a["valid_loss"] == pytest.approx(b["valid_loss"], abs=1e-5)
    for name, p in one.state_dict().items():
        torch.testing.assert_close(runs["exact"]["state"][name], p, rtol=1e-4, atol=1e-5)
    # rank 0 alone wrote the checkpoints, each process's RNG state in last.pt
    last = torch.load(root / "exact" / "last.pt", weights_only=True)
    assert len(last["training"]["rng_ranks"]) == 2
    assert sorted(p.name for p in (root / "exact").iterdir()) == [
        "best.pt", "epoch-1.pt", "epoch-2.pt", "last.pt",
    ]  # fmt: skip


def test_two_processes_stopped_mid_epoch_resume_as_if_never_stopped(two):
    # dropout and scheduled sampling: each process draws from its own RNG, saved by rank 0
    _, runs, cut = two
    assert cut["fit"]["steps"] == 12 and cut["position"] is not None  # checkpoint_every 4
    for resumed in ("resumed", "clock"):  # checkpoint_every, checkpoint_minutes
        for name, p in runs["whole"]["state"].items():
            assert torch.equal(runs[resumed]["state"][name], p), (resumed, name)
        assert timeless(runs[resumed]["history"]) == timeless(runs["whole"]["history"])


def test_a_batch_of_one_sentence_leaves_the_other_process_a_weightless_share(tmp_path, two):
    _, runs, _ = two
    one, result = fit_in(tmp_path, ONES, World(), {"dropout": 0.0})
    for a, b in zip(runs["ones"]["history"], result.state.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)
    for name, p in one.state_dict().items():
        torch.testing.assert_close(runs["ones"]["state"][name], p, rtol=1e-4, atol=1e-5)
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
