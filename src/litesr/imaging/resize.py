"""MATLAB-compatible bicubic ``imresize``.

Why a port and not ``PIL``/``cv2``/``torch.nn.functional.interpolate``: the SR literature's
low-resolution test images (and therefore every published PSNR) were made with MATLAB's
``imresize(img, 1/s, 'bicubic')``.  Other resizers use a different cubic coefficient, no
antialiasing when shrinking, other border rules or a single rounding at the end, and their
LR images differ from MATLAB's by up to ~10 gray levels -- enough to move PSNR by tenths of
a dB.  This module reproduces MATLAB bit for bit on the Set5/Set14 LR files.

What MATLAB does, and what is copied here:

* cubic kernel with ``a = -0.5`` (Keys), support 4;
* when shrinking (scale < 1) the kernel is stretched by ``1/scale`` and scaled by ``scale``
  (antialiasing), so the support becomes ``4/scale`` input pixels;
* output pixel ``x`` (1-based) samples input coordinate ``u = x/scale + 0.5*(1 - 1/scale)``;
* out-of-range taps are mirrored (symmetric padding: ``..., 2, 1, 1, 2, ...``);
* each row of weights is normalised to sum to 1;
* the image is resized one dimension at a time, the dimension with the smallest scale
  first (stable sort, so rows/height first on ties);
* after each one-dimensional pass the result is converted back to the input class: for
  ``uint8``/``uint16`` that means rounding (half away from zero) and saturating.  This
  intermediate rounding is what makes the result bit-exact; skipping it is off by 1-12 levels.

Each pass is applied as MATLAB does it: every output sample is the float64 sum, in tap
order, of its ~``4/scale`` (shrinking) or 4 (enlarging) taps ``weight * input[index]`` --
a gather and a weighted sum over a ``(out, taps)`` band, not a dense ``out x in`` matrix
product (which is ~``in/taps`` times more work and, through BLAS threads, competes with
training data workers for cores).

:func:`modcrop` and :func:`make_lr` give the SR literature's LR image for training and
evaluation data.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["imresize", "cubic", "modcrop", "make_lr"]

_KERNEL_WIDTH = 4.0
_INT_MAX = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with ``a = -0.5`` (MATLAB's ``cubic``)."""
    absx = np.abs(x)
    absx2 = absx * absx
    absx3 = absx2 * absx
    return (1.5 * absx3 - 2.5 * absx2 + 1.0) * (absx <= 1) + (
        -0.5 * absx3 + 2.5 * absx2 - 4.0 * absx + 2.0
    ) * ((absx > 1) & (absx <= 2))


