"""Pillow images → the arrays LiteSR works on (gray or RGB, alpha apart, uint8 or uint16).

Pillow has many modes (palettes, CMYK, 16-bit gray in three byte orders, ``I`` for 16-bit
PGM); this is the one place that maps each to a plain array or refuses it.
"""
from __future__ import annotations


import numpy as np
from PIL import Image


#: Modes Pillow uses for unsigned 16-bit gray (byte order differs, values don't).
_GRAY16_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})

#: Formats whose mode ``I`` (32-bit signed in Pillow) holds unsigned 16-bit gray: Pillow
#: opens 16-bit PGM (format PPM) that way, and older Pillows 16-bit gray PNG.  A TIFF in
#: mode ``I`` really is 32-bit and is refused.
_UNSIGNED_16BIT_I_FORMATS = frozenset({"PNG", "PPM"})

#: What each 8-bit (or 1-bit) Pillow mode becomes; alpha-carrying targets are split later.
_TARGET_MODE = {
    "1": "L",
    "L": "L",
    "LA": "LA",
    "La": "LA",
    "P": "RGB",
    "PA": "RGBA",
    "RGB": "RGB",
    "RGBA": "RGBA",
    "RGBa": "RGBA",
    "RGBX": "RGB",
    "CMYK": "RGB",
    "YCbCr": "RGB",
}


class FormatProblem(Exception):
    """Internal: the file decodes but LiteSR cannot represent it (message without path)."""


def pixels_from_pil(
    im: Image.Image, notes: list[str], fmt: str | None
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Turn any supported Pillow mode into (pixels, alpha, bit_depth) per the design contract."""
    mode = im.mode
    if mode in _GRAY16_MODES or (mode == "I" and fmt in _UNSIGNED_16BIT_I_FORMATS):
        return _gray16_from_pil(im)
    target = _TARGET_MODE.get(mode)
    if target is None:
        raise FormatProblem(
            f"unsupported mode {mode!r} (only 1/8-bit images, 16-bit gray and 16-bit PNG are supported)"
        )
    has_key = "transparency" in im.info
    if mode == "P" and (has_key or (im.palette is not None and im.palette.mode == "RGBA")):
        target = "RGBA"
    elif mode in ("L", "RGB") and has_key:  # tRNS colour key → a real alpha channel
        target = {"L": "LA", "RGB": "RGBA"}[mode]
    if mode == "CMYK":
        notes.append("CMYK image converted to RGB without colour management; colours may shift")
    if mode != target:
        im = im.convert(target)
    arr = np.array(im)
    if target in ("LA", "RGBA"):
        colour = arr[..., 0] if target == "LA" else arr[..., :3]
        return np.ascontiguousarray(colour), np.ascontiguousarray(arr[..., -1]), 8
    return arr, None, 8


def _gray16_from_pil(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None, int]:
    """16-bit gray (any byte order) → native uint16; a tRNS gray key becomes alpha."""
    arr = np.array(im)
    if im.mode == "I" and (arr.min(initial=0) < 0 or arr.max(initial=0) > 0xFFFF):
        raise FormatProblem("unsupported mode 'I' with values outside 0..65535")
    gray = arr.astype(np.uint16)
    key = im.info.get("transparency")
    alpha = None
    if isinstance(key, int):
        alpha = np.where(gray == key, 0, 0xFFFF).astype(np.uint16)
    return gray, alpha, 16
