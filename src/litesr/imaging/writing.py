"""Writing images: every format LiteSR outputs, atomically, with notes on what could not be kept.

Every PNG, 8 or 16 bits, goes through the streaming encoder of :mod:`litesr.imaging.png`,
which never holds a full-size copy of the image; everything else (16-bit gray TIFF/PGM
included) through Pillow, which needs the whole image in its own storage: that copy is
made once, from the caller's arrays, and no other.  Formats that cannot hold 16 bits or
alpha get an explicit note.  Files appear complete or not at all
(:mod:`litesr.imaging.atomic`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from ..errors import ImageError
from .atomic import OutputExistsError, WriteError, atomic_write
from .metadata import exif_with_upright_orientation, icc_for_output
from .pil_arrays import FormatProblem, pixels_from_pil
from .pillow_guard import pillow_warnings
from .png import write_png

#: Formats Pillow writes from its 16-bit gray mode (``I;16``): TIFF, and PGM (format PPM).
_GRAY16_PILLOW_FORMATS = frozenset({"TIFF", "PPM"})

#: Formats that cannot store more than 8 bits per channel at all.
_FORMATS_8BIT_ONLY = frozenset({"JPEG", "WEBP", "GIF"})

#: Writable formats with no alpha channel.
_FORMATS_WITHOUT_ALPHA = frozenset({"JPEG", "PPM"})

#: Pillow's mode for each (channel count, dtype) that reaches it; 16-bit is gray only
#: (see :func:`_why_not_16_bits`).
_PILLOW_MODES = {(1, "uint8"): "L", (2, "uint8"): "LA", (3, "uint8"): "RGB", (4, "uint8"): "RGBA",
                 (1, "uint16"): "I;16"}

#: Rows are copied into a Pillow image in bands of about this many bytes.
_PILLOW_BAND_BYTES = 1 << 22


def write_image(
    path: str | os.PathLike[str],
    pixels: np.ndarray | Image.Image,
    *,
    alpha: np.ndarray | None = None,
    bit_depth: int | None = None,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    format: str | None = None,  # noqa: A002 - mirrors Pillow's keyword
    quality: int = 95,
    replace: bool = True,
) -> list[str]:
    """Write an image atomically and return notes about anything that could not be kept.

    ``pixels`` is H×W gray, H×W×3 RGB (or H×W×2 / H×W×4 with alpha last), uint8 or
    uint16, or a PIL image.  ``bit_depth`` defaults to the dtype's; 16 bits survive in
    PNG, and for gray without alpha in TIFF and PGM (everything else is reduced to 8 with
    a note that says why).  ``format`` defaults to the suffix.  JPEG and PPM/PGM cannot
    store alpha, which is dropped with a note.  A valid ICC profile and the EXIF
    (orientation reset to 1, since pixels are stored upright) are carried over.

    The file appears complete or not at all: data goes to a hidden temp file in the same
    directory, is fsynced, then renamed over ``path``.  On any failure, Ctrl-C included,
    the temp file is removed; OS errors become :class:`ImageError`. With ``replace=False``
    a file that appeared at ``path`` meanwhile is left alone (:class:`OutputExistsError`).
    """
    target = Path(path)
    if target.is_dir():
        raise ImageError(f"cannot write {target}: it is a directory")
    fmt = _resolve_format(target, format)
    notes: list[str] = []
    colour, alpha = _split_for_writing(pixels, alpha)
    colour, alpha = _convert_depth(colour, alpha, _resolve_bit_depth(colour, bit_depth))
    colour, alpha = _fit_format(fmt, colour, alpha, notes)
    icc = icc_for_output(icc_profile, colour, notes)
    exif_bytes = exif_with_upright_orientation(exif, notes)
    if fmt == "PNG":

        def write(fh: BinaryIO) -> None:
            write_png(fh, colour, alpha, icc_profile=icc, exif=exif_bytes)

    else:
        image = _pil_from_arrays(colour, alpha)
        params = _save_params(fmt, quality, icc, exif_bytes)

        def write(fh: BinaryIO) -> None:
            image.save(fh, format=fmt, **params)

    with pillow_warnings() as encoder_messages:
        try:
            atomic_write(target, write, replace=replace)
        except OutputExistsError:
            raise
        except WriteError as exc:
            raise ImageError(str(exc)) from exc.__cause__
    return notes + [f"the encoder warned: {message}" for message in encoder_messages]


def _resolve_format(target: Path, fmt: str | None) -> str:
    """Pillow's format name from an explicit name or the file suffix."""
    Image.init()
    if fmt is None:
        found = Image.registered_extensions().get(target.suffix.lower())
        if found is None:
            raise ImageError(
                f"cannot write {target}: unknown image format for suffix {target.suffix!r} "
                "(use .png, .jpg, .webp, .tif or .bmp)"
            )
        fmt = found
    fmt = {"JPG": "JPEG", "TIF": "TIFF"}.get(fmt.upper(), fmt.upper())
    if fmt not in Image.SAVE:
        raise ImageError(f"cannot write {target}: this Pillow cannot write {fmt} files")
    return fmt


