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
  cannot write them at all (checked with Pillow 13.0: a 16-bit RGB PNG opens as mode
  ``RGB`` holding only the high bytes, 16-bit RGBA as 8-bit ``RGBA`` and 16-bit
  gray+alpha as 8-bit ``RGBA``).  An upscaler that claims to keep bit depth must
  therefore carry a small PNG decoder/encoder for exactly those cases; 16-bit gray is
  native in Pillow (mode ``I;16``) and is left to it when reading.
* Outputs are written atomically, so an interrupted run never leaves a half-written
  file that looks like a finished result.
"""
from __future__ import annotations

import contextlib
import os
import struct
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

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
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

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
#: PNG colour types this module decodes/encodes itself at 16 bits: gray, RGB, gray+alpha, RGBA.
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}
_PNG16_MODE_NAMES = {0: "I;16", 2: "RGB;16", 4: "LA;16", 6: "RGBA;16"}

#: Pillow's safety switches are process-wide globals; reads hold this lock while they are
#: set to LiteSR's values so concurrent reads (threads) cannot observe each other's.
_PILLOW_GLOBALS_LOCK = threading.RLock()


class ImageError(Exception):
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
)


def _check_is_nonempty_file(source: Path) -> None:
    """Give the common path mistakes their own message instead of Pillow's generic one."""
    try:
        st = source.stat()
    except FileNotFoundError:
        raise ImageError(f"cannot read {source}: no such file") from None
    except OSError as exc:
        raise ImageError(f"cannot read {source}: {_reason(exc)}") from None
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
    if isinstance(exc, _FormatProblem):
        return ImageError(f"{prefix}: {exc}")
    if isinstance(exc, UnidentifiedImageError):
        return ImageError(f"{prefix}: not a recognised image format")
    if isinstance(exc, MemoryError):
        return ImageError(f"{prefix}: not enough memory to decode it")
    if isinstance(exc, OSError) and "truncated" in str(exc):
        return ImageError(f"{prefix}: the file is truncated (incomplete download or copy?)")
    if isinstance(exc, OSError) and exc.errno is not None:
        return ImageError(f"{prefix}: {_reason(exc)}")
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
    colour_type = _png16_colour_type(source) if im.format == "PNG" else None
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
    pixels, alpha = _decode_png16(source.read_bytes())
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


def _png16_colour_type(source: Path) -> int | None:
    """The PNG colour type if the file is a 16-bit PNG, else None (reads only the header)."""
    with open(source, "rb") as fh:
        head = fh.read(29)
    if len(head) < 29 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    bit_depth, colour_type = head[24], head[25]
    return colour_type if bit_depth == 16 and colour_type in _PNG_CHANNELS else None


def _icc_colour_space(profile: bytes) -> bytes | None:
    """The data colour space from an ICC header (``b'RGB '``, ``b'GRAY'``, ``b'CMYK'``…)."""
    return bytes(profile[16:20]) if len(profile) >= 128 else None


# ----------------------------------------------------------- minimal 16-bit PNG codec
#
# Only what Pillow lacks: 16-bit-per-sample PNGs of colour types 0/2/4/6, interlaced or
# not.  Chunk CRCs are verified and a missing IEND counts as truncation.

_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
#: Sizes the wavefront bands (see _unfilter): scratch is about 3× this many bytes per band.
_WAVEFRONT_BAND_BYTES = 1 << 24
_IDAT_CHUNK_BYTES = 1 << 23


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Yield (type, payload) for each chunk up to IEND, verifying lengths and CRCs."""
    if not data.startswith(_PNG_SIGNATURE):
        raise _FormatProblem("not a PNG file")
    pos = len(_PNG_SIGNATURE)
    while True:
        if pos + 8 > len(data):
            raise _FormatProblem("the PNG is truncated (no IEND chunk)")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise _FormatProblem(f"the PNG is truncated (cut off in its {ctype.decode('latin-1')} chunk)")
        payload = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(ctype + payload) != crc:
            raise _FormatProblem(f"the PNG is corrupt (bad CRC in a {ctype.decode('latin-1')} chunk)")
        yield ctype, payload
        if ctype == b"IEND":
            return
        pos = end


def _decode_png16(data: bytes) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode a 16-bit PNG to (pixels H×W or H×W×3 uint16, alpha H×W uint16 or None)."""
    header: tuple[int, ...] | None = None
    idat: list[bytes] = []
    trns: bytes | None = None
    for ctype, payload in _png_chunks(data):
        if ctype == b"IHDR":
            header = struct.unpack(">IIBBBBB", payload)
        elif ctype == b"IDAT":
            idat.append(payload)
        elif ctype == b"tRNS":
            trns = payload
    if header is None or not idat:
        raise _FormatProblem("the PNG has no IHDR or no image data")
    width, height, depth, colour_type, _, _, interlace = header
    if depth != 16 or colour_type not in _PNG_CHANNELS or interlace not in (0, 1):
        raise _FormatProblem(f"not a 16-bit PNG this decoder handles (depth {depth}, colour type {colour_type})")
    channels = _PNG_CHANNELS[colour_type]
    bpp = 2 * channels
    passes = [(0, 0, 1, 1)] if interlace == 0 else list(_ADAM7)
    raw = _inflate(b"".join(idat), sum(_pass_bytes(width, height, p, bpp) for p in passes))
    samples = np.empty((height, width, bpp), np.uint8)
    offset = 0
    for x0, y0, dx, dy in passes:
        pw, ph = _pass_size(width, height, (x0, y0, dx, dy))
        if pw == 0 or ph == 0:
            continue
        n = ph * (1 + pw * bpp)
        samples[y0::dy, x0::dx] = _unfilter(np.frombuffer(raw, np.uint8, n, offset), ph, pw, bpp)
        offset += n
    values = samples.view(">u2").reshape(height, width, channels).astype(np.uint16)
    return _split_png_channels(values, colour_type, trns)


