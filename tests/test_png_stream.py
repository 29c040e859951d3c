"""Tests for litesr.imaging.png: the streaming PNG encoder behind every PNG LiteSR writes.

Pixels are checked against independent decoders (Pillow for 8 bits, the project's
16-bit decoder, itself tested against a separate writer in tests/test_png16.py), the
filter choice against a row-by-row reference, and memory against the image size.
"""
from __future__ import annotations

import io
import struct
import tracemalloc
import zlib
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image
from test_png16 import _filter_rows as reference_filter_rows

from litesr.imaging import png
from litesr.imaging.png import PNG_SIGNATURE, write_png
from litesr.imaging.png16 import decode_png16

RNG = np.random.default_rng(4321)


def random_samples(dtype: type, *shape: int) -> np.ndarray:
    return RNG.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)


def encode(pixels: np.ndarray, alpha: np.ndarray | None = None, **metadata: bytes) -> bytes:
    buffer = io.BytesIO()
    write_png(buffer, pixels, alpha, **metadata)
    return buffer.getvalue()


def chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, payload) of every chunk, asserting each length and CRC."""
    assert data.startswith(PNG_SIGNATURE)
    pos = len(PNG_SIGNATURE)
    while pos < len(data):
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        payload = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert len(payload) == length and zlib.crc32(ctype + payload) == crc, ctype
        yield ctype, payload
        pos += 12 + length


def filtered_stream(data: bytes) -> bytes:
    """The inflated IDAT stream: each row's filter type followed by its filtered bytes."""
    return zlib.decompress(b"".join(payload for ctype, payload in chunks(data) if ctype == b"IDAT"))


