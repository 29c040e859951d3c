"""Training-patch augmentation: aligned LR/HR random crops, flips and 90° rotations.

The same geometry as BasicSR's ``paired_random_crop`` and ``augment``, with two changes
that matter for reproducible training:

* randomness comes from a ``numpy.random.Generator`` passed in by the caller (the dataset
  derives one per item from ``(seed, epoch, index)``), never from the global ``random`` /
  ``numpy.random`` state, so results do not depend on worker count or process;
* outputs are always fresh C-contiguous arrays (never views into the cached images), ready
  for ``torch.from_numpy`` and safe to modify.

Crop alignment: the LR patch's top-left corner ``(top, left)`` is drawn on the LR grid and
the HR patch starts at ``(scale*top, scale*left)``.  With ``LR = imresize(modcrop(HR, s),
1/s)`` LR pixel ``i`` covers HR pixels ``s*i … s*i+s-1``, so the two patches show the same
scene area.

Images are ``H×W×C`` (or ``H×W``) numpy arrays, ``uint8`` in practice.

Errors are :class:`~litesr.data.files.DataError`, like every other data problem.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .files import DataError

__all__ = [
    "AugmentOps",
    "augment",
    "paired_random_crop",
    "random_crop_position",
]


def random_crop_position(
    lq_shape: tuple[int, ...], lq_size: int, rng: np.random.Generator, *, name: str | None = None
) -> tuple[int, int]:
    """Uniform ``(top, left)`` of an ``lq_size``-square patch inside an LR image of ``lq_shape``.

    Raises :class:`DataError` (naming ``name``) when the image is smaller than the patch.
    """
    h, w = int(lq_shape[0]), int(lq_shape[1])
    if h < lq_size or w < lq_size:
        what = f" {name}" if name else ""
        raise DataError(
            f"image{what} is too small for a {lq_size}×{lq_size} LR patch: its LR is {w}×{h} "
            "(use a smaller gt_size, or remove or skip the image)"
        )
    top = int(rng.integers(0, h - lq_size + 1))
    left = int(rng.integers(0, w - lq_size + 1))
    return top, left


def paired_random_crop(
    gt: np.ndarray,
    lq: np.ndarray,
    gt_size: int,
    scale: int,
    rng: np.random.Generator,
    *,
    name: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Crop an aligned ``gt_size`` HR patch and ``gt_size // scale`` LR patch.

    ``gt`` must be exactly ``scale`` times ``lq`` in both dimensions (modcrop the HR first)
    and ``gt_size`` a multiple of ``scale``.  Returns ``(gt_patch, lq_patch)`` as new
    contiguous arrays.  Errors are :class:`DataError` naming ``name`` (the image's file).
    """
    if gt_size <= 0 or scale <= 0:
        raise ValueError(f"gt_size and scale must be positive, got {gt_size} and {scale}")
    if gt_size % scale:
        raise DataError(f"gt_size {gt_size} is not a multiple of the scale ×{scale}")
    what = f" of {name}" if name else ""
    h_lq, w_lq = lq.shape[:2]
    h_gt, w_gt = gt.shape[:2]
    if (h_gt, w_gt) != (h_lq * scale, w_lq * scale):
        raise DataError(
            f"HR{what} is {w_gt}×{h_gt} but its LR is {w_lq}×{h_lq}: not ×{scale} of each other"
        )
    lq_size = gt_size // scale
    top, left = random_crop_position(lq.shape, lq_size, rng, name=name)
    lq_patch = lq[top : top + lq_size, left : left + lq_size].copy()
    top_gt, left_gt = top * scale, left * scale
    gt_patch = gt[top_gt : top_gt + gt_size, left_gt : left_gt + gt_size].copy()
    return gt_patch, lq_patch


@dataclass(frozen=True)
class AugmentOps:
    """One draw of BasicSR's augmentation: applied in the order hflip, vflip, transpose.

    The 8 combinations are the 8 symmetries of the square (identity, 3 rotations, 4 flips).
    """

    hflip: bool = False
    vflip: bool = False
    transpose: bool = False

    @classmethod
    def draw(cls, rng: np.random.Generator, *, hflip: bool = True, rotation: bool = True) -> AugmentOps:
        """Each enabled operation with probability 0.5 (``rotation`` enables vflip + transpose).

        Three numbers are drawn whatever is enabled, so switching an option does not shift
        the random stream used afterwards.
        """
        u = rng.random(3)
        return cls(
            hflip=bool(hflip and u[0] < 0.5),
            vflip=bool(rotation and u[1] < 0.5),
            transpose=bool(rotation and u[2] < 0.5),
        )

    def apply(self, img: np.ndarray) -> np.ndarray:
        """The augmented image as a new C-contiguous array."""
        out = img
        if self.hflip:
            out = out[:, ::-1]
        if self.vflip:
            out = out[::-1]
        if self.transpose:
            out = out.swapaxes(0, 1)
        return np.ascontiguousarray(out) if out is not img else img.copy()


def augment(
    imgs: Sequence[np.ndarray],
    rng: np.random.Generator,
    *,
    hflip: bool = True,
    rotation: bool = True,
) -> list[np.ndarray]:
    """Apply one random :class:`AugmentOps` draw identically to every image (LR and HR).

    Like BasicSR's ``augment``: horizontal flip (if ``hflip``), vertical flip and transpose
    (if ``rotation``), each with probability 0.5.  Returns new contiguous arrays.
    """
    ops = AugmentOps.draw(rng, hflip=hflip, rotation=rotation)
    return [ops.apply(img) for img in imgs]
