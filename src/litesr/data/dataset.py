"""The training dataset: random aligned LR/HR patch pairs from :class:`TrainingImages`.

:class:`SRTrainDataset` turns an ``(index, scale)`` into an aligned random LR/HR patch
pair, flipped/rotated like BasicSR, as float32 ``C×H×W`` tensors in ``[0, 1]``.  The
randomness of item ``index`` in ``epoch`` comes from ``numpy.random.default_rng([seed,
epoch, index])``: independent of worker count, worker assignment and DDP rank, and
reproducible.

The samplers (:mod:`litesr.data.samplers`) hand the dataset :class:`ItemKey` tuples that
carry the epoch, so persistent workers (which hold their own copy of the dataset, never
updated by ``set_epoch`` in the main process) still use the right epoch.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from .augment import AugmentOps, paired_random_crop
from .files import DataError
from .image_store import TrainingImages
from .scales import check_scales

__all__ = ["ItemKey", "SRTrainDataset", "collate_sr"]


class ItemKey(NamedTuple):
    """What the samplers hand to :meth:`SRTrainDataset.__getitem__`."""

    index: int
    scale: int
    epoch: int


class SRTrainDataset(Dataset):
    """Random aligned LR/HR training patches.

    ``dataset[i]`` (only with one scale), ``dataset[(i, scale)]`` or
    ``dataset[ItemKey(i, scale, epoch)]`` returns ``{"lq": C×h×w, "gt": C×H×W, "scale": s}``
    (float32 in ``[0, 1]``, RGB, ``H = s·h``).  ``len`` is the number of usable images times
    ``dataset_enlarge_ratio`` (BasicSR's trick for fewer, longer epochs); index ``i`` uses
    image ``i mod n``.

    Patch size: ``gt_size`` (BasicSR: the HR patch; LR patch ``gt_size // s``, so
    ``gt_size`` must be a multiple of every scale) or ``lq_size`` (CARN/LESRCNN: the LR
    patch; HR patch ``lq_size·s``).  Exactly one is given.

    Images too small for the patch at some scale are an error naming them, or, with
    ``small_images='skip'``, left out with a warning.  Item randomness is
    ``default_rng([seed, epoch, index])``: crop position, then flips (see :mod:`.augment`).
    """

    def __init__(
        self,
        images: TrainingImages,
        *,
        scales: Sequence[int],
        gt_size: int | None = None,
        lq_size: int | None = None,
        use_hflip: bool = True,
        use_rot: bool = True,
        dataset_enlarge_ratio: int = 1,
        seed: int = 0,
        small_images: str = "error",
        precompute_lr: bool = True,
    ) -> None:
        self.images = images
        self.scales = check_scales(scales)
        if (gt_size is None) == (lq_size is None):
            raise DataError("give exactly one of gt_size (HR patch) and lq_size (LR patch)")
        size = gt_size if gt_size is not None else lq_size
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
            raise DataError(f"patch size must be a positive integer, got {size!r}")
        if gt_size is not None:
            bad = [s for s in self.scales if gt_size % s]
            if bad:
                raise DataError(
                    f"gt_size {gt_size} is not a multiple of scale(s) {bad}; use e.g. "
                    f"{math.lcm(*self.scales) * max(1, round(gt_size / math.lcm(*self.scales)))}"
                )
        self.gt_size = None if gt_size is None else int(gt_size)
        self.lq_size = None if lq_size is None else int(lq_size)
        self.use_hflip = bool(use_hflip)
        self.use_rot = bool(use_rot)
        if isinstance(dataset_enlarge_ratio, bool) or int(dataset_enlarge_ratio) != dataset_enlarge_ratio or dataset_enlarge_ratio < 1:
            raise DataError(f"dataset_enlarge_ratio must be a positive integer, got {dataset_enlarge_ratio!r}")
        self.enlarge = int(dataset_enlarge_ratio)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise DataError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        if small_images not in ("error", "skip"):
            raise DataError(f"small_images must be 'error' or 'skip', got {small_images!r}")
        if images.given_scales and not set(self.scales) <= images.given_scales:
            raise DataError(
                f"scales {self.scales} need LR images, but dataroot_lq gives only ×{sorted(images.given_scales)}"
            )
        self.epoch = 0
        self.image_ids = self._usable_images(small_images)
        if precompute_lr:
            images.prepare(self.scales, self.image_ids)

    def lq_patch(self, scale: int) -> int:
        return self.gt_size // scale if self.gt_size is not None else self.lq_size  # type: ignore[return-value]

    def _usable_images(self, policy: str) -> list[int]:
        small = []
        for i in range(len(self.images)):
            for s in self.scales:
                h, w = self.images.lq_shape(i, s)
                p = self.lq_patch(s)
                if h < p or w < p:
                    small.append((i, s, w, h, p))
                    break
        if small and policy == "error":
            i, s, w, h, p = small[0]
            more = f" (and {len(small) - 1} more)" if len(small) > 1 else ""
            raise DataError(
                f"{self.images.sources[i]} is too small for the training patch: its ×{s} LR is {w}×{h}, "
                f"the LR patch {p}×{p}{more}; use a smaller patch, remove it, or set small_images='skip'"
            )
        skip = {t[0] for t in small}
        usable = [i for i in range(len(self.images)) if i not in skip]
        if not usable:
            raise DataError(f"no image of {self.images.name} is large enough for the training patch")
        if small:
            warnings.warn(
                f"{self.images.name}: skipping {len(small)} of {len(self.images)} images smaller than the "
                f"training patch (e.g. {self.images.sources[small[0][0]]})",
                stacklevel=3,
            )
        return usable

    @property
    def num_images(self) -> int:
        return len(self.image_ids)

    def __len__(self) -> int:
        return len(self.image_ids) * self.enlarge

    def set_epoch(self, epoch: int) -> None:
        """Epoch used for keys that do not carry one (plain ``i`` / ``(i, scale)``)."""
        self.epoch = int(epoch)

    def _parse(self, key: Any) -> ItemKey:
        if isinstance(key, ItemKey):
            index, scale, epoch = key
        elif isinstance(key, tuple) and len(key) == 2:
            (index, scale), epoch = key, self.epoch
        elif isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if len(self.scales) != 1:
                raise DataError(f"this dataset has scales {self.scales}: index it with (index, scale)")
            index, scale, epoch = key, self.scales[0], self.epoch
        else:
            raise TypeError(f"index must be an int, (index, scale) or ItemKey, got {key!r}")
        index, scale = int(index), int(scale)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} items")
        if scale not in self.scales:
            raise DataError(f"scale ×{scale} is not one of this dataset's scales {self.scales}")
        return ItemKey(index, scale, int(epoch))

    def __getitem__(self, key: Any) -> dict[str, Any]:
        index, scale, epoch = self._parse(key)
        i = self.image_ids[index % len(self.image_ids)]
        rng = np.random.default_rng([self.seed, epoch, index])
        gt, lq = paired_random_crop(
            self.images.gt(i, scale),
            self.images.lq(i, scale),
            self.lq_patch(scale) * scale,
            scale,
            rng,
            name=self.images.sources[i],
        )
        ops = AugmentOps.draw(rng, hflip=self.use_hflip, rotation=self.use_rot)
        return {"lq": _to_chw(ops.apply(lq)), "gt": _to_chw(ops.apply(gt)), "scale": scale}


def _to_chw(patch: np.ndarray) -> torch.Tensor:
    """``H×W×C`` uint8 → ``C×H×W`` float32 in [0, 1]."""
    chw = torch.from_numpy(patch).permute(2, 0, 1)
    out = torch.empty(chw.shape, dtype=torch.float32)
    return out.copy_(chw).div_(255.0)


def collate_sr(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack a batch: ``lq`` ``B×C×h×w``, ``gt`` ``B×C×H×W``, ``scale`` a plain int."""
    scales = {item["scale"] for item in items}
    if len(scales) != 1:
        raise DataError(f"a batch mixes scales {sorted(scales)}; use MultiScaleBatchSampler")
    return {
        "lq": torch.stack([item["lq"] for item in items]),
        "gt": torch.stack([item["gt"] for item in items]),
        "scale": scales.pop(),
    }