def stacked(colour: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    planes = colour[..., None] if colour.ndim == 2 else colour
    return planes if alpha is None else np.concatenate([planes, alpha[..., None]], axis=-1)


def split(values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """H×W×C (C = 1..4) → (colour, alpha) as write_png takes them."""
    channels = values.shape[-1]
    colour = values[..., 0] if channels in (1, 2) else values[..., :3]
    return colour, (values[..., -1] if channels in (2, 4) else None)


SHAPES = [(1, 1), (3, 5), (17, 9)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_8bit_round_trips_through_pillow(shape: tuple[int, int], channels: int) -> None:
    values = random_samples(np.uint8, *shape, channels)
    data = encode(*split(values))
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
        decoded = np.asarray(im)
    np.testing.assert_array_equal(decoded.reshape(values.shape), values)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_round_trips_through_the_decoder(shape: tuple[int, int], channels: int) -> None:
    values = random_samples(np.uint16, *shape, channels)
    values.flat[:3] = [0, 0x00FF, 0xFF00][: values.size]  # the byte order matters
    data = encode(*split(values))
    np.testing.assert_array_equal(stacked(*decode_png16(data)), values)
    with Image.open(io.BytesIO(data)) as im:  # a valid PNG for other readers too
        im.load()
        assert im.size == (shape[1], shape[0])


def test_header_declares_depth_and_colour_type() -> None:
    for dtype, depth in ((np.uint8, 8), (np.uint16, 16)):
        for channels, colour_type in ((1, 0), (2, 4), (3, 2), (4, 6)):
            data = encode(*split(random_samples(dtype, 2, 3, channels)))
            ctype, payload = next(chunks(data))
            assert ctype == b"IHDR"
            assert struct.unpack(">IIBBBBB", payload) == (3, 2, depth, colour_type, 0, 0, 0)


def filter_candidates(rows: np.ndarray, bpp: int) -> Iterator[tuple[int, bytes]]:
    """(filter type, filtered row with its type byte) for each row and filter, from test_png16's writer."""
    for filter_type in (0, 1, 2, 4):
        yield filter_type, reference_filter_rows(rows, bpp, [filter_type] * len(rows))


def reference_stream(values: np.ndarray) -> bytes:
    """The filtered stream Pillow's rule gives: per row, the least sum of |byte as int8|, first on ties."""
    rows = np.ascontiguousarray(values, dtype=">u2" if values.dtype == np.uint16 else np.uint8)
    rows = rows.view(np.uint8).reshape(values.shape[0], -1)
    bpp = values.shape[2] * values.itemsize
    out = []
    for index in range(len(rows)):
        pair = rows[max(0, index - 1) : index + 1]  # the row and the one above it, if any
        best = None
        for _, filtered in filter_candidates(pair, bpp):
            row = np.frombuffer(filtered[-(1 + rows.shape[1]) :], np.uint8)
            cost = int(np.minimum(row[1:], 256 - row[1:].astype(np.int32)).sum())
            if best is None or cost < best[0]:
                best = (cost, row.tobytes())
        out.append(best[1])
    return b"".join(out)


def image_for_every_filter() -> np.ndarray:
    """Rows each filter wins on: zeros (None), ramps with random offsets (Sub), repeats (Up), planes (Paeth)."""
    y, x = np.mgrid[0:4, 0:40]
    zeros = np.zeros((2, 40), np.uint8)
    ramps = (x * 2 + RNG.integers(0, 256, (4, 1))).astype(np.uint8)
    repeats = np.repeat(RNG.integers(0, 256, (1, 40)), 4, axis=0).astype(np.uint8)
    plane = (x * 3 + y * 5).astype(np.uint8)
    gray = np.concatenate([RNG.integers(0, 256, (1, 40), dtype=np.uint8), zeros, ramps, repeats, plane])
    return np.repeat(gray[..., None], 3, axis=-1)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_rows_are_filtered_as_the_reference_chooses(dtype: type, monkeypatch: pytest.MonkeyPatch) -> None:
    values = image_for_every_filter().astype(dtype) * (257 if dtype == np.uint16 else 1)
    monkeypatch.setattr(png, "_BAND_BYTES", 5 * values.shape[1] * values.shape[2] * values.itemsize)  # several bands
    stream = filtered_stream(encode(values))
    assert stream == reference_stream(values)
    row_length = 1 + values.shape[1] * values.shape[2] * values.itemsize
    assert set(stream[::row_length]) == {0, 1, 2, 4}  # every filter is exercised (Average never, as in Pillow)


def test_bands_and_idat_chunks_join_seamlessly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(png, "_BAND_BYTES", 1)  # one row per band
    monkeypatch.setattr(png, "_IDAT_CHUNK_BYTES", 64)
    values = random_samples(np.uint16, 23, 11, 4)
    data = encode(*split(values))
    types = [ctype for ctype, _ in chunks(data)]
    assert types[0] == b"IHDR" and types[-1] == b"IEND" and types.count(b"IDAT") > 10
    assert all(len(payload) == 64 for ctype, payload in list(chunks(data))[1:-2] if ctype == b"IDAT")
    np.testing.assert_array_equal(stacked(*decode_png16(data)), values)


def test_views_are_written_as_their_values() -> None:
    """Colour and alpha split out of one H×W×4 array need no copy and give the same file."""
    for dtype in (np.uint8, np.uint16):
        rgba = random_samples(dtype, 9, 7, 4)
        assert encode(rgba[..., :3], rgba[..., 3]) == encode(rgba[..., :3].copy(), rgba[..., 3].copy())
        assert encode(rgba[::2, ::3, 1]) == encode(np.ascontiguousarray(rgba[::2, ::3, 1]))


def test_icc_and_exif_are_written(tmp_path) -> None:
    icc = b"\x00" * 16 + b"RGB " + b"\x00" * 108
    exif = Image.Exif()
    exif[0x010F] = "LiteSR-Test"
    for dtype in (np.uint8, np.uint16):
        data = encode(random_samples(dtype, 2, 2, 3), icc_profile=icc, exif=exif.tobytes())
        types = [ctype for ctype, _ in chunks(data)]
        assert types[:3] == [b"IHDR", b"iCCP", b"eXIf"]
        assert dict(chunks(data))[b"eXIf"] == exif.tobytes().removeprefix(b"Exif\x00\x00")
        with Image.open(io.BytesIO(data)) as im:
            assert im.info["icc_profile"] == icc
            assert im.getexif()[0x010F] == "LiteSR-Test"


class CountingSink:
    """A file that keeps only the byte count, so measured memory is the encoder's own."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)


def test_memory_is_bounded_by_the_band_not_the_image(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(png, "_BAND_BYTES", 1 << 15)
    monkeypatch.setattr(png, "_IDAT_CHUNK_BYTES", 1 << 15)
    values = random_samples(np.uint16, 512, 512, 4)  # 2 MiB, incompressible
    colour, alpha = split(values)
    sink = CountingSink()
    tracemalloc.start()
    try:
        write_png(sink, colour, alpha)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sink.size > values.nbytes  # the whole image went through
    assert peak < 1 << 20, f"peak {peak:,} bytes for a {values.nbytes:,}-byte image"


def test_photo_like_image_is_about_as_small_as_pillows() -> None:
    """Same filter rule and zlib settings as Pillow, so the files match in size to well under 1 %."""
    coarse = RNG.integers(0, 256, (12, 16, 3)).astype(np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((320, 240), Image.BICUBIC))
    photo = np.clip(smooth + RNG.normal(0, 3, smooth.shape), 0, 255).astype(np.uint8)
    pillow = io.BytesIO()
    Image.fromarray(photo).save(pillow, format="PNG")
    assert len(encode(photo)) <= 1.01 * len(pillow.getvalue())


@pytest.mark.parametrize(
    ("pixels", "alpha", "problem"),
    [
        (np.zeros((2, 2), np.float32), None, "uint8 or uint16"),
        (np.zeros((2, 2, 4), np.uint8), None, "H×W or H×W×3"),
        (np.zeros((0, 2), np.uint8), None, "cannot be 2×0"),
        (np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8), "alpha must be"),
        (np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint16), "alpha must be"),
    ],
)
def test_arrays_without_a_png_form_are_refused_before_writing(pixels, alpha, problem: str) -> None:
    sink = CountingSink()
    with pytest.raises(ValueError, match=problem):
        write_png(sink, pixels, alpha)
    assert sink.size == 0
