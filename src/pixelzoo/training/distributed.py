"""Distributed data parallel training through torchrun.

``pixelzoo train`` under ``torchrun --nproc_per_node=N`` reads the usual
``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` variables, joins a process group (NCCL on
GPUs, gloo on CPUs) and wraps the model in ``DistributedDataParallel``. Every rank
draws the same global batch order and trains on its contiguous slice of each
global batch, so N processes with global batch B follow the same trajectory as one
process with batch B. Only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    """This process's place in the job; ``backend`` is None outside torchrun."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.backend is not None

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_rank() -> int:
    """This process's global rank as torchrun announces it (0 outside torchrun), before any setup."""
    return int(os.environ.get("RANK", "0"))


def setup(device: str) -> Dist:
    """Join the process group if launched by torchrun (even with one process, so that
    the DDP code path is the same whatever the number of processes)."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return Dist()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if not dist.is_initialized():
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(backend)
    return Dist(rank, world, local, dist.get_backend())


def all_sum(value: float, d: Dist, device) -> float:
    return _all_reduce(value, d, device, dist.ReduceOp.SUM)


def all_max(value: float, d: Dist, device) -> float:
    """The largest of every process's ``value`` (e.g. seconds: the slowest process's)."""
    return _all_reduce(value, d, device, dist.ReduceOp.MAX)


def _all_reduce(value: float, d: Dist, device, op) -> float:
    if not d.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=op)
    return float(t)


def broadcast_from_main(module: torch.nn.Module, d: Dist) -> None:
    """Every process takes rank 0's weights and buffers (in place)."""
    if d.enabled:
        for t in module.state_dict().values():
            dist.broadcast(t, 0)


def average_gradients(params, d: Dist) -> None:
    """Replace the gradients of ``params`` by their mean over the processes, as DDP's
    reducer does, in one ``all_reduce`` of a flat buffer (parameters without a gradient
    are skipped: every process has the same ones)."""
    if not d.enabled:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= d.world_size
    for g, part in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
        g.copy_(part.view_as(g))


def all_mean(values: dict[str, float], d: Dist, device) -> dict[str, float]:
    """Each of ``values`` averaged over the processes (one ``all_reduce``)."""
    if not d.enabled or not values:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(values, (t / d.world_size).tolist(), strict=True))


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()


def teardown(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()
