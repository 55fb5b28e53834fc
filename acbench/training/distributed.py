"""One process or many under ``torchrun``: the rank, world size and the all-reduce we need.

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the default process group is created
with gloo on CPU and NCCL on CUDA; a single process needs nothing.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """Average of ``tensor`` over ranks (itself for one process)."""
        if not self.active:
            return tensor
        out = tensor.detach().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out / self.world_size

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def distributed_context(device: str = "cpu") -> DistContext:
    """Join the process group if launched by ``torchrun``; otherwise a one-process context."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size())
