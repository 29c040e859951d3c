"""Samplers for :class:`~litesr.data.dataset.SRTrainDataset`: seeded, DDP-split, one scale per batch.

Both hand out :class:`~litesr.data.dataset.ItemKey` tuples that carry the sampler's
epoch, so dataset workers see the epoch even when they are persistent.
:class:`MultiScaleBatchSampler` serves multi-scale training (LESRCNN trains one network on
×2/×3/×4): every batch has one scale, the same on every DDP rank at every step.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import DistributedSampler, Sampler

from .dataset import ItemKey
from .files import DataError
from .scales import check_scales

__all__ = ["MultiScaleBatchSampler", "ScaleTaggedSampler"]


class ScaleTaggedSampler(Sampler[ItemKey]):
    """``DistributedSampler``'s indices (shuffled per epoch, split across ranks) as
    :class:`ItemKey` with a fixed scale and the sampler's epoch.

    With ``world_size=1`` this is a seeded shuffle of every index; with more ranks each gets
    ``ceil(n / world_size)`` indices, padded by repeating as ``DistributedSampler`` does.
    """

    def __init__(
        self,
        num_items: int,
        scale: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
    ) -> None:
        _check_rank(rank, world_size)
        self.scale = int(scale)
        self.inner = DistributedSampler(
            range(num_items), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=False
        )

    @property
    def epoch(self) -> int:
        return self.inner.epoch

    def set_epoch(self, epoch: int) -> None:
        self.inner.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self) -> Iterator[ItemKey]:
        epoch = self.inner.epoch
        for index in self.inner:
            yield ItemKey(int(index), self.scale, epoch)


class MultiScaleBatchSampler(Sampler[list[ItemKey]]):
    """Batches of :class:`ItemKey` with one scale per batch, split across DDP ranks.

    Each epoch: one permutation of ``range(num_items)`` from ``(seed, epoch)`` (the same on
    every rank), padded by repetition to a multiple of ``world_size`` and dealt
    ``rank::world_size`` as ``DistributedSampler`` does; then cut into batches.  The
    batch scales are balanced (each scale the same number of batches, ±1) in a random
    order that is the same on every rank, so in DDP all ranks run step ``k`` at the same
    scale and use the same parameters.  Every rank yields the same number of batches.
    """

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        scales: Sequence[int],
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        drop_last: bool = True,
    ) -> None:
        _check_rank(rank, world_size)
        if num_items < 1:
            raise DataError("the dataset is empty")
        if batch_size < 1:
            raise DataError(f"batch_size must be positive, got {batch_size}")
        self.num_items = int(num_items)
        self.batch_size = int(batch_size)
        self.scales = check_scales(scales)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @property
    def per_rank(self) -> int:
        return math.ceil(self.num_items / self.world_size)

    def __len__(self) -> int:
        n = self.per_rank
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[list[ItemKey]]:
        epoch = self.epoch
        rng = np.random.default_rng([self.seed, epoch, 0x5CA1E])
        order = rng.permutation(self.num_items) if self.shuffle else np.arange(self.num_items)
        total = self.per_rank * self.world_size
        if total > len(order):
            order = np.resize(order, total)  # repeats from the start, like DistributedSampler
        mine = order[self.rank : total : self.world_size]
        n_batches = len(self)
        batch_scales = rng.permutation(np.resize(np.array(self.scales), n_batches))
        for b in range(n_batches):
            scale = int(batch_scales[b])
            chunk = mine[b * self.batch_size : (b + 1) * self.batch_size]
            yield [ItemKey(int(i), scale, epoch) for i in chunk]


def _check_rank(rank: int, world_size: int) -> None:
    if world_size < 1 or not 0 <= rank < world_size:
        raise DataError(f"need 0 <= rank < world_size, got rank {rank}, world_size {world_size}")
