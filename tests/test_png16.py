"""Tests for litesr.imaging.png16: the 16-bit PNG decoder Pillow lacks (the encoder: tests/test_png_stream.py)."""
from __future__ import annotations

import struct
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from litesr.imaging import png16
from litesr.imaging.png import PNG_SIGNATURE
from litesr.imaging.png16 import Png16Error, Png16PixelLimitError, decode_png16, png16_colour_type

RNG = np.random.default_rng(1234)


def rand16(*shape: int) -> np.ndarray:
    return RNG.integers(0, 65536, shape, dtype=np.uint16)


# ------------------------------------------------------------ independent PNG writer
# Written separately from LiteSR's encoder so the decoder is checked against every row
# filter (0–4) in any order and Adam7 interlacing, which that encoder never emits.
# tests/test_imaging_io.py imports png16_bytes and png_chunk from here.


def png_chunk(ctype: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + ctype + payload + struct.pack(">I", zlib.crc32(ctype + payload))


def _filter_rows(rows: np.ndarray, bpp: int, filters: list[int]) -> bytes:
    """Apply PNG filters to reconstructed rows (all known up front, so vectorisable)."""
    out = []
    prev = np.zeros(rows.shape[1], np.int32)
    for row, ftype in zip(rows.astype(np.int32), filters):
        left = np.concatenate([np.zeros(bpp, np.int32), row[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int32), prev[:-bpp]])
        if ftype == 0:
            pred = np.zeros_like(row)
        elif ftype == 1:
            pred = left
        elif ftype == 2:
            pred = prev
        elif ftype == 3:
            pred = (left + prev) // 2
        else:
            p = left + prev - upleft
            pa, pb, pc = np.abs(p - left), np.abs(p - prev), np.abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
        out.append(bytes([ftype]) + ((row - pred) % 256).astype(np.uint8).tobytes())
        prev = row
    return b"".join(out)


def png16_bytes(values: np.ndarray, filters="random", interlace: bool = False, trns: bytes | None = None) -> bytes:
    """A 16-bit PNG of H×W×C values (C = 1, 2, 3, 4) using the given row filters."""
    height, width, channels = values.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    bpp = 2 * channels
    passes = [(0, 0, 1, 1)] if not interlace else png16._ADAM7
    stream = b""
    for x0, y0, dx, dy in passes:
        sub = values[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        rows = np.ascontiguousarray(sub, dtype=">u2").view(np.uint8).reshape(sub.shape[0], -1)
        fl = list(RNG.integers(0, 5, sub.shape[0])) if filters == "random" else [filters[i % len(filters)] for i in range(sub.shape[0])]
        stream += _filter_rows(rows, bpp, [int(f) for f in fl])
    ihdr = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, int(interlace))
    parts = [PNG_SIGNATURE, png_chunk(b"IHDR", ihdr)]
    if trns is not None:
        parts.append(png_chunk(b"tRNS", trns))
    parts += [png_chunk(b"IDAT", zlib.compress(stream)), png_chunk(b"IEND", b"")]
    return b"".join(parts)


def ihdr(width: int, height: int, depth: int = 16, colour_type: int = 6, interlace: int = 0) -> bytes:
    """An IHDR chunk with any values, valid or not."""
    return png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, interlace))


def zero_idat(width: int, height: int, channels: int = 4) -> bytes:
    """An IDAT chunk holding an all-zero, unfiltered 16-bit image of that size."""
    return png_chunk(b"IDAT", zlib.compress(bytes(height * (1 + width * 2 * channels))))


def zlib_bomb(size: int) -> bytes:
    """A zlib stream of ``size`` zero bytes, compressed ~1000:1 without ever holding them all."""
    compressor = zlib.compressobj(9)
    block = bytes(1 << 20)
    parts = [compressor.compress(block) for _ in range(size >> 20)]
    return b"".join([*parts, compressor.flush()])


