"""Data-parallel training with ``torch.distributed`` (gloo on CPU, NCCL on GPU).

Launch any training command with ``torchrun``::

    torchrun --nproc_per_node 2 train.py --config configs/...yaml
    # two machines (run on each, node_rank 0 and 1; the run directory must be on a shared filesystem):
    torchrun --nnodes 2 --node_rank 0 --nproc_per_node 4 --master_addr HOST0 --master_port 29500 train.py ...

Every process holds the whole model and graph and draws the same global batches
(same seed, same sampler); each computes the loss on its contiguous slice of
every batch, weighted by the slice's share, and gradients are summed with
``all_reduce`` — so an update equals the single-process update on the full batch
(up to floating-point summation order).  All processes therefore hold identical
parameters and take identical early-stopping decisions; only rank 0 writes files.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    """Rank and world size of this process (``world_size == 1`` when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def current(cls) -> DistributedContext:
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
        return cls()

    def shard(self, size: int) -> tuple[int, int]:
        """This rank's contiguous ``[start, stop)`` slice of a batch of ``size`` rows."""
        base, extra = divmod(size, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return start, start + base + (1 if self.rank < extra else 0)


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: str = "cpu") -> DistributedContext:
    """Join the process group described by torchrun's environment variables.

    Uses NCCL when ``device`` is CUDA, gloo otherwise.  Does nothing when the
    process was not started by torchrun (single process).
    """
    if not launched_by_torchrun():
        return DistributedContext()
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend=backend)
        log.info(
            "joined process group: rank %d of %d (%s)",
            dist.get_rank(),
            dist.get_world_size(),
            backend,
        )
    return DistributedContext.current()


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (no-op when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def all_reduce_gradients(module: torch.nn.Module) -> None:
    """Sum gradients over ranks; missing gradients count as zeros so every rank joins every call."""
    for param in module.parameters():
        if not param.requires_grad:
            continue
        if param.grad is None:
            param.grad = torch.zeros_like(param)
        dist.all_reduce(param.grad, op=dist.ReduceOp.SUM)


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum a small tensor over ranks (returns it unchanged when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values
