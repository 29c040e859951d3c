"""DistributedDataParallel set-up under ``torchrun``: the same code path for one process or many.

``torchrun`` sets RANK/WORLD_SIZE/LOCAL_RANK; without them the trainer runs as a single
process. gloo is used on CPUs and NCCL on GPUs.
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
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: torch.device) -> DistContext:
    """Join the process group that torchrun describes in the environment (if any)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    context = DistContext(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return context


def device_for(context: DistContext, requested: str) -> torch.device:
    """``auto``: the local GPU when CUDA is present (one per process), else the CPU."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and context.enabled:
        return torch.device("cuda", context.local_rank)
    return torch.device(requested)


def barrier(context: DistContext) -> None:
    if context.enabled:
        dist.barrier()


def mean_across_ranks(value: torch.Tensor, context: DistContext) -> torch.Tensor:
    if context.enabled:
        value = value.detach().clone()
        dist.all_reduce(value)
        value /= context.world_size
    return value


def shutdown(context: DistContext) -> None:
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()