def forged_png(*chunks: bytes) -> bytes:
    """Signature + the given chunks + IEND, for files no honest encoder writes."""
    return PNG_SIGNATURE + b"".join(chunks) + png_chunk(b"IEND", b"")


def peak_traced_bytes(action: Callable[[], object]) -> int:
    """Peak Python/numpy memory allocated while ``action`` runs (it may raise)."""
    tracemalloc.start()
    try:
        action()
    except Exception:  # noqa: BLE001 - the callers assert on the error separately
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def stack(pixels: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """(colour, alpha) as decode_png16 returns them → one H×W×C array."""
    restored = pixels[..., None] if pixels.ndim == 2 else pixels
    if alpha is not None:
        restored = np.concatenate([restored, alpha[..., None]], axis=-1)
    return restored


# ------------------------------------------------------------------------ decoder


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (9, 17), (16, 3)])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_decoder_handles_every_filter_and_adam7(shape: tuple[int, int], channels: int) -> None:
    values = rand16(*shape, channels)
    for interlace in (False, True):
        for filters in ("random", [0, 1, 2], [3], [4], [2, 4, 3, 1]):
            pixels, alpha = decode_png16(png16_bytes(values, filters, interlace))
            restored = pixels[..., None] if pixels.ndim == 2 else pixels
            if alpha is not None:
                restored = np.concatenate([restored, alpha[..., None]], axis=-1)
            np.testing.assert_array_equal(restored, values, err_msg=f"{filters} interlace={interlace}")


def test_wavefront_bands_join_correctly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(png16, "_WAVEFRONT_BAND_BYTES", 1)  # one row per band
    values = rand16(11, 6, 3)
    pixels, _ = decode_png16(png16_bytes(values, [4, 3, 2, 1, 0]))
    np.testing.assert_array_equal(pixels, values)


def test_decoder_agrees_with_pillow_on_pillow_written_16bit_gray(tmp_path: Path) -> None:
    y, x = np.mgrid[0:40, 0:50]
    gray = ((x * 1000 + y * 777 + (x * y) % 97) % 65536).astype(np.uint16)  # smooth → adaptive filters
    Image.fromarray(gray).save(tmp_path / "p.png")
    pixels, alpha = decode_png16((tmp_path / "p.png").read_bytes())
    np.testing.assert_array_equal(pixels, gray)
    assert alpha is None


def test_decoder_turns_a_colour_key_into_alpha() -> None:
    values = np.array([[[1, 2, 3], [4, 5, 6]]], np.uint16)
    pixels, alpha = decode_png16(png16_bytes(values, [0], trns=struct.pack(">3H", 1, 2, 3)))
    np.testing.assert_array_equal(pixels, values)
    np.testing.assert_array_equal(alpha, [[0, 65535]])


