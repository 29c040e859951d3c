"""PSNR and SSIM exactly as the SR literature computes them.

The definitions follow BasicSR's ``calculate_psnr`` / ``calculate_ssim`` (which in turn
reproduce the MATLAB scripts behind published tables):

* images are on the 0-255 scale (normally ``uint8``) and are compared as float64;
* ``crop_border`` pixels are dropped on every side first (papers use the scale factor);
* ``y_channel=True`` compares BT.601 luma (:func:`litesr.imaging.color.rgb_to_y`, float,
  not rounded) instead of RGB; a 2-D gray image is compared on its own gray values
  (how gray *files* enter is the evaluation's choice, see :mod:`litesr.evaluate`);
* PSNR = ``10 log10(255^2 / MSE)`` over all pixels and channels (``inf`` when equal);
* SSIM uses an 11x11 Gaussian window (sigma 1.5), ``C1 = (0.01*255)^2``,
  ``C2 = (0.03*255)^2``, keeps only the 'valid' region (no padding: BasicSR filters with
  ``cv2.filter2D`` and crops 5 pixels per side), and averages the per-channel means.

No scipy/cv2: the Gaussian is separable, so filtering is two 11-tap passes written with
``sliding_window_view`` and a dot product.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from litesr.imaging.color import rgb_to_y

__all__ = ["psnr", "ssim", "quantize"]

_WIN = 11
_SIGMA = 1.5
_C1 = (0.01 * 255.0) ** 2
_C2 = (0.03 * 255.0) ** 2


def _gaussian_1d(size: int = _WIN, sigma: float = _SIGMA) -> np.ndarray:
    """``cv2.getGaussianKernel(size, sigma)``: normalised samples of exp(-x^2 / 2 sigma^2)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


_GAUSS = _gaussian_1d()


def _prepare(
    sr: np.ndarray, hr: np.ndarray, crop_border: int, y_channel: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Validate, crop, optionally convert to Y; return float64 ``H x W x C`` pairs."""
    sr = np.asarray(sr)
    hr = np.asarray(hr)
    if sr.shape != hr.shape:
        raise ValueError(f"image shapes differ: {sr.shape} vs {hr.shape}")
    if sr.ndim not in (2, 3) or (sr.ndim == 3 and sr.shape[2] not in (1, 3)):
        raise ValueError(f"expected H x W, H x W x 1 or H x W x 3 images, got shape {sr.shape}")
    for a in (sr, hr):
        if not (np.issubdtype(a.dtype, np.number) and not np.issubdtype(a.dtype, np.complexfloating)):
            raise ValueError(f"expected real numeric images, got dtype {a.dtype}")
    if isinstance(crop_border, bool) or int(crop_border) != crop_border or crop_border < 0:
        raise ValueError(f"crop_border must be a non-negative int, got {crop_border!r}")
    crop_border = int(crop_border)
    if 2 * crop_border >= min(sr.shape[0], sr.shape[1]):
        raise ValueError(f"crop_border={crop_border} leaves nothing of a {sr.shape[:2]} image")
    if crop_border:
        sr = sr[crop_border:-crop_border, crop_border:-crop_border]
        hr = hr[crop_border:-crop_border, crop_border:-crop_border]
    if y_channel:
        # BasicSR's to_y_channel: img / 255 -> Y (16-235, float) ; our rgb_to_y already
        # returns the 0-255 scale.  Inputs of any dtype are read as 0-255 values here.
        sr = rgb_to_y(sr.astype(np.float64) / 255.0)
        hr = rgb_to_y(hr.astype(np.float64) / 255.0)
    sr = sr.astype(np.float64)
    hr = hr.astype(np.float64)
    if sr.ndim == 2:
        sr, hr = sr[:, :, None], hr[:, :, None]
    return sr, hr


def psnr(sr: np.ndarray, hr: np.ndarray, crop_border: int = 0, y_channel: bool = False) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(255^2 / MSE)``; ``inf`` for identical images.

    Args:
        sr, hr: same-shape ``H x W`` / ``H x W x 3`` images on the 0-255 scale (``uint8``
            normally; other dtypes are read as 0-255 values).
        crop_border: pixels dropped on each side before comparing (the SR scale, by
            convention).
        y_channel: compare BT.601 Y (float) instead of all RGB channels.
    """
    a, b = _prepare(sr, hr, crop_border, y_channel)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(255.0 * 255.0 / mse))


def _filter_valid(img: np.ndarray) -> np.ndarray:
    """2-D Gaussian filtering of an ``H x W`` float64 array, 'valid' region only."""
    rows = sliding_window_view(img, _WIN, axis=0) @ _GAUSS  # (H-10, W)
    return sliding_window_view(rows, _WIN, axis=1) @ _GAUSS  # (H-10, W-10)


def _ssim_channel(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of one channel (BasicSR ``_ssim``)."""
    mu1 = _filter_valid(a)
    mu2 = _filter_valid(b)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = _filter_valid(a * a) - mu1_sq
    sigma2_sq = _filter_valid(b * b) - mu2_sq
    sigma12 = _filter_valid(a * b) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + _C1) * (2 * sigma12 + _C2)) / (
        (mu1_sq + mu2_sq + _C1) * (sigma1_sq + sigma2_sq + _C2)
    )
    return float(ssim_map.mean())


def ssim(sr: np.ndarray, hr: np.ndarray, crop_border: int = 0, y_channel: bool = False) -> float:
    """Structural similarity (Wang et al. 2004) as computed in the SR literature.

    Same arguments as :func:`psnr`.  Channels are scored separately and averaged.  The
    (cropped) image must be at least 11x11, the Gaussian window size.
    """
    a, b = _prepare(sr, hr, crop_border, y_channel)
    if a.shape[0] < _WIN or a.shape[1] < _WIN:
        raise ValueError(f"SSIM needs at least {_WIN}x{_WIN} pixels after cropping, got {a.shape[:2]}")
    return float(np.mean([_ssim_channel(a[:, :, c], b[:, :, c]) for c in range(a.shape[2])]))


def quantize(img: Any) -> np.ndarray:
    """Float image in ``[0, 1]`` -> ``uint8``: clamp, ``* 255``, round half to even.

    Accepts a numpy array or a torch tensor (any layout: CHW, HWC, NCHW ...); the layout is
    kept, only the values change.  This is what an SR network's output goes through before
    PSNR/SSIM: BasicSR's ``tensor2img`` does ``(img.clamp(0, 1) * 255).round()``, and both
    ``torch.round`` and ``np.round`` round halves to even, as here.
    """
    if hasattr(img, "detach"):  # torch.Tensor, without importing torch here
        img = img.detach().cpu().float().numpy()
    arr = np.asarray(img)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"quantize expects a float image in [0, 1], got dtype {arr.dtype}")
    if arr.dtype != np.float64:
        arr = arr.astype(np.float32, copy=False)  # as BasicSR's tensor.float()
    return np.round(np.clip(arr, 0.0, 1.0) * arr.dtype.type(255.0)).astype(np.uint8)
