"""A minimal decoder for 16-bit-per-sample PNGs, the ones Pillow gets wrong.

Why it exists: Pillow silently reduces 16-bit-per-channel colour PNGs to 8 bits when
reading and cannot write them at all (checked with Pillow 13.0: a 16-bit RGB PNG opens
as mode ``RGB`` holding only the high bytes, 16-bit RGBA as 8-bit ``RGBA`` and 16-bit
gray+alpha as 8-bit ``RGBA``).  An upscaler that claims to keep bit depth therefore
carries this small decoder; :mod:`litesr.imaging.io` uses it for exactly those files
and leaves everything else, 16-bit gray included, to Pillow when reading.  Writing, at
any depth, is :mod:`litesr.imaging.png`'s streaming encoder.

Scope: 16-bit PNGs of colour types 0/2/4/6 (gray, RGB, gray+alpha, RGBA), interlaced
(Adam7) or not, every row filter.  Chunk CRCs are verified and a missing IEND counts as
truncation.  Samples are plain numpy arrays: colour H×W or H×W×3 uint16, alpha H×W
uint16 or None.

Hostile files: the decoder reads users' files, so nothing it allocates may be chosen by
the file alone.  IHDR must come first and only once (a second one used to let a file
pass a size check on the first and decode the second), its dimensions must be within
the PNG limits, the caller's pixel limit is checked before any pixel buffer exists, and
inflating stops at the exact raw size the header implies, so a zlib bomb in IDAT costs
no more than an honest image of the declared size.

Public API: :func:`png16_colour_type` (header sniff), :func:`decode_png16`,
:class:`Png16Error` and :class:`Png16PixelLimitError`.
"""
from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator

import numpy as np

from .png import PNG_MAX_DIMENSION, PNG_SIGNATURE

__all__ = ["Png16Error", "Png16PixelLimitError", "decode_png16", "png16_colour_type"]

#: PNG colour types handled at 16 bits and their channel counts: gray, RGB, gray+alpha, RGBA.
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}
#: Length of an IHDR payload: width, height, depth, colour type, compression, filter, interlace.
_IHDR_LENGTH = 13
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
#: Sizes the wavefront bands (see _unfilter): scratch is about 3× this many bytes per band.
_WAVEFRONT_BAND_BYTES = 1 << 24


class Png16Error(ValueError):
    """The data is not a 16-bit PNG this codec can decode (corrupt, truncated, other kind).

    The message is a phrase without a file name, for the caller to prefix with one.
    """


class Png16PixelLimitError(Png16Error):
    """The header declares more pixels than the caller allowed; nothing was decoded.

    Carries the numbers so the caller can word the refusal its own way (the CLI names
    its ``--max-pixels`` option).
    """

    def __init__(self, width: int, height: int, limit: int) -> None:
        super().__init__(f"the image is {width}×{height} pixels, above the limit of {limit:,}")
        self.width, self.height, self.limit = width, height, limit


def png16_colour_type(source: str | os.PathLike[str]) -> int | None:
    """The PNG colour type if the file is a 16-bit PNG, else None (reads only the header)."""
    with open(source, "rb") as fh:
        head = fh.read(29)
    if len(head) < 29 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    bit_depth, colour_type = head[24], head[25]
    return colour_type if bit_depth == 16 and colour_type in _PNG_CHANNELS else None


