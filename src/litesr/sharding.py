"""One command, many processes: ``torchrun … -m litesr upscale`` shares the inputs out.

Without torchrun's environment (``WORLD_SIZE`` unset or 1) :func:`join_ranks` returns a
single-process :class:`Ranks` whose every operation is local, so ``litesr upscale`` has
one code path. Under torchrun:

* rank 0 alone lists the inputs and plans the outputs, then hands each rank its share
  (:meth:`Ranks.from_main`): one listing (a network file system is walked once), and every
  output belongs to exactly one rank even if files appear meanwhile;
* each rank runs on its own device: ``cuda:LOCAL_RANK`` on GPUs, and on a CPU its share of
  the cores (torchrun's default, one thread per process, would leave cores idle on a node
  with more cores than processes);
* progress is one shared counter in torchrun's key-value store, so rank 0's bar counts
  every rank's images; ranks that finish early wait on that store, not in a collective
  that would time out behind a slow rank;
* a failure before any work (a bad ``-o``, a missing weights file, on any rank) is agreed
  on by all ranks (:meth:`Ranks.together`): rank 0 prints it once and every rank exits 1.

The collectives carry only Python objects (plans, reports), so they always use gloo, which
works beside any device; NCCL would add nothing here.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from .errors import LiteSRError
from .train.distributed import DistContext

T = TypeVar("T")
#: How often a rank that has finished its share looks whether the others have.
POLL_SECONDS = 0.2
#: Collectives wait this long for a rank (rank 0 may list a million files first).
COLLECTIVE_TIMEOUT = timedelta(hours=2)


class ShardingError(LiteSRError):
    """The torchrun environment cannot be joined or does not fit this machine."""


class RankFailed(Exception):
    """Another rank (rank 0 reports it) made the command fail; this rank exits 1 silently."""


class Ranks:
    """The processes of one command and the few things they tell each other."""

    def __init__(self, context: DistContext, local_world_size: int = 1) -> None:
        self.context = context
        self.local_world_size = local_world_size
        self._store = _default_store() if context.enabled else None
        self._prefix = f"litesr-upscale/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/"
        self._done = 0

    @property
    def rank(self) -> int:
        return self.context.rank

    @property
    def world_size(self) -> int:
        return self.context.world_size

    @property
    def is_main(self) -> bool:
        return self.context.is_main

    def device(self, resolved: torch.device, requested: str) -> torch.device:
        """The device of this rank: ``cuda:LOCAL_RANK`` when ``--device`` leaves the GPU open."""
        if not self.context.enabled or resolved.type != "cuda" or requested not in ("auto", "cuda"):
            return resolved
        index, count = self.context.local_rank, torch.cuda.device_count()
        if index >= count:
            raise ShardingError(f"rank {self.rank} has LOCAL_RANK {index} but PyTorch sees {count} CUDA GPU(s): "
                                f"start at most {count} processes per node (--nproc_per_node)")
        return torch.device("cuda", index)

    def cpu_threads(self) -> int | None:
        """This rank's share of the node's cores, or None for a single process (PyTorch's choice)."""
        if not self.context.enabled:
            return None
        return max(1, len(os.sched_getaffinity(0)) // self.local_world_size)

    @contextmanager
    def together(self) -> Iterator[None]:
        """Run a step on every rank; if it fails on any, rank 0 raises that error and the others :class:`RankFailed`."""
        if not self.context.enabled:
            yield
            return
        error: LiteSRError | None = None
        try:
            yield
        except LiteSRError as raised:
            error = raised
        errors = self.all_gather(None if error is None else str(error))
        failed = [(rank, message) for rank, message in enumerate(errors) if message is not None]
        if failed:
            rank, message = failed[0]
            if not self.is_main:
                raise RankFailed
            raise error if error is not None else LiteSRError(f"rank {rank}: {message}")

    def from_main(self, make: Callable[[], list[T]]) -> T:
        """``make()`` run by rank 0 only, one item per rank; each rank gets its own.

        A :class:`LiteSRError` from ``make`` is raised by rank 0, and the other ranks raise
        :class:`RankFailed`.
        """
        if not self.context.enabled:
            return make()[0]
        items: list[Any] = [None] * self.world_size
        if self.is_main:
            try:
                items = make()
            except LiteSRError as error:
                items = [error] * self.world_size
        received: list[Any] = [None]
        dist.scatter_object_list(received, items if self.is_main else None, src=0)
        if isinstance(received[0], LiteSRError):
            if self.is_main:
                raise received[0]
            raise RankFailed
        return received[0]

    def all_gather(self, value: T) -> list[T]:
        """Every rank's ``value``, in rank order, on every rank."""
        if not self.context.enabled:
            return [value]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def count_done(self, images: int = 1) -> int:
        """Add ``images`` finished here; returns how many are finished on all ranks."""
        if self._store is None:
            self._done += images
            return self._done
        return int(self._store.add(self._prefix + "done", images))

    def wait_for_all(self, on_progress: Callable[[int], None]) -> None:
        """Say this rank is finished and wait for the others, reporting the shared count meanwhile."""
        if not self.context.enabled:
            return
        if self._store is None:
            dist.barrier()
            return
        self._store.add(self._prefix + "finished", 1)
        while int(self._store.add(self._prefix + "finished", 0)) < self.world_size:
            on_progress(self.count_done(0))
            time.sleep(POLL_SECONDS)
        on_progress(self.count_done(0))

    def close(self) -> None:
        if self.context.enabled and dist.is_initialized():
            dist.destroy_process_group()


def shard(items: list[T], world_size: int) -> list[list[T]]:
    """``items`` dealt round-robin to ``world_size`` ranks: deterministic, balanced to one item.

    Dealing (not cutting in blocks) spreads a folder's large and small images evenly, and
    neighbours in a folder (often of one size, so batched together) stay neighbours.
    """
    return [items[rank::world_size] for rank in range(world_size)]


def join_ranks() -> Ranks:
    """The processes torchrun started (from its environment), or this process alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world_size <= 1:
        return Ranks(DistContext())
    try:
        context = DistContext(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
        local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
        if not dist.is_initialized():
            dist.init_process_group("gloo", timeout=COLLECTIVE_TIMEOUT)
    except (KeyError, ValueError) as error:
        raise ShardingError(f"WORLD_SIZE={world_size} but the torchrun environment is incomplete ({error}); "
                            "start the command with torchrun") from None
    except RuntimeError as error:
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ShardingError(f"cannot join the other torchrun processes: {text}") from None
    return Ranks(context, local_world_size)


def _default_store() -> Any:
    """The key-value store the process group was made with (torchrun's), or None if hidden.

    PyTorch offers no public accessor; without it progress is counted per rank and ranks
    meet in a barrier at the end.
    """
    getter = getattr(dist.distributed_c10d, "_get_default_store", None)
    try:
        return getter() if getter is not None else None
    except (RuntimeError, ValueError):
        return None