def _pass_size(width: int, height: int, adam7_pass: tuple[int, int, int, int]) -> tuple[int, int]:
    x0, y0, dx, dy = adam7_pass
    return max(0, -(-(width - x0) // dx)), max(0, -(-(height - y0) // dy))


def _pass_bytes(width: int, height: int, adam7_pass: tuple[int, int, int, int], bpp: int) -> int:
    pw, ph = _pass_size(width, height, adam7_pass)
    return 0 if pw == 0 or ph == 0 else ph * (1 + pw * bpp)


def _inflate(compressed: bytes, expected: int) -> bytes:
    """zlib-decompress at most ``expected`` bytes (so a lying stream cannot balloon)."""
    inflater = zlib.decompressobj()
    raw = inflater.decompress(compressed, expected)
    if len(raw) < expected:
        raise _FormatProblem("the PNG image data is truncated")
    return raw


def _split_png_channels(
    values: np.ndarray, colour_type: int, trns: bytes | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Separate colour from alpha; a tRNS colour key (types 0 and 2) becomes alpha."""
    if colour_type in (4, 6):
        colour = values[..., :-1]
        alpha: np.ndarray | None = np.ascontiguousarray(values[..., -1])
    else:
        colour, alpha = values, None
        if trns is not None and len(trns) == 2 * values.shape[-1]:
            key = np.frombuffer(trns, ">u2").astype(np.uint16)
            alpha = np.where(np.all(values == key, axis=-1), 0, 0xFFFF).astype(np.uint16)
    if colour.shape[-1] == 1:
        colour = colour[..., 0]
    return np.ascontiguousarray(colour), alpha


def _unfilter(raw: np.ndarray, height: int, width: int, bpp: int) -> np.ndarray:
    """Undo PNG row filters; returns (H, W, bpp) uint8 reconstructed bytes.

    Files that use only None/Sub/Up filters (ours, and many encoders') are undone with
    whole-image numpy operations.  Average and Paeth depend on the pixel to the left *and*
    the row above, so those go through a diagonal wavefront instead of a per-pixel loop.
    """
    rows = raw.reshape(height, 1 + width * bpp)
    ftypes = rows[:, 0].copy()
    if ftypes.max(initial=0) > 4:
        raise _FormatProblem(f"the PNG is corrupt (unknown row filter {int(ftypes.max())})")
    filtered = rows[:, 1:].reshape(height, width, bpp)
    if ftypes.max(initial=0) <= 2:
        return _unfilter_sub_up(filtered, ftypes)
    out = np.empty_like(filtered)
    prior = np.zeros((width, bpp), np.uint8)
    band = max(1, min(height, _WAVEFRONT_BAND_BYTES // max(1, (width + height) * bpp)))
    for r0 in range(0, height, band):
        r1 = min(height, r0 + band)
        out[r0:r1] = _unfilter_wavefront(filtered[r0:r1], ftypes[r0:r1], prior)
        prior = out[r1 - 1]
    return out


def _unfilter_sub_up(filtered: np.ndarray, ftypes: np.ndarray) -> np.ndarray:
    """Vectorised undo for filters 0 (None), 1 (Sub) and 2 (Up); uint8 arithmetic wraps mod 256.

    Sub rows are a running sum along the row.  A run of Up rows after an "anchor" row
    (None/Sub) is a running sum down the columns, i.e. ``P[r] - P[anchor-1]`` where ``P``
    is the cumulative sum over rows of (anchor values, Up residuals).
    """
    height = filtered.shape[0]
    base = filtered.copy()
    sub = ftypes == 1
    if sub.any():
        base[sub] = np.cumsum(filtered[sub], axis=1, dtype=np.uint8)
    up = ftypes == 2
    if not up.any():
        return base
    prefix = np.cumsum(base, axis=0, dtype=np.uint8)
    anchor = np.maximum.accumulate(np.where(up, 0, np.arange(height)))
    # P[anchor-1], with P[-1] = 0; Up rows above the first anchor get anchor 0 and so,
    # correctly, subtract nothing (their row above is the implicit zero row)
    before_anchor = np.concatenate([np.zeros_like(prefix[:1]), prefix[:-1]])[anchor]
    return prefix - before_anchor


def _unfilter_wavefront(filtered: np.ndarray, ftypes: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Undo any mix of filters 0–4 for one band of rows, one anti-diagonal at a time.

    Pixel (i, x) needs (i, x-1), (i-1, x) and (i-1, x-1): all on the two previous
    anti-diagonals, so each diagonal is one vectorised step.  Arrays are skewed so that
    ``S[i + x + 2, i + 1]`` holds pixel (i, x); row 0 holds ``prior`` (the row above the
    band) and the extra leading diagonals are the zero left border.
    """
    h, w, bpp = filtered.shape
    diagonals = h + w + 1
    skew_f = np.zeros((diagonals, h, bpp), np.int16)
    recon = np.zeros((diagonals, h + 1, bpp), np.uint8)
    for i in range(h):
        skew_f[i + 2 : i + 2 + w, i] = filtered[i]
    recon[1 : w + 1, 0] = prior
    masks = [(ftypes == t)[:, None] for t in range(1, 5)]
    want_avg, want_paeth = bool(masks[2].any()), bool(masks[3].any())
    for s in range(2, h + w + 1):
        a = recon[s - 1, 1:].astype(np.int16)  # left
        b = recon[s - 1, :-1].astype(np.int16)  # up
        c = recon[s - 2, :-1].astype(np.int16)  # up-left
        pred = np.where(masks[0], a, 0) + np.where(masks[1], b, 0)
        if want_avg:
            pred += np.where(masks[2], (a + b) >> 1, 0)
        if want_paeth:
            pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
            paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
            pred += np.where(masks[3], paeth, 0)
        recon[s, 1:] = (skew_f[s] + pred) & 0xFF
    out = np.empty_like(filtered)
    for i in range(h):
        out[i] = recon[i + 2 : i + 2 + w, i + 1]
    return out


def _png_chunk(ctype: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + ctype + payload + struct.pack(">I", zlib.crc32(ctype + payload))


def _encode_png16(
    pixels: np.ndarray, alpha: np.ndarray | None, icc_profile: bytes | None, exif: bytes | None
) -> bytes:
    """Encode uint16 gray/RGB (+alpha) as a 16-bit PNG: IHDR, iCCP, eXIf, IDAT…, IEND.

    Rows use the Sub filter: as simple to produce as None (one vectorised difference)
    but it compresses smooth 16-bit photos noticeably better.
    """
    planes = pixels[..., None] if pixels.ndim == 2 else pixels
    if alpha is not None:
        planes = np.concatenate([planes, alpha[..., None]], axis=-1)
    height, width, channels = planes.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    bpp = 2 * channels
    data = np.ascontiguousarray(planes, dtype=">u2").view(np.uint8).reshape(height, width * bpp)
    rows = np.empty((height, 1 + width * bpp), np.uint8)
    rows[:, 0] = 1
    rows[:, 1 : 1 + bpp] = data[:, :bpp]
    np.subtract(data[:, bpp:], data[:, :-bpp], out=rows[:, 1 + bpp :])
    compressed = zlib.compress(rows.tobytes(), 6)
    out = [_PNG_SIGNATURE, _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0))]
    if icc_profile:
        out.append(_png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc_profile)))
    if exif:
        out.append(_png_chunk(b"eXIf", exif.removeprefix(_EXIF_PREFIX)))
    for start in range(0, len(compressed), _IDAT_CHUNK_BYTES):
        out.append(_png_chunk(b"IDAT", compressed[start : start + _IDAT_CHUNK_BYTES]))
    out.append(_png_chunk(b"IEND", b""))
    return b"".join(out)


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
            fh.write(_encode_png16(colour, alpha, icc, exif_bytes))

    else:
        image = _pil_from_arrays(colour, alpha)
        params = _save_params(fmt, quality, icc, exif_bytes)

        def write(fh: BinaryIO) -> None:
            image.save(fh, format=fmt, **params)

    _atomic_write(target, write)
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


def _atomic_write(target: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write via ``.<name>.<random>.tmp`` + fsync + os.replace; never leave debris."""
    directory = target.parent
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except FileNotFoundError as exc:
        raise ImageError(f"cannot write {target}: the folder {directory} does not exist") from exc
    except OSError as exc:
        raise ImageError(f"cannot write {target}: {_reason(exc)}") from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _new_file_mode(target))  # mkstemp's 0600 would surprise users
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise ImageError(f"cannot write {target}: {_reason(exc)}") from exc
        raise
    _fsync_directory(directory)


def _new_file_mode(target: Path) -> int:
    """Keep an existing file's permissions; otherwise what open() would give (0666 & ~umask)."""
    with contextlib.suppress(OSError):
        return target.stat().st_mode & 0o7777
    return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_directory(directory: Path) -> None:
    """Persist the rename itself (POSIX); silently skipped where directories can't be opened."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _reason(exc: OSError) -> str:
    """The OS's words for an error ("Permission denied"), not Python's repr."""
    return exc.strerror.lower() if exc.strerror else str(exc)


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
