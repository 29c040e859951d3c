"""BT.601 luma (Y) as the SR literature computes it.

SR papers report PSNR/SSIM on the Y channel of MATLAB's ``rgb2ycbcr``: studio-swing
ITU-R BT.601, ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` for ``R, G, B`` in ``[0, 1]``, so
``Y`` lies in ``[16, 235]`` (0-255 scale).  BasicSR's ``bgr2ycbcr(..., y_only=True)`` uses
the same coefficients and, like here, keeps ``Y`` as an unrounded float; this is the
"Y channel (float)" convention behind the project's reference numbers.
"""
from __future__ import annotations

import numpy as np

__all__ = ["rgb_to_y", "to_float01"]

#: MATLAB rgb2ycbcr / BasicSR coefficients for R, G, B in [0, 1] -> Y in [16, 235].
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966], dtype=np.float64)
_Y_OFFSET = 16.0


def to_float01(img: np.ndarray) -> np.ndarray:
    """Return ``img`` as float64 in ``[0, 1]``: ``uint8 / 255``, ``uint16 / 65535``, float as is.

    Float input is assumed to be in ``[0, 1]`` already and is not clipped.
    """
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return img.astype(np.float64) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float64) / 65535.0
    if np.issubdtype(img.dtype, np.floating):
        return img.astype(np.float64)
    raise ValueError(f"expected a uint8, uint16 or float image, got dtype {img.dtype}")


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 studio-swing luma of an RGB image, as float64 in the ``[16, 235]`` range.

    Args:
        img: ``H x W x 3`` RGB (``uint8``/``uint16``, or float in ``[0, 1]``), or a gray
            image (``H x W`` or ``H x W x 1``).

    Returns:
        ``H x W`` float64 array on the 0-255 scale, not rounded.

    Gray input: the gray values are returned unchanged, only brought to the same 0-255
    scale (``uint8`` as is, ``uint16 / 257``, float ``* 255``); the 16-235 mapping is *not*
    applied.  That is the MATLAB scripts' convention (``rgb2ycbcr`` only when
    ``size(im, 3) == 3``). The BasicSR/EDSR lineage instead decodes every file as colour,
    so a mode-L image such as Set14's ``bridge`` reaches this function as R=G=B and gets
    ``Y = 16 + 219 v``, which *raises* its PSNR by ``20 log10(255/219)`` = 1.32 dB;
    :func:`litesr.evaluate.evaluate` chooses between the two (``gray="replicate"`` default,
    ``gray="native"``).
    """
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        return to_float01(img) * 255.0
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"rgb_to_y expects H x W x 3 RGB or a gray image, got shape {img.shape}")
    rgb = to_float01(img)
    return rgb @ _Y_WEIGHTS + _Y_OFFSET