def test_decoder_errors_are_png16_errors() -> None:
    good = png16_bytes(rand16(8, 8, 3), [0])
    bad_crc = bytearray(good)
    bad_crc[-20] ^= 0xFF  # inside IDAT
    cases = {
        b"GIF89a" + good[6:]: "not a PNG",
        bytes(bad_crc): "corrupt",
        good[: len(good) // 2]: "truncated",
        good[:-12]: "truncated",  # IEND missing
    }
    for data, words in cases.items():
        with pytest.raises(Png16Error, match=words):
            decode_png16(data)
    assert issubclass(Png16Error, ValueError)


# ------------------------------------------------------------------ hostile files
# A few hundred bytes must not make the decoder allocate what the file alone chooses.

MB = 1 << 20


@pytest.mark.parametrize("second", [(8000, 8000), (0, 0)])
@pytest.mark.parametrize("before_idat", [True, False])
def test_a_second_ihdr_is_refused(second: tuple[int, int], before_idat: bool) -> None:
    # the file: the first header says 1×1, a later one 8000×8000 (or 0×0)
    later = [ihdr(*second), zero_idat(1, 1)] if before_idat else [zero_idat(1, 1), ihdr(*second)]
    data = forged_png(ihdr(1, 1), *later)
    with pytest.raises(Png16Error, match="more than one IHDR"):
        decode_png16(data)
    assert peak_traced_bytes(lambda: decode_png16(data)) < MB


def test_ihdr_must_be_the_first_chunk() -> None:
    with pytest.raises(Png16Error, match="first chunk is tEXt, not IHDR"):
        decode_png16(forged_png(png_chunk(b"tEXt", b"a\x00b"), ihdr(1, 1), zero_idat(1, 1)))


@pytest.mark.parametrize("size", [(0, 0), (0, 5), (5, 0), (2**31, 1), (1, 2**32 - 1)])
def test_impossible_dimensions_are_refused(size: tuple[int, int]) -> None:
    with pytest.raises(Png16Error, match=f"impossible size of {size[0]}×{size[1]}"):
        decode_png16(forged_png(ihdr(*size), zero_idat(1, 1)))


def test_malformed_ihdr_and_header_fields_are_png16_errors() -> None:
    short = png_chunk(b"IHDR", struct.pack(">II", 1, 1))
    with pytest.raises(Png16Error, match="IHDR chunk is 8 bytes, not 13"):
        decode_png16(forged_png(short, zero_idat(1, 1)))
    with pytest.raises(Png16Error, match="interlace method 7"):
        decode_png16(forged_png(ihdr(1, 1, interlace=7), zero_idat(1, 1)))
    with pytest.raises(Png16Error, match="depth 8"):
        decode_png16(forged_png(ihdr(1, 1, depth=8), zero_idat(1, 1)))


def test_pixel_limit_is_checked_before_anything_is_allocated() -> None:
    # 8000×8000 RGBA16 would be 512 MB of samples (and as much again while inflating)
    data = forged_png(ihdr(8000, 8000), png_chunk(b"IDAT", zlib.compress(bytes(1000))))
    with pytest.raises(Png16PixelLimitError) as info:
        decode_png16(data, max_pixels=100)
    assert (info.value.width, info.value.height, info.value.limit) == (8000, 8000, 100)
    assert "8000×8000" in str(info.value) and isinstance(info.value, Png16Error)
    assert peak_traced_bytes(lambda: decode_png16(data, max_pixels=100)) < MB
    pixels, alpha = decode_png16(forged_png(ihdr(10, 10), zero_idat(10, 10)), max_pixels=100)  # at the limit: fine
    assert pixels.shape == (10, 10, 3) and alpha is not None


def test_zlib_bomb_inflates_no_more_than_the_declared_size() -> None:
    # 32 MiB of zeros behind a 64×64 RGBA16 header (33 KB of raw rows): extra data is
    # ignored, as libpng does, and never inflated
    data = forged_png(ihdr(64, 64), png_chunk(b"IDAT", zlib_bomb(32 * MB)))
    assert len(data) < 64 * 1024
    pixels, alpha = decode_png16(data)
    assert pixels.shape == (64, 64, 3) and not pixels.any() and not alpha.any()
    assert peak_traced_bytes(lambda: decode_png16(data)) < 2 * MB


def test_corrupt_or_short_image_data_is_a_png16_error() -> None:
    with pytest.raises(Png16Error, match="image data is corrupt"):
        decode_png16(forged_png(ihdr(4, 4), png_chunk(b"IDAT", b"not a zlib stream")))
    with pytest.raises(Png16Error, match="image data is truncated"):
        decode_png16(forged_png(ihdr(4, 4), png_chunk(b"IDAT", zlib.compress(bytes(10)))))


# ---------------------------------------------------------------------- header sniff


def test_colour_type_is_none_for_anything_but_16bit_png(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "8.png")
    (tmp_path / "short.png").write_bytes(PNG_SIGNATURE)
    (tmp_path / "g16.png").write_bytes(png16_bytes(rand16(2, 2, 1), [0]))
    assert png16_colour_type(tmp_path / "8.png") is None
    assert png16_colour_type(tmp_path / "short.png") is None
    assert png16_colour_type(str(tmp_path / "g16.png")) == 0
