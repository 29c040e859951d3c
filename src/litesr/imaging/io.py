"""Reading and writing image files, and the uint ↔ float tensor conversion.

This module is the single place where LiteSR touches image files, both users' real
photos (the upscaler's input and output) and benchmark sets.  Everything else in the
library sees plain numpy arrays (H×W gray or H×W×3 RGB, uint8 or uint16, with alpha
kept separately) so that models, tiling and metrics never have to care about Pillow
modes, EXIF orientation, palettes or ICC profiles.

Why it is more than ``Image.open(...).convert("RGB")``:

* Users' files are messy: rotated phone photos (EXIF orientation), palette images with
  transparency, CMYK JPEGs, 16-bit PNGs from raw developers, animated GIFs, truncated
  downloads.  Each is either handled faithfully or refused with one clear sentence.
* Pillow silently reduces 16-bit-per-channel colour PNGs to 8 bits when reading and
  cannot write them at all, so those go through the small codec in
  :mod:`litesr.imaging.png16`; 16-bit gray is native in Pillow (mode ``I;16``) and is
  left to it when reading.
* Outputs are written atomically (:mod:`litesr.imaging.atomic`), so an interrupted run
  never leaves a half-written file that looks like a finished result.
"""
from __future__ import annotations

import contextlib
import os
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..errors import LiteSRError
from .atomic import WriteError, atomic_write, os_error_reason
from .png16 import Png16Error, decode_png16, encode_png16, png16_colour_type