def _split_for_writing(
    pixels: np.ndarray | Image.Image, alpha: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate input and return (H×W or H×W×3 colour, H×W alpha or None), same dtype.

    The results may be views into ``pixels`` (an H×W×4 array is split, not copied): both
    encoders read strided arrays, so no full-size copy is made here.
    """
    if isinstance(pixels, Image.Image):
        if alpha is not None:
            raise ValueError("pass alpha inside the PIL image, not separately")
        try:
            colour, alpha, _ = pixels_from_pil(pixels, [], "PNG" if pixels.mode == "I" else None)
        except FormatProblem as exc:
            raise ValueError(str(exc)) from None
        return colour, alpha
    if not isinstance(pixels, np.ndarray) or pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError("pixels must be a uint8 or uint16 numpy array (use from_float_tensor for tensors)")
    if pixels.ndim == 3 and pixels.shape[2] in (2, 4):
        if alpha is not None:
            raise ValueError("pixels already has an alpha channel; do not pass alpha as well")
        pixels, alpha = pixels[..., :-1], pixels[..., -1]
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)) or 0 in pixels.shape:
        raise ValueError(f"pixels must be H×W or H×W×C with C in 1..4, got shape {pixels.shape}")
    if alpha is not None and (alpha.shape != pixels.shape[:2] or alpha.dtype != pixels.dtype):
        raise ValueError(f"alpha must be {pixels.shape[:2]} {pixels.dtype}, got {alpha.shape} {alpha.dtype}")
    return pixels, alpha


def _resolve_bit_depth(colour: np.ndarray, bit_depth: int | None) -> int:
    if bit_depth is None:
        return 16 if colour.dtype == np.uint16 else 8
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    return bit_depth


def _convert_depth(
    colour: np.ndarray, alpha: np.ndarray | None, bit_depth: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Rescale samples between 8 and 16 bits (×257 up, nearest value down)."""

    def convert(a: np.ndarray) -> np.ndarray:
        if bit_depth == 16 and a.dtype == np.uint8:
            return a.astype(np.uint16) * 257
        if bit_depth == 8 and a.dtype == np.uint16:
            return ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)
        return a

    return convert(colour), None if alpha is None else convert(alpha)


def _fit_format(
    fmt: str, colour: np.ndarray, alpha: np.ndarray | None, notes: list[str]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Drop what the target format (or Pillow's encoder for it) cannot hold, saying so."""
    if fmt in _FORMATS_WITHOUT_ALPHA and alpha is not None:
        notes.append(f"{fmt} has no alpha channel; the transparency was discarded")
        alpha = None
    if colour.dtype == np.uint16:
        reason = _why_not_16_bits(fmt, colour, alpha)
        if reason is not None:
            notes.append(f"{reason}; the image was written with 8 bits per channel")
            colour, alpha = _convert_depth(colour, alpha, 8)
    if fmt == "WEBP" and colour.ndim == 2:  # WebP has no gray mode; a view, expanded band by band for Pillow
        colour = np.broadcast_to(colour[..., None], (*colour.shape, 3))
    return colour, alpha


def _why_not_16_bits(fmt: str, colour: np.ndarray, alpha: np.ndarray | None) -> str | None:
    """Why this image cannot be written to ``fmt`` with 16 bits per channel, or None if it can.

    PNG always can (our own encoder).  TIFF can hold 16-bit colour and alpha, and PPM
    16-bit colour, but Pillow, which writes them, has a 16-bit mode only for gray
    (``I;16``) and no way to build a 16-bit RGB or gray+alpha image; the note says exactly
    that rather than blaming the format.
    """
    if fmt == "PNG":
        return None
    if fmt in _GRAY16_PILLOW_FORMATS:
        if colour.ndim == 2 and alpha is None:
            return None
        return (
            f"Pillow writes 16-bit {fmt} only for gray images without alpha "
            "(use .png to keep 16 bits in colour or with alpha)"
        )
    if fmt in _FORMATS_8BIT_ONLY:
        return f"{fmt} cannot store 16 bits per channel"
    return f"LiteSR writes {fmt} with at most 8 bits per channel (use .png to keep 16 bits)"


def _pil_from_arrays(colour: np.ndarray, alpha: np.ndarray | None) -> Image.Image:
    """An L/LA/RGB/RGBA (8-bit) or I;16 (16-bit gray) image for Pillow's encoders.

    Pillow's storage is the one full-size copy: a contiguous array without alpha is
    handed over whole (Pillow uses L and I;16 arrays in place and copies RGB into its
    4-byte pixels), anything else (alpha to interleave, views) is copied in band by
    band rather than assembled as a full-size array first.
    """
    if alpha is None and colour.flags.c_contiguous:
        return Image.fromarray(colour)
    height, width = colour.shape[:2]
    channels = (1 if colour.ndim == 2 else 3) + (alpha is not None)
    image = Image.new(_PILLOW_MODES[channels, colour.dtype.name], (width, height))
    band_rows = max(1, _PILLOW_BAND_BYTES // (width * channels * colour.itemsize))
    for top in range(0, height, band_rows):
        rows = slice(top, top + band_rows)
        image.paste(Image.fromarray(_interleaved(colour[rows], None if alpha is None else alpha[rows])), (0, top))
    return image


def _interleaved(colour: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Colour with alpha as its last channel, as one contiguous array (Pillow's layout)."""
    if alpha is None:
        return np.ascontiguousarray(colour)
    planes = colour[..., None] if colour.ndim == 2 else colour
    return np.concatenate([planes, alpha[..., None]], axis=-1)


def _save_params(fmt: str, quality: int, icc: bytes | None, exif: bytes | None) -> dict[str, object]:
    """Per-format Pillow save options."""
    params: dict[str, object] = {}
    if icc:
        params["icc_profile"] = icc
    if exif:
        params["exif"] = exif
    if fmt in ("JPEG", "WEBP"):
        params["quality"] = quality
    if fmt == "JPEG" and quality >= 90:
        # at high quality, 4:2:0 chroma subsampling is the main loss and would blur the
        # colour detail an upscaler just produced
        params["subsampling"] = 0
    return params


# ------------------------------------------------------------------ tensor conversion
