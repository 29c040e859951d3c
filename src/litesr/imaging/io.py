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

import contextlib
import os
import struct
import threading
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageFile, UnidentifiedImageError

from ..errors import LiteSRError
from .atomic import OutputExistsError, WriteError, atomic_write, os_error_reason
from .png16 import Png16Error, Png16PixelLimitError, decode_png16, encode_png16, png16_colour_type

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
#: Formats whose mode ``I`` (32-bit signed in Pillow) holds unsigned 16-bit gray: Pillow
#: opens 16-bit PGM (format PPM) that way, and older Pillows 16-bit gray PNG.  A TIFF in
#: mode ``I`` really is 32-bit and is refused.
_UNSIGNED_16BIT_I_FORMATS = frozenset({"PNG", "PPM"})
#: Where Pillow's modules live: warnings raised from there are Pillow's (see _pillow_warnings).
_PILLOW_PACKAGE_DIR = os.path.dirname(Image.__file__) + os.sep
#: Every ICC profile starts with a 128-byte header.
_ICC_HEADER_BYTES = 128
#: Formats Pillow writes from its 16-bit gray mode (``I;16``): TIFF, and PGM (format PPM).
_GRAY16_PILLOW_FORMATS = frozenset({"TIFF", "PPM"})
#: Formats that cannot store more than 8 bits per channel at all.
_FORMATS_8BIT_ONLY = frozenset({"JPEG", "WEBP", "GIF"})
#: Writable formats with no alpha channel.
_FORMATS_WITHOUT_ALPHA = frozenset({"JPEG", "PPM"})
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

#: Pillow's safety switches and the warnings filters are process-wide globals; reads and
#: writes hold this lock while they are set to LiteSR's values so concurrent calls
#: (threads) cannot observe or undo each other's.
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
    with _pillow_guards(), _pillow_warnings() as pillow_messages:
        try:
            with Image.open(source) as im:
                image = _load_opened(im, source, max_pixels, allow_animated_first_frame)
        except ImageError:
            raise
        except _READ_ERRORS as exc:
            raise _read_error(source, exc, max_pixels) from exc
    image.warnings += _notes_from_pillow(pillow_messages)
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
    Image.DecompressionBombWarning,  # raised, not warned: see _pillow_warnings
    _FormatProblem,
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
    """Make truncated files fail and put the size limit under LiteSR's control.

    ``LOAD_TRUNCATED_IMAGES`` is forced off because a half-downloaded photo must not be
    upscaled into a result with a gray bottom half.  ``MAX_IMAGE_PIXELS`` starts
    disabled so that the open itself never refuses: :func:`_check_pixel_limit` runs right
    after it with a message that gives the size and how to raise the limit; then
    :func:`_hold_pillow_to_limit` sets it for the decoding.  Both are restored afterwards.
    """
    with _PILLOW_GLOBALS_LOCK:
        saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
        Image.MAX_IMAGE_PIXELS = None
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _hold_pillow_to_limit(max_pixels: int) -> None:
    """From now on, anything Pillow allocates from sizes inside the file obeys ``max_pixels``.

    Pillow checks ``MAX_IMAGE_PIXELS`` wherever a plugin allocates from a size it found
    past the main header; it warns above the limit (an error under
    :func:`_pillow_warnings`) and raises above twice it.  Only valid inside
    :func:`_pillow_guards`, which restores the global.
    """
    Image.MAX_IMAGE_PIXELS = max_pixels