def _chunk_name(ctype: bytes) -> str:
    return ctype.decode("latin-1")


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Yield (type, payload) for each chunk up to IEND, verifying lengths and CRCs."""
    if not data.startswith(PNG_SIGNATURE):
        raise Png16Error("not a PNG file")
    pos = len(PNG_SIGNATURE)
    while True:
        if pos + 8 > len(data):
            raise Png16Error("the PNG is truncated (no IEND chunk)")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise Png16Error(f"the PNG is truncated (cut off in its {_chunk_name(ctype)} chunk)")
        payload = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(ctype + payload) != crc:
            raise Png16Error(f"the PNG is corrupt (bad CRC in a {_chunk_name(ctype)} chunk)")
        yield ctype, payload
        if ctype == b"IEND":
            return
        pos = end


#: What decoding needs from IHDR: width, height, colour type, interlace method.
_Header = tuple[int, int, int, int]


def _parse_ihdr(payload: bytes) -> _Header:
    """Validate an IHDR payload; only what this decoder can really decode gets through."""
    if len(payload) != _IHDR_LENGTH:
        raise Png16Error(f"the PNG is corrupt (its IHDR chunk is {len(payload)} bytes, not {_IHDR_LENGTH})")
    width, height, depth, colour_type, compression, filter_method, interlace = struct.unpack(">IIBBBBB", payload)
    if not (0 < width <= PNG_MAX_DIMENSION and 0 < height <= PNG_MAX_DIMENSION):
        raise Png16Error(f"the PNG is corrupt (its header declares an impossible size of {width}×{height})")
    if depth != 16 or colour_type not in _PNG_CHANNELS:
        raise Png16Error(f"not a 16-bit PNG this decoder handles (depth {depth}, colour type {colour_type})")
    if compression != 0 or filter_method != 0 or interlace not in (0, 1):
        raise Png16Error(
            f"the PNG is corrupt (unknown compression {compression}, filter method {filter_method} "
            f"or interlace method {interlace})"
        )
    return width, height, colour_type, interlace


def decode_png16(data: bytes, *, max_pixels: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode a 16-bit PNG to (pixels H×W or H×W×3 uint16, alpha H×W uint16 or None).

    Gray+alpha and RGBA files give their last channel as alpha; a tRNS colour key in a
    gray or RGB file becomes an alpha of 0 (keyed) / 65535.  With ``max_pixels``, a
    header declaring more pixels raises :class:`Png16PixelLimitError` before anything is
    inflated or allocated.  Every problem raises :class:`Png16Error`.
    """
    header: _Header | None = None
    idat: list[bytes] = []
    trns: bytes | None = None
    for ctype, payload in _png_chunks(data):
        if header is None and ctype != b"IHDR":
            raise Png16Error(f"the PNG is corrupt (its first chunk is {_chunk_name(ctype)}, not IHDR)")
        if ctype == b"IHDR":
            if header is not None:
                raise Png16Error("the PNG is corrupt (it has more than one IHDR chunk)")
            header = _parse_ihdr(payload)
        elif ctype == b"IDAT":
            idat.append(payload)
        elif ctype == b"tRNS":
            trns = payload
    if header is None or not idat:
        raise Png16Error("the PNG has no IHDR or no image data")
    width, height, colour_type, interlace = header
    if max_pixels is not None and width * height > max_pixels:
        raise Png16PixelLimitError(width, height, max_pixels)
    channels = _PNG_CHANNELS[colour_type]
    bpp = 2 * channels
    passes = [(0, 0, 1, 1)] if interlace == 0 else list(_ADAM7)
    raw = _inflate(idat, sum(_pass_bytes(width, height, p, bpp) for p in passes))
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


def _inflate(idat: list[bytes], expected: int) -> bytes:
    """zlib-decompress the IDAT stream into exactly ``expected`` bytes, never more.

    ``max_length`` stops the inflater at the size the (already size-checked) header
    implies, so a stream that would inflate to gigabytes (a "zlib bomb") costs no more
    than an honest image; data beyond it is ignored, as libpng does.
    """
    try:
        raw = zlib.decompressobj().decompress(b"".join(idat), expected)
    except zlib.error as exc:
        raise Png16Error(f"the PNG image data is corrupt ({exc})") from None
    if len(raw) < expected:
        raise Png16Error("the PNG image data is truncated")
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
        raise Png16Error(f"the PNG is corrupt (unknown row filter {int(ftypes.max())})")
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
