"""Reading image files — the public face of :mod:`litesr.imaging` (writing is re-exported).

This module is the single place where LiteSR touches image files, both users' real
photos (the upscaler's input and output) and benchmark sets.  Everything else in the
library sees plain numpy arrays (H×W gray or H×W×3 RGB, uint8 or uint16, with alpha
kept separately) so that models, tiling and metrics never have to care about Pillow
modes, EXIF orientation, palettes or ICC profiles.

Why it is more than ``Image.open(...).convert("RGB")``:

* Users' files are messy: rotated phone photos (EXIF orientation), palette images with
  transparency, CMYK JPEGs, 16-bit PNGs from raw developers, animated GIFs, truncated
  downloads.  Each is either handled faithfully or refused with one clear sentence.
* Some files are hostile: a few hundred bytes can declare (or hide behind a harmless
  first header) gigabytes of pixels.  The ``max_pixels`` limit therefore holds on what
  every decoder actually allocates, not on one header (see :func:`read_image`).
* Pillow silently reduces 16-bit-per-channel colour PNGs to 8 bits when reading and
  cannot write them at all, so those go through the small codec in
  :mod:`litesr.imaging.png16`; 16-bit gray is native in Pillow (mode ``I;16``, and
  ``I`` for 16-bit PGM) and is left to it, for reading and for TIFF/PGM writing.
* Pillow reports damaged metadata as warnings that name no file; they become notes on
  the image (or on the write), which the CLI prints next to the file's name.
* Outputs are written atomically (:mod:`litesr.imaging.atomic`), so an interrupted run
  never leaves a half-written file that looks like a finished result.
"""
from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ImageError, PixelLimitError
from .atomic import os_error_reason
from .metadata import embedded_icc_profile, notes_from_pillow, orient_array, read_exif
from .pil_arrays import FormatProblem, pixels_from_pil
from .pillow_guard import hold_pillow_to_limit, pillow_guards, pillow_warnings
from .png16 import Png16Error, Png16PixelLimitError, decode_png16, png16_colour_type

# The public face of image files: reading lives here; writing and the tensor conversion in
# their own modules, re-exported so callers need one import.
from .tensors import from_float_tensor, to_float_tensor  # noqa: E402
from .writing import write_image  # noqa: E402

__all__ = [
    "ANIMATED_WARNING",
    "DEFAULT_MAX_PIXELS",
    "ImageError",
    "LoadedImage",
    "PixelLimitError",
    "from_float_tensor",
    "orient_array",
    "read_exif",
    "read_image",
    "to_float_tensor",
    "write_image",
]

#: Largest image (width × height) read by default: 200 megapixels.  That is above every
#: camera sold today (medium format tops out around 150 MP) yet stops a tiny crafted file
#: that claims, say, 50 000 × 50 000 pixels before a byte of it is decoded — such a
#: "decompression bomb" would otherwise ask for gigabytes of RAM (and the float tensor
#: the model needs is 4× bigger again).  Pillow's own limit (~179 MP, an error only above
#: twice its 89 MP warning level) is replaced by this one so the user gets one message and
#: one knob (``--max-pixels``).
DEFAULT_MAX_PIXELS = 200_000_000

#: The warning text appended to :attr:`LoadedImage.warnings` for multi-frame input.
ANIMATED_WARNING = "animated image: only the first frame is upscaled"

#: LoadedImage.mode for each 16-bit PNG colour type (Pillow has no names for 2, 4 and 6).
_PNG16_MODE_NAMES = {0: "I;16", 2: "RGB;16", 4: "LA;16", 6: "RGBA;16"}


@dataclass
class LoadedImage:
    """An image as the rest of LiteSR sees it, plus what is needed to write it back faithfully.

    Attributes:
        pixels: H×W×3 RGB or H×W gray, uint8 or uint16, already in display orientation.
        alpha: H×W transparency with the same dtype as ``pixels``, or None when opaque.
        mode: the ORIGINAL file's mode as Pillow names it (``RGB``, ``P``, ``CMYK``,
            ``I;16``…); 16-bit colour PNGs, which Pillow has no mode for, are named
            ``RGB;16``, ``RGBA;16`` and ``LA;16``.
        bit_depth: 8 or 16 — bits per sample of ``pixels``.
        icc_profile: the embedded colour profile, so the output can be tagged the same way.
        exif: the raw EXIF block (``b"Exif\\0\\0"`` + TIFF data) with the orientation tag
            removed, because the rotation it asked for has been applied to ``pixels``.
        format: the file format (``PNG``, ``JPEG``, ``WEBP``…), or None if unknown.
        source: the path read from.
        warnings: human-readable notes about anything that was not kept exactly.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    mode: str = "RGB"
    bit_depth: int = 8
    icc_profile: bytes | None = None
    exif: bytes | None = None
    format: str | None = None
    source: Path | None = None
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- reading


def read_image(
    path: str | os.PathLike[str],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    allow_animated_first_frame: bool = True,
) -> LoadedImage:
    """Read an image file into a :class:`LoadedImage`, or raise :class:`ImageError`.

    ``max_pixels`` bounds what is actually decoded, on every decoder path, because a
    file's first header is not necessarily what a decoder ends up allocating:

    * the size Pillow will decode is checked right after the (lazy) open, before any
      pixel data is read, so an honest but huge file costs nothing;
    * while decoding, Pillow's own guard is held to the same limit, which covers what
      plugins allocate from sizes found deeper in the file (an ICO's embedded PNG, TIFF
      tiles, a GIF frame larger than its canvas);
    * the 16-bit PNG decoder validates its (single) header and checks the limit before
      allocating or inflating anything;
    * the decoded array is checked once more.

    EXIF orientation is applied.  Every failure (missing file, directory, empty,
    truncated, not an image, unsupported mode, too large) surfaces as an ``ImageError``
    whose one-sentence message names the file.  Pillow's warnings, which name no file,
    become :attr:`LoadedImage.warnings` notes instead of stray ``UserWarning`` lines.
    """
    source = Path(path)
    if max_pixels <= 0:  # a caller's mistake, but reported like any other refusal
        raise ImageError(f"cannot read {source}: max_pixels must be a positive number of pixels, got {max_pixels}")
    _check_is_nonempty_file(source)
    with pillow_guards(), pillow_warnings() as pillow_messages:
        try:
            with Image.open(source) as im:
                image = _load_opened(im, source, max_pixels, allow_animated_first_frame)
        except ImageError:
            raise
        except _READ_ERRORS as exc:
            raise _read_error(source, exc, max_pixels) from exc
    image.warnings += notes_from_pillow(pillow_messages)
    return image


_READ_ERRORS = (
    OSError,  # includes UnidentifiedImageError and "image file is truncated"
    SyntaxError,  # Pillow's plugins use it for malformed headers
    ValueError,  # includes Png16Error
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    zlib.error,
    MemoryError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,  # raised, not warned: see pillow_warnings
    FormatProblem,
)


def _check_is_nonempty_file(source: Path) -> None:
    """Give the common path mistakes their own message instead of Pillow's generic one."""
    try:
        st = source.stat()
    except FileNotFoundError:
        raise ImageError(f"cannot read {source}: no such file") from None
    except OSError as exc:
        raise ImageError(f"cannot read {source}: {os_error_reason(exc)}") from None
    if source.is_dir():
        raise ImageError(f"cannot read {source}: it is a directory, not an image file")
    if st.st_size == 0:
        raise ImageError(f"cannot read {source}: the file is empty (0 bytes)")