@contextlib.contextmanager
def _pillow_warnings() -> Iterator[list[str]]:
    """Collect what Pillow warns inside the block; the list is filled when the block exits.

    Pillow reports damaged metadata ("Corrupt EXIF data.  Expecting to read 12 bytes…")
    through :mod:`warnings`, without naming the file; a batch run would print it out of
    context.  Its messages are returned (whitespace tidied) for the caller to turn into
    notes on the image; other libraries' warnings are passed on unchanged.  Pillow's
    :class:`~PIL.Image.DecompressionBombWarning` is raised instead: it means a plugin is
    about to allocate more pixels than the limit allows.

    The warnings machinery is process-wide, like Pillow's switches, so this holds the
    same lock: two threads saving and restoring the filters out of order would leave
    them changed for good.
    """
    messages: list[str] = []
    caught: list[warnings.WarningMessage] = []
    try:
        with _PILLOW_GLOBALS_LOCK, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield messages
    finally:
        for warning in caught:
            if warning.filename.startswith(_PILLOW_PACKAGE_DIR):
                messages.append(" ".join(str(warning.message).split()))
            else:
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def _read_error(source: Path, exc: BaseException, max_pixels: int) -> ImageError:
    """Translate whatever the decoder raised into one sentence naming the file."""
    prefix = f"cannot read {source}"
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return ImageError(
            f"{prefix}: decoding it needs more than the limit of {max_pixels:,} pixels; raise it with --max-pixels"
        )
    if isinstance(exc, Png16PixelLimitError):
        return _pixel_limit_error(source, exc.width, exc.height, max_pixels)
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
    """Refuse an image of ``width``×``height`` (declared or decoded) above the limit."""
    if width * height > max_pixels:
        raise _pixel_limit_error(source, width, height, max_pixels)


def _pixel_limit_error(source: Path, width: int, height: int, max_pixels: int) -> ImageError:
    """The one wording of "too many pixels", whichever check caught it."""
    return ImageError(
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
    _hold_pillow_to_limit(max_pixels)
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
        pixels, alpha, depth = _pixels_from_pil(im, notes, fmt)
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
        icc_profile=_embedded_icc_profile(im, notes),
        exif=exif,
        format=fmt,
        source=source,
        warnings=notes,
    )


def read_exif(im: Image.Image, notes: list[str]) -> tuple[int, bytes | None]:
    """The EXIF orientation and the EXIF block with that tag consumed (it is applied to the pixels).

    Unparseable EXIF must not cost the user their image: it is dropped with a note.  A
    block Pillow parses only in part ("Corrupt EXIF data", noted by :func:`read_image`
    from Pillow's warning) is re-serialised from its readable tags, so the damaged bytes
    are not copied to the output.
    """
    try:
        exif = im.getexif()
    except Exception:  # noqa: BLE001 - any EXIF parser failure means "no usable EXIF"
        notes.append("the EXIF metadata is unreadable; it was ignored (orientation not applied)")
        return 1, None
    raw = _normalise_exif(im.info.get("exif"))
    if _ORIENTATION_TAG in exif or (raw is not None and _exif_is_damaged(raw)):
        orientation = _orientation_value(exif.pop(_ORIENTATION_TAG, 1))
        return orientation, _normalise_exif(exif.tobytes()) if len(exif) else None
    return 1, raw


def _parse_exif(raw: bytes) -> tuple[Image.Exif, list[str]]:
    """Parse an EXIF block; also return what Pillow complained about (empty when sound).

    Raises whatever Pillow's parser raises when nothing at all is usable.
    """
    parsed = Image.Exif()
    with _pillow_warnings() as problems:
        parsed.load(raw)
    return parsed, problems


def _exif_is_damaged(raw: bytes) -> bool:
    try:
        return bool(_parse_exif(raw)[1])
    except Exception:  # noqa: BLE001 - unparseable is damaged
        return True


def _corrupt_exif_note(problems: list[str], outcome: str) -> str:
    """The one wording for EXIF that Pillow could read only in part."""
    return f"the EXIF metadata is corrupt ({'; '.join(dict.fromkeys(problems))}); {outcome}"


def _notes_from_pillow(messages: list[str]) -> list[str]:
    """One note per distinct problem Pillow warned about while reading; EXIF damage in plain words."""
    distinct = list(dict.fromkeys(messages))
    exif = [message for message in distinct if "EXIF" in message]
    notes = [_corrupt_exif_note(exif, "its unreadable part was ignored")] if exif else []
    return notes + [f"the decoder warned: {message}" for message in distinct if "EXIF" not in message]


def _orientation_value(tag: object) -> int:
    """EXIF orientation 1–8; anything malformed means "as stored" (1)."""
    return tag if isinstance(tag, int) and 1 <= tag <= 8 else 1


def _normalise_exif(exif: bytes | None) -> bytes | None:
    """Give EXIF one spelling (with the APP1 ``Exif\\0\\0`` prefix), None when absent."""
    if not exif:
        return None
    return exif if exif.startswith(_EXIF_PREFIX) else _EXIF_PREFIX + exif


