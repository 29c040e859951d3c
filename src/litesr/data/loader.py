"""The training DataLoader: wiring dataset, sampler and workers, and iterating it forever.

:func:`build_train_loader` picks the sampler (one scale or several) and seeds the workers;
:func:`cycle` iterates the loader endlessly for iteration-based training, advancing the
epoch (reshuffle, new crops) on every pass via :func:`set_loader_epoch`.
"""
from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from .dataset import SRTrainDataset, collate_sr
from .files import DataError
from .samplers import MultiScaleBatchSampler, ScaleTaggedSampler
from .scales import check_scales

__all__ = ["build_train_loader", "cycle", "set_loader_epoch"]


def _seed_worker(worker_id: int) -> None:
    """Seed the global ``random``/``numpy`` RNGs of a worker from torch's per-worker seed.

    LiteSR's dataset does not use them (its randomness is per item), but user transforms
    might; torch's own seed is already ``base_seed + worker_id`` from the loader generator.
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def build_train_loader(
    dataset: SRTrainDataset,
    batch_size: int,
    num_workers: int,
    *,
    scales: Sequence[int] | None = None,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    shuffle: bool = True,
    pin_memory: bool = False,
    persistent_workers: bool = True,
    drop_last: bool = True,
    prefetch_factor: int | None = None,
) -> DataLoader:
    """A training DataLoader: seeded shuffling, DDP split, one scale per batch.

    ``batch_size`` is per rank (BasicSR's ``batch_size_per_gpu``).  ``scales`` defaults to
    the dataset's; one scale uses :class:`ScaleTaggedSampler` (``DistributedSampler``
    underneath, also for ``world_size=1``), several use :class:`MultiScaleBatchSampler`.
    Batches are ``{"lq", "gt", "scale"}`` from :func:`collate_sr`.  Workers get seeds from
    a generator seeded by ``(seed, rank)``; ``prefetch_factor`` defaults to 2 batches per
    worker (a 16×192² batch is ~7 MB, and items are cheap, so more buys nothing).
    Call :func:`set_loader_epoch` (or use :func:`cycle`) before each pass.
    """
    scales = check_scales(scales if scales is not None else dataset.scales)
    unknown = [s for s in scales if s not in dataset.scales]
    if unknown:
        raise DataError(f"scale(s) {unknown} are not among the dataset's scales {dataset.scales}")
    if batch_size < 1:
        raise DataError(f"batch_size must be positive, got {batch_size}")
    if num_workers < 0:
        raise DataError(f"num_workers must be >= 0, got {num_workers}")
    generator = torch.Generator()
    generator.manual_seed(int(np.random.SeedSequence([seed, rank]).generate_state(1)[0]))
    common: dict[str, Any] = {
        "num_workers": num_workers,
        "collate_fn": collate_sr,
        "pin_memory": pin_memory,
        "generator": generator,
    }
    if num_workers > 0:
        common.update(
            worker_init_fn=_seed_worker,
            persistent_workers=persistent_workers,
            prefetch_factor=prefetch_factor if prefetch_factor is not None else 2,
        )
    if len(scales) == 1:
        sampler = ScaleTaggedSampler(
            len(dataset), scales[0], seed=seed, rank=rank, world_size=world_size, shuffle=shuffle
        )
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last, **common)
    batch_sampler = MultiScaleBatchSampler(
        len(dataset),
        batch_size,
        scales,
        seed=seed,
        rank=rank,
        world_size=world_size,
        shuffle=shuffle,
        drop_last=drop_last,
    )
    return DataLoader(dataset, batch_sampler=batch_sampler, **common)


def set_loader_epoch(loader: DataLoader, epoch: int) -> None:
    """Tell the loader's sampler(s) and dataset which epoch comes next."""
    seen = set()
    for obj in (loader.batch_sampler, loader.sampler, loader.dataset):
        if obj is not None and id(obj) not in seen and hasattr(obj, "set_epoch"):
            seen.add(id(obj))
            obj.set_epoch(epoch)


def cycle(loader: DataLoader, start_epoch: int = 0) -> Iterator[dict[str, Any]]:
    """Yield batches forever, calling :func:`set_loader_epoch` before each pass.

    For iteration-based training: ``batches = cycle(loader); batch = next(batches)``.
    Raises :class:`DataError` if a pass yields nothing (dataset smaller than one batch
    per rank with ``drop_last``), instead of looping forever.
    """
    epoch = start_epoch
    while True:
        set_loader_epoch(loader, epoch)
        count = 0
        for batch in loader:
            count += 1
            yield batch
        if count == 0:
            raise DataError(
                f"the training loader yields no batches: {len(loader.dataset)} items are fewer than one "
                "batch per rank (lower the batch size or raise dataset_enlarge_ratio)"
            )
        epoch += 1