def _contributions(
    in_length: int, out_length: int, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB's ``contributions``: per output sample, its input taps and their weights.

    Returns ``(indices, weights)``, both of shape ``(out_length, taps)``: ``indices`` are
    0-based ``int64`` positions *after* MATLAB's symmetric border mirroring, ``weights`` the
    float64 kernel values, each row normalised to sum to 1.  ``taps`` is
    ``ceil(kernel_width) + 2`` minus the columns whose weight is zero for every output
    (MATLAB drops those too), so about ``4 / scale`` when shrinking and 4 when enlarging --
    the band of a banded matrix, instead of a dense ``out x in`` one.

    Mirrored taps may land on the same input pixel (near the borders); they are kept as
    separate taps, exactly as MATLAB applies them (one product per tap, summed in tap
    order), rather than merged into one weight.
    """
    if scale < 1:  # antialiasing: widen the kernel by 1/scale, keep unit area
        def kernel(t: np.ndarray) -> np.ndarray:
            return scale * cubic(scale * t)

        kernel_width = _KERNEL_WIDTH / scale
    else:
        kernel = cubic
        kernel_width = _KERNEL_WIDTH

    x = np.arange(1, out_length + 1, dtype=np.float64)  # 1-based like MATLAB
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - kernel_width / 2.0)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based
    weights = kernel(u[:, None] - indices)
    weights /= weights.sum(axis=1, keepdims=True)

    # Symmetric padding: aux = [1..n, n..1], index wraps with period 2n.
    idx0 = indices.astype(np.int64) - 1
    period = 2 * in_length
    idx0 = np.mod(idx0, period)
    idx0 = np.where(idx0 < in_length, idx0, period - 1 - idx0)

    # MATLAB: kill = find(~any(weights, 1)) -- drop taps that are zero for every output.
    keep = np.any(weights != 0, axis=0)
    return np.ascontiguousarray(idx0[:, keep]), np.ascontiguousarray(weights[:, keep])


def _output_length(in_length: int, scale: float) -> int:
    """MATLAB's ``ceil(scale * in_length)``, tolerant of float noise (e.g. ``288 * (1/3)``)."""
    exact = scale * in_length
    nearest = round(exact)
    if abs(exact - nearest) < 1e-9 * max(1.0, abs(exact)):
        return int(nearest)
    return int(math.ceil(exact))


def _resize_axis(
    data: np.ndarray,
    axis: int,
    indices: np.ndarray,
    weights: np.ndarray,
    int_max: float | None,
) -> np.ndarray:
    """One 1-D pass along ``axis`` (float64 maths), then MATLAB's cast back to the class.

    A banded product: for each tap ``k``, gather the input slices ``indices[:, k]`` along
    ``axis`` and add ``weights[:, k] * slices`` to a float64 accumulator, taps in order --
    one product per tap and a left-to-right sum, as in MATLAB's per-output loop (a dense
    matmul merges mirrored duplicates and sums in BLAS order instead; the two agree to
    ~1e-15 and round alike except on exact ``k + 1/2`` ties, which cannot occur at the
    x2/x3/x4 factors).
    """
    bcast = (weights.shape[0],) + (1,) * (data.ndim - axis - 1)
    out: np.ndarray | None = None
    for k in range(weights.shape[1]):
        term = np.take(data, indices[:, k], axis=axis) * weights[:, k].reshape(bcast)
        if out is None:
            out = term.astype(np.float64, copy=False)
        else:
            out += term
    assert out is not None  # every row has at least one non-zero weight
    if int_max is not None:
        # MATLAB rounds half away from zero and saturates; values are >= 0 after clipping,
        # so floor(x + 0.5) is exactly that (np.round would round half to even).
        np.clip(out, 0.0, int_max, out=out)
        out += 0.5
        np.floor(out, out=out)
    return out


def imresize(
    img: np.ndarray,
    scale: float | None = None,
    output_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Resize like MATLAB ``imresize(img, scale, 'bicubic')`` (antialiased).

    Args:
        img: ``H x W`` or ``H x W x C`` array of dtype ``uint8``, ``uint16`` or floating.
        scale: one factor for both dimensions (``0.5`` halves, ``1/3`` shrinks by 3, ``4``
            enlarges by 4); output size is ``ceil(scale * size)`` as in MATLAB.
        output_shape: ``(height, width)`` instead of ``scale``; the per-dimension scale is
            then ``out/in`` as MATLAB does with ``imresize(img, [h w])``.

    Exactly one of ``scale`` and ``output_shape`` must be given.

    Returns:
        The resized image, same dtype and channel layout.  Integer inputs are rounded and
        saturated after *each* 1-D pass (MATLAB semantics, needed for bit-exact LR images);
        float inputs are not rounded or clipped (bicubic over/undershoot is kept).

    Raises:
        ValueError: bad dtype or number of dimensions, empty image, neither/both of
            ``scale``/``output_shape``, or a non-positive / non-finite scale or size.
    """
    if not isinstance(img, np.ndarray):
        raise ValueError(f"imresize expects a numpy array, got {type(img).__name__}")
    if img.ndim not in (2, 3):
        raise ValueError(f"imresize expects an H x W or H x W x C image, got shape {img.shape}")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"imresize got an empty image of shape {img.shape}")
    dtype = img.dtype
    if dtype in _INT_MAX:
        int_max: float | None = _INT_MAX[dtype]
    elif np.issubdtype(dtype, np.floating):
        int_max = None
    else:
        raise ValueError(
            f"imresize supports uint8, uint16 and floating images, got dtype {dtype}"
        )

    if (scale is None) == (output_shape is None):
        raise ValueError("imresize needs exactly one of `scale` and `output_shape`")
    in_h, in_w = int(img.shape[0]), int(img.shape[1])
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        s = float(scale)
        if not math.isfinite(s) or s <= 0:
            raise ValueError(f"scale must be a positive finite number, got {scale!r}")
        scales = (s, s)
        out_h, out_w = _output_length(in_h, s), _output_length(in_w, s)
    else:
        assert output_shape is not None
        try:
            shape_t = tuple(output_shape)
        except TypeError:
            shape_t = ()
        if len(shape_t) != 2 or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in shape_t
        ):
            raise ValueError(
                f"output_shape must be a (height, width) pair of ints, got {output_shape!r}"
            )
        out_h, out_w = int(shape_t[0]), int(shape_t[1])
        if out_h <= 0 or out_w <= 0:
            raise ValueError(f"output_shape must be positive, got {output_shape!r}")
        scales = (out_h / in_h, out_w / in_w)
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"scale {scale!r} gives an empty output for input shape {img.shape}")

    # MATLAB resizes the dimension with the smallest scale first (stable: rows on ties).
    order = sorted(range(2), key=lambda d: scales[d])
    sizes = ((in_h, out_h), (in_w, out_w))
    out: np.ndarray = img
    for axis in order:
        n_in, n_out = sizes[axis]
        if n_in == n_out and scales[axis] == 1.0:
            continue  # MATLAB skips identity passes too
        indices, weights = _contributions(n_in, n_out, scales[axis])
        out = _resize_axis(out, axis, indices, weights, int_max)
        if int_max is not None:
            out = out.astype(dtype)  # exact (integers in range); cheaper to gather next pass

    if out is img:
        return img.copy()
    return out.astype(dtype)


def _check_integer_scale(scale: int) -> int:
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    return int(scale)


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Drop the last ``H mod scale`` rows and ``W mod scale`` columns (MATLAB ``modcrop``).

    Why: the EDSR/BasicSR protocol crops the HR image to a multiple of the scale before
    making its LR, so that HR and SR (``scale`` times the LR) have the same size and line
    up pixel for pixel; the benchmark LR files were made from such crops, and PSNR/SSIM are
    computed against the cropped HR.  Returns a view of ``img`` (no copy); works for
    ``H x W`` and ``H x W x C`` arrays.

    Raises:
        ValueError: ``scale`` is not a positive integer or ``img`` has fewer than 2 dims.
    """
    s = _check_integer_scale(scale)
    if not isinstance(img, np.ndarray) or img.ndim < 2:
        got = getattr(img, "shape", img)
        raise ValueError(f"modcrop expects an H x W (x C) array, got {got!r}")
    h, w = img.shape[:2]
    return img[: h - h % s, : w - w % s]


def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """The literature's LR image: ``imresize(modcrop(hr, scale), 1/scale)`` (bicubic).

    Why: SR training pairs and benchmark LR images (EDSR/BasicSR protocol, and the
    distributed Set5/Set14/B100 ``LR_bicubic`` files) are MATLAB's
    ``imresize(modcrop(HR, s), 1/s, 'bicubic')`` of the uint8 image; any other resizer or
    crop changes the LR and shifts PSNR.  With ``uint8`` input this is bit-identical to
    those files (rounding after each 1-D pass, as MATLAB); the output has shape
    ``(H // scale, W // scale[, C])`` and ``hr``'s dtype.

    Raises:
        ValueError: ``scale`` is not a positive integer, ``hr`` is smaller than ``scale``
            in height or width, or ``hr`` is not an image :func:`imresize` accepts.
    """
    s = _check_integer_scale(scale)
    cropped = modcrop(hr, s)
    if cropped.shape[0] == 0 or cropped.shape[1] == 0:
        raise ValueError(f"a {hr.shape[1]}x{hr.shape[0]} image is smaller than the scale x{s}")
    return imresize(cropped, scale=1.0 / s)