__all__ = [
    "ANIMATED_WARNING",
    "DEFAULT_MAX_PIXELS",
    "ImageError",
    "LoadedImage",
    "from_float_tensor",
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

_ORIENTATION_TAG = 0x0112
_EXIF_PREFIX = b"Exif\x00\x00"

#: Modes Pillow uses for unsigned 16-bit gray (byte order differs, values don't).
_GRAY16_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
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
#: LoadedImage.mode for each 16-bit PNG colour type (Pillow has no names for 2, 4 and 6).
_PNG16_MODE_NAMES = {0: "I;16", 2: "RGB;16", 4: "LA;16", 6: "RGBA;16"}

#: Pillow's safety switches are process-wide globals; reads hold this lock while they are
#: set to LiteSR's values so concurrent reads (threads) cannot observe each other's.
_PILLOW_GLOBALS_LOCK = threading.RLock()


class ImageError(LiteSRError):
    """An image file cannot be read or written; the message is one sentence for the user."""


class _FormatProblem(Exception):
    """Internal: the file decodes but LiteSR cannot represent it (message without path)."""


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

    The pixel count is checked against ``max_pixels`` from the header alone, before any
    decoding, so decompression bombs cost nothing.  EXIF orientation is applied.  Every
    failure (missing file, directory, empty, truncated, not an image, unsupported mode,
    too large) surfaces as an ``ImageError`` with a one-sentence message.
    """
    if max_pixels <= 0:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    source = Path(path)
    _check_is_nonempty_file(source)
    with _pillow_guards():
        try:
            with Image.open(source) as im:
                return _load_opened(im, source, max_pixels, allow_animated_first_frame)
        except ImageError:
            raise
        except _READ_ERRORS as exc:
            raise _read_error(source, exc) from exc


_READ_ERRORS = (
    OSError,  # includes UnidentifiedImageError and "image file is truncated"
    SyntaxError,  # Pillow's plugins use it for malformed headers
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    zlib.error,
    MemoryError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,  # raised, not warned, if the caller's filters say so
    _FormatProblem,
    Png16Error,
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


@contextlib.contextmanager
def _pillow_guards() -> Iterator[None]:
    """Make truncated files fail and hand the size limit to our own, clearer check.

    ``LOAD_TRUNCATED_IMAGES`` is forced off because a half-downloaded photo must not be
    upscaled into a result with a gray bottom half.  ``MAX_IMAGE_PIXELS`` is disabled
    because :func:`_check_pixel_limit` runs right after the (lazy) open and says how to
    raise the limit.  Both are restored afterwards.
    """
    with _PILLOW_GLOBALS_LOCK:
        saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
        Image.MAX_IMAGE_PIXELS = None
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _read_error(source: Path, exc: BaseException) -> ImageError:
    """Translate whatever the decoder raised into one sentence naming the file."""
    prefix = f"cannot read {source}"
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return ImageError(f"{prefix}: the image is above the pixel limit; raise it with --max-pixels")
    if isinstance(exc, (_FormatProblem, Png16Error)):
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
    """Refuse oversized images using the header's size only (nothing decoded yet)."""
    count = width * height
    if count > max_pixels:
        raise ImageError(
            f"cannot read {source}: image is {width}×{height} = {count:,} pixels, "
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
    width, height = im.size
    _check_pixel_limit(source, width, height, max_pixels)
    notes: list[str] = []
    frames = _frame_count(im)
    if frames > 1:
        if not allow_animated:
            raise ImageError(f"cannot read {source}: animated image with {frames} frames is not accepted")
        notes.append(ANIMATED_WARNING)
    icc = im.info.get("icc_profile") or None
    fmt = "JPEG" if im.format == "MPO" else im.format
    colour_type = png16_colour_type(source) if im.format == "PNG" else None
    if colour_type is not None and colour_type != 0:
        pixels, alpha, exif = _load_png16(im, source, notes)
        mode, depth = _PNG16_MODE_NAMES[colour_type], 16
    else:
        im.load()  # decode errors (truncation) surface here, before EXIF handling
        oriented, exif = _apply_exif_orientation(im, notes)
        pixels, alpha, depth = _pixels_from_pil(oriented, notes, fmt)
        mode = im.mode
    if icc is not None and _icc_colour_space(icc) == b"CMYK":
        icc = None  # it describes the CMYK numbers we no longer have
        notes.append("the embedded CMYK colour profile was dropped (the image is now RGB)")
    return LoadedImage(
        pixels=pixels,
        alpha=alpha,
        mode=mode,
        bit_depth=depth,
        icc_profile=icc,
        exif=exif,
        format=fmt,
        source=source,
        warnings=notes,
    )


def _apply_exif_orientation(im: Image.Image, notes: list[str]) -> tuple[Image.Image, bytes | None]:
    """Rotate/flip as EXIF says and return the EXIF block with that tag consumed.

    Unparseable EXIF must not cost the user their image: it is dropped with a note.
    """
    try:
        oriented = ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001 - any EXIF parser failure means "no usable EXIF"
        notes.append("the EXIF metadata is unreadable; it was ignored (orientation not applied)")
        return im, None
    return oriented, _normalise_exif(oriented.info.get("exif"))


def _normalise_exif(exif: bytes | None) -> bytes | None:
    """Give EXIF one spelling (with the APP1 ``Exif\\0\\0`` prefix), None when absent."""
    if not exif:
        return None
    return exif if exif.startswith(_EXIF_PREFIX) else _EXIF_PREFIX + exif


def _pixels_from_pil(
    im: Image.Image, notes: list[str], fmt: str | None
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Turn any supported Pillow mode into (pixels, alpha, bit_depth) per the design contract."""
    mode = im.mode
    if mode in _GRAY16_MODES or (mode == "I" and fmt == "PNG"):
        return _gray16_from_pil(im)
    target = _TARGET_MODE.get(mode)
    if target is None:
        raise _FormatProblem(
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
        raise _FormatProblem("unsupported mode 'I' with values outside 0..65535")
    gray = arr.astype(np.uint16)
    key = im.info.get("transparency")
    alpha = None
    if isinstance(key, int):
        alpha = np.where(gray == key, 0, 0xFFFF).astype(np.uint16)
    return gray, alpha, 16


def _load_png16(
    im: Image.Image, source: Path, notes: list[str]
) -> tuple[np.ndarray, np.ndarray | None, bytes | None]:
    """Decode a 16-bit colour PNG ourselves (Pillow would keep only the high bytes).

    Metadata still comes from Pillow's parse of the header; orientation is applied with
    numpy because the pixels never become a Pillow image.
    """
    pixels, alpha = decode_png16(source.read_bytes())
    try:
        exif_data = im.getexif()
    except Exception:  # noqa: BLE001 - same policy as _apply_exif_orientation
        notes.append("the EXIF metadata is unreadable; it was ignored (orientation not applied)")
        return pixels, alpha, None
    orientation = int(exif_data.get(_ORIENTATION_TAG, 1) or 1)
    pixels = _orient_array(pixels, orientation)
    alpha = None if alpha is None else _orient_array(alpha, orientation)
    if _ORIENTATION_TAG in exif_data:
        del exif_data[_ORIENTATION_TAG]
        exif = _normalise_exif(exif_data.tobytes()) if len(exif_data) else None
    else:
        exif = _normalise_exif(im.info.get("exif"))
    return pixels, alpha, exif


def _orient_array(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1–8) to an H×W[×C] array, exactly as exif_transpose does."""
    transforms: dict[int, Callable[[np.ndarray], np.ndarray]] = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    transform = transforms.get(orientation)
    return arr if transform is None else np.ascontiguousarray(transform(arr))


def _icc_colour_space(profile: bytes) -> bytes | None:
    """The data colour space from an ICC header (``b'RGB '``, ``b'GRAY'``, ``b'CMYK'``…)."""
    return bytes(profile[16:20]) if len(profile) >= 128 else None


# --------------------------------------------------------------------------- writing


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
) -> list[str]:
    """Write an image atomically and return notes about anything that could not be kept.

    ``pixels`` is H×W gray, H×W×3 RGB (or H×W×2 / H×W×4 with alpha last), uint8 or
    uint16, or a PIL image.  ``bit_depth`` defaults to the dtype's; 16 bits survive only
    in PNG (other formats are reduced to 8 with a note).  ``format`` defaults to the
    suffix.  JPEG cannot store alpha, which is dropped with a note.  The ICC profile and
    EXIF (orientation reset to 1, since pixels are stored upright) are carried over.

    The file appears complete or not at all: data goes to a hidden temp file in the same
    directory, is fsynced, then renamed over ``path``.  On any failure, Ctrl-C included,
    the temp file is removed; OS errors become :class:`ImageError`.
    """
    target = Path(path)
    if target.is_dir():
        raise ImageError(f"cannot write {target}: it is a directory")
    fmt = _resolve_format(target, format)
    notes: list[str] = []
    colour, alpha = _split_for_writing(pixels, alpha)
    colour, alpha = _convert_depth(colour, alpha, _resolve_bit_depth(colour, bit_depth))
    colour, alpha = _fit_format(fmt, colour, alpha, notes)
    icc = _icc_for_output(icc_profile, colour, notes)
    exif_bytes = _exif_with_upright_orientation(exif, notes)
    if fmt == "PNG" and colour.dtype == np.uint16:

        def write(fh: BinaryIO) -> None:
            fh.write(encode_png16(colour, alpha, icc, exif_bytes))

    else:
        image = _pil_from_arrays(colour, alpha)
        params = _save_params(fmt, quality, icc, exif_bytes)

        def write(fh: BinaryIO) -> None:
            image.save(fh, format=fmt, **params)

    try:
        atomic_write(target, write)
    except WriteError as exc:
        raise ImageError(str(exc)) from exc.__cause__
    return notes


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
    """Validate input and return (H×W or H×W×3 colour, H×W alpha or None), same dtype."""
    if isinstance(pixels, Image.Image):
        if alpha is not None:
            raise ValueError("pass alpha inside the PIL image, not separately")
        try:
            colour, alpha, _ = _pixels_from_pil(pixels, [], "PNG" if pixels.mode == "I" else None)
        except _FormatProblem as exc:
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
    return np.ascontiguousarray(pixels), None if alpha is None else np.ascontiguousarray(alpha)


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
    """Drop what the target format cannot hold, saying so."""
    if colour.dtype == np.uint16 and fmt != "PNG":
        notes.append(f"{fmt} cannot store 16 bits per channel; the image was written with 8")
        colour, alpha = _convert_depth(colour, alpha, 8)
    if fmt == "JPEG" and alpha is not None:
        notes.append("JPEG has no alpha channel; the transparency was discarded")
        alpha = None
    if fmt == "WEBP" and colour.ndim == 2:  # WebP has no gray mode
        colour = np.repeat(colour[..., None], 3, axis=-1)
    return colour, alpha


def _icc_for_output(profile: bytes | None, colour: np.ndarray, notes: list[str]) -> bytes | None:
    """Keep the profile only if it describes the channels being written (gray vs RGB)."""
    if not profile:
        return None
    expected = b"GRAY" if colour.ndim == 2 else b"RGB "
    space = _icc_colour_space(profile)
    if space != expected:
        kind = "grayscale" if colour.ndim == 2 else "RGB"
        notes.append(f"the ICC profile ({space!r}) does not fit a {kind} image and was not written")
        return None
    return profile


def _exif_with_upright_orientation(exif: bytes | None, notes: list[str]) -> bytes | None:
    """Re-serialise EXIF with orientation 1: written pixels are already upright."""
    if not exif:
        return None
    parsed = Image.Exif()
    try:
        parsed.load(exif)
    except Exception:  # noqa: BLE001 - any parser failure means the block is unusable
        notes.append("the EXIF metadata could not be parsed and was not written")
        return None
    if _ORIENTATION_TAG not in parsed:
        return exif
    parsed[_ORIENTATION_TAG] = 1
    return parsed.tobytes()


def _pil_from_arrays(colour: np.ndarray, alpha: np.ndarray | None) -> Image.Image:
    """An 8-bit L/LA/RGB/RGBA image for Pillow's encoders (16-bit PNG never comes here)."""
    if alpha is None:
        return Image.fromarray(colour)
    planes = colour[..., None] if colour.ndim == 2 else colour
    return Image.fromarray(np.concatenate([planes, alpha[..., None]], axis=-1))


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


def to_float_tensor(pixels: np.ndarray) -> torch.Tensor:
    """H×W or H×W×C uint8/uint16 → 1×C×H×W float32 in [0, 1] (/255 or /65535).

    This and :func:`from_float_tensor` are the only place integer samples meet float
    tensors, so 8- and 16-bit images scale identically everywhere in LiteSR.
    """
    if pixels.dtype == np.uint8:
        scale = 255.0
    elif pixels.dtype == np.uint16:
        scale = 65535.0
    else:
        raise TypeError(f"expected uint8 or uint16 pixels, got {pixels.dtype}")
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or not 1 <= pixels.shape[2] <= 4:
        raise ValueError(f"expected H×W or H×W×C (C in 1..4) pixels, got shape {pixels.shape}")
    tensor = torch.from_numpy(pixels.astype(np.float32))  # astype copies: writable, contiguous
    tensor.div_(scale)
    return tensor.permute(2, 0, 1).unsqueeze(0).contiguous()


def from_float_tensor(tensor: torch.Tensor, dtype: np.dtype | type | str) -> np.ndarray:
    """1×C×H×W (or C×H×W) float tensor in [0, 1] → H×W×C (H×W when C == 1) uint8/uint16.

    Values are clamped to [0, 1] (NaN → 0: a model glitch must not become random bytes),
    scaled by 255 or 65535 and rounded half-to-even with ``torch.round``.
    """
    target = np.dtype(dtype)
    if target not in (np.uint8, np.uint16):
        raise TypeError(f"dtype must be uint8 or uint16, got {target}")
    if tensor.ndim == 4:
        if tensor.shape[0] != 1:
            raise ValueError(f"expected a batch of one image, got batch size {tensor.shape[0]}")
        tensor = tensor[0]
    if tensor.ndim != 3:
        raise ValueError(f"expected a 1×C×H×W or C×H×W tensor, got shape {tuple(tensor.shape)}")
    scale = 255.0 if target == np.uint8 else 65535.0
    values = torch.nan_to_num(tensor.detach().to("cpu", torch.float32), nan=0.0)
    values = torch.round(values.clamp_(0.0, 1.0).mul_(scale)).to(torch.int32)
    array = values.permute(1, 2, 0).numpy().astype(target)
    return array[..., 0] if array.shape[2] == 1 else array