def _read_error(source: Path, exc: BaseException, max_pixels: int) -> ImageError:
    """Translate whatever the decoder raised into one sentence naming the file."""
    prefix = f"cannot read {source}"
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return PixelLimitError(
            f"{prefix}: decoding it needs more than the limit of {max_pixels:,} pixels; raise it with --max-pixels"
        )
    if isinstance(exc, Png16PixelLimitError):
        return _pixel_limit_error(source, exc.width, exc.height, max_pixels)
    if isinstance(exc, (FormatProblem, Png16Error)):
        return ImageError(f"{prefix}: {exc}")
    if isinstance(exc, UnidentifiedImageError):
        return ImageError(f"{prefix}: not a recognised image format")
    if isinstance(exc, MemoryError):
        return ImageError(f"{prefix}: not enough memory to decode it")
    if isinstance(exc, OSError) and "truncated" in str(exc):
        return ImageError(f"{prefix}: the file is truncated (incomplete download or copy?)")
    if isinstance(exc, OSError) and exc.errno is not None:
        return ImageError(f"{prefix}: {os_error_reason(exc)}")
    return ImageError(f"{prefix}: the file is corrupt or truncated ({exc or type(exc).__name__})")


def _check_pixel_limit(source: Path, width: int, height: int, max_pixels: int) -> None:
    """Refuse an image of ``width``×``height`` (declared or decoded) above the limit."""
    if width * height > max_pixels:
        raise _pixel_limit_error(source, width, height, max_pixels)


def _pixel_limit_error(source: Path, width: int, height: int, max_pixels: int) -> ImageError:
    """The one wording of "too many pixels", whichever check caught it."""
    return PixelLimitError(
        f"cannot read {source}: image is {width}×{height} = {width * height:,} pixels, "
        f"above the limit of {max_pixels:,}; raise it with --max-pixels"
    )


def _frame_count(im: Image.Image) -> int:
    """Number of frames that matter; MPO "frames" are still-photo extras, not animation."""
    if im.format == "MPO":  # e.g. iPhone JPEGs with a depth map: the first image is the photo
        return 1
    return int(getattr(im, "n_frames", 1))


def _load_opened(
    im: Image.Image, source: Path, max_pixels: int, allow_animated: bool
) -> LoadedImage:
    """Decode an opened (header-only) image into a LoadedImage."""
    _check_pixel_limit(source, *im.size, max_pixels)
    hold_pillow_to_limit(max_pixels)
    notes: list[str] = []
    frames = _frame_count(im)
    if frames > 1:
        if not allow_animated:
            raise ImageError(f"cannot read {source}: animated image with {frames} frames is not accepted")
        notes.append(ANIMATED_WARNING)
    fmt = "JPEG" if im.format == "MPO" else im.format
    colour_type = png16_colour_type(source) if im.format == "PNG" else None
    if colour_type is not None and colour_type != 0:
        # Pillow would keep only the high bytes of 16-bit colour PNGs
        pixels, alpha = decode_png16(source.read_bytes(), max_pixels=max_pixels)
        mode, depth = _PNG16_MODE_NAMES[colour_type], 16
    else:
        im.load()  # decode errors (truncation) surface here, before EXIF handling
        pixels, alpha, depth = pixels_from_pil(im, notes, fmt)
        mode = im.mode
    _check_pixel_limit(source, pixels.shape[1], pixels.shape[0], max_pixels)  # decoded, not declared
    orientation, exif = read_exif(im, notes)
    pixels = orient_array(pixels, orientation)
    alpha = None if alpha is None else orient_array(alpha, orientation)
    return LoadedImage(
        pixels=pixels,
        alpha=alpha,
        mode=mode,
        bit_depth=depth,
        icc_profile=embedded_icc_profile(im, notes),
        exif=exif,
        format=fmt,
        source=source,
        warnings=notes,
    )
