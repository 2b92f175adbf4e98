"""Data-parallel training over the processes that ``torchrun`` starts.

Every process holds the whole model and reads the same global batches, in the same order
as a single process would (they are drawn from ``seed + epoch``); each computes the loss
of its share of every batch (:meth:`World.shard`), normalised by the token count of the
whole batch, and the gradients are summed over processes before the update. So the
updates are a single process's, up to the order of the sums, whatever the number of
processes. Rank 0 alone validates, logs and writes checkpoints; the others wait for its
scores. NCCL joins GPUs (one process each), gloo CPU processes.

A process that fails ends the run: ``torchrun`` stops the others and exits non-zero; one
that hangs is given up on after :data:`TIMEOUT` in any collective.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from nmt.threads import Threads, available_cpus

# How long a process waits in a collective: rank 0's validation and checkpoint writes
# included, which take minutes for the default models on a CPU.
TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class World:
    """This process's place among ``size`` training processes (one: no distribution)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0  # among the processes of this machine: its GPU

    @property
    def main(self) -> bool:
        """Whether this process validates, logs and writes checkpoints."""
        return self.rank == 0

    def shard(self, indices: np.ndarray) -> np.ndarray:
        """This process's part of a batch's ``indices`` (contiguous, sizes within one)."""
        if self.size == 1:
            return indices
        return np.array_split(indices, self.size)[self.rank]

    def reduce_gradients(self, model: torch.nn.Module, loss_sum: Tensor) -> Tensor:
        """Sum the gradients of ``model``'s parameters and ``loss_sum`` (a scalar) over the
        processes, in one all-reduce; return the summed loss.

        A parameter no process gave a gradient keeps ``grad = None``, as in one process
        (the optimizer then leaves it alone); one that only some did gets the sum.
        """
        if self.size == 1:
            return loss_sum
        params = [p for p in model.parameters() if p.requires_grad]
        ref = params[0]
        parts = [
            (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params
        ]
        has_grad = torch.tensor(
            [p.grad is not None for p in params], dtype=ref.dtype, device=ref.device
        )
        loss = loss_sum.detach().to(ref.dtype).reshape(1)
        flat = torch.cat([*parts, has_grad, loss])
        dist.all_reduce(flat)
        offset = 0
        for p, seen in zip(params, flat[-1 - len(params) : -1].tolist(), strict=True):
            n = p.numel()
            p.grad = flat[offset : offset + n].view_as(p) if seen else None
            offset += n
        return flat[-1]

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj``, in every process (a picklable object)."""
        if self.size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        """Wait until every process is here (one process: at once)."""
        if self.size > 1:
            dist.barrier()

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj``, by rank, in every process."""
        if self.size == 1:
            return [obj]
        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, obj)
        return out


def launched_world() -> World:
    """The :class:`World` that torchrun's environment describes (``RANK``,
    ``WORLD_SIZE``, ``LOCAL_RANK``); without it, a single process."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return World(rank=rank, size=size, local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def torchrun_command(processes: int, argv: list[str]) -> list[str]:
    """The command line that runs ``argv`` (a script and its arguments) as ``processes``
    processes on this machine under torchrun (``--standalone``: a free local port)."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={processes}", *argv,
    ]  # fmt: skip


def check_world(world: World, processes: int, param: str = "train.processes") -> None:
    """Refuse a world whose size is not the ``processes`` the params ask for."""
    if world.size != processes:
        raise ValueError(
            f"{param} is {processes} but torchrun started {world.size} process(es) "
            f"(WORLD_SIZE): set {param} to the number of processes of all machines"
        )


def process_threads(setting: Threads) -> Threads:
    """``auto`` threads: the CPUs of this process's share of the machine (torchrun's
    ``LOCAL_WORLD_SIZE`` processes split them); a number stays as it is."""
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if setting != "auto" or local == 1:
        return setting
    return max(1, available_cpus() // local)


def join(world: World, device: torch.device, timeout: timedelta = TIMEOUT) -> torch.device:
    """Join the process group of ``world`` (NCCL on CUDA, gloo on CPU) and return this
    process's device: its own GPU (``LOCAL_RANK``) on CUDA. A single process joins nothing.
    """
    if world.size == 1:
        return device
    if device.type == "cuda":
        if world.local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"process {world.local_rank + 1} of this machine has no GPU of its own "
                f"({torch.cuda.device_count()} visible): one process per GPU (train.processes, "
                "or torchrun --nproc_per_node)"
            )
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(
        backend, rank=world.rank, world_size=world.size, timeout=timeout,
        **({"device_id": device} if device.type == "cuda" else {}),
    )  # fmt: skip
    return device


def leave(world: World) -> None:
    """Leave the process group (after training, or when it failed)."""
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()