def _embedded_icc_profile(im: Image.Image, notes: list[str]) -> bytes | None:
    """The file's ICC profile if it is one that can be carried to the output, else None with a note."""
    profile = im.info.get("icc_profile") or None
    if profile is None:
        return None
    problem = _icc_problem(profile)
    if problem is not None:
        notes.append(f"the embedded ICC profile {problem}; it was ignored")
        return None
    if _icc_colour_space(profile) == b"CMYK":
        notes.append("the embedded CMYK colour profile was dropped (the image is now RGB)")
        return None  # it describes the CMYK numbers we no longer have
    return profile


def _pixels_from_pil(
    im: Image.Image, notes: list[str], fmt: str | None
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Turn any supported Pillow mode into (pixels, alpha, bit_depth) per the design contract."""
    mode = im.mode
    if mode in _GRAY16_MODES or (mode == "I" and fmt in _UNSIGNED_16BIT_I_FORMATS):
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


def orient_array(arr: np.ndarray, orientation: int) -> np.ndarray:
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


def _icc_problem(profile: bytes) -> str | None:
    """Why ``profile`` is not a usable ICC profile, as a phrase, or None if it looks valid.

    Checked from the 128-byte header alone: long enough for one, and carrying the ``acsp``
    signature every ICC profile has at byte 36.
    """
    if len(profile) < _ICC_HEADER_BYTES or profile[36:40] != b"acsp":
        return f"is invalid ({len(profile)} bytes, not an ICC profile)"
    return None


def _icc_colour_space(profile: bytes) -> bytes:
    """The data colour space from a valid ICC header (``b'RGB '``, ``b'GRAY'``, ``b'CMYK'``…)."""
    return bytes(profile[16:20])


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

    with _pillow_warnings() as encoder_messages:
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
    """Drop what the target format (or Pillow's encoder for it) cannot hold, saying so."""
    if fmt in _FORMATS_WITHOUT_ALPHA and alpha is not None:
        notes.append(f"{fmt} has no alpha channel; the transparency was discarded")
        alpha = None
    if colour.dtype == np.uint16:
        reason = _why_not_16_bits(fmt, colour, alpha)
        if reason is not None:
            notes.append(f"{reason}; the image was written with 8 bits per channel")
            colour, alpha = _convert_depth(colour, alpha, 8)
    if fmt == "WEBP" and colour.ndim == 2:  # WebP has no gray mode
        colour = np.repeat(colour[..., None], 3, axis=-1)
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


def _icc_for_output(profile: bytes | None, colour: np.ndarray, notes: list[str]) -> bytes | None:
    """Keep the profile only if it is valid and describes the channels being written (gray vs RGB)."""
    if not profile:
        return None
    problem = _icc_problem(profile)
    if problem is not None:
        notes.append(f"the ICC profile {problem}; it was not written")
        return None
    expected = b"GRAY" if colour.ndim == 2 else b"RGB "
    space = _icc_colour_space(profile)
    if space != expected:
        kind = "grayscale" if colour.ndim == 2 else "RGB"
        described = space.decode("latin-1").strip() or "unknown"
        notes.append(f"the ICC profile is for {described} data, which does not fit a {kind} image; it was not written")
        return None
    return profile


def _exif_with_upright_orientation(exif: bytes | None, notes: list[str]) -> bytes | None:
    """Re-serialise EXIF with orientation 1: written pixels are already upright.

    A block Pillow parses only in part is written as its readable tags (as
    :func:`read_image` keeps it), with a note instead of Pillow's file-less warning.
    """
    if not exif:
        return None
    try:
        parsed, problems = _parse_exif(exif)
    except Exception:  # noqa: BLE001 - any parser failure means the block is unusable
        notes.append("the EXIF metadata could not be parsed and was not written")
        return None
    if problems:
        notes.append(_corrupt_exif_note(problems, "only its readable tags were written"))
    elif _ORIENTATION_TAG not in parsed:
        return exif
    if _ORIENTATION_TAG in parsed:
        parsed[_ORIENTATION_TAG] = 1
    return parsed.tobytes() if len(parsed) else None


def _pil_from_arrays(colour: np.ndarray, alpha: np.ndarray | None) -> Image.Image:
    """An L/LA/RGB/RGBA (8-bit) or I;16 (16-bit gray) image for Pillow's encoders."""
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
