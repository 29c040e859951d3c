"""Tests for litesr.imaging.io: every image file LiteSR reads or writes goes through it.

The PNG encoder, the 16-bit PNG decoder and atomic writing have their own modules and
tests (tests/test_png_stream.py, tests/test_png16.py, tests/test_atomic.py); what is here
checks io's use of them.
"""
from __future__ import annotations

import io
import os
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms, ImageFile, ImageOps
from test_png16 import png16_bytes, png_chunk

from litesr.errors import LiteSRError
from litesr.imaging import io as iio
from litesr.imaging import writing
from litesr.imaging.io import (
    ANIMATED_WARNING,
    ImageError,
    from_float_tensor,
    read_image,
    to_float_tensor,
    write_image,
)

RNG = np.random.default_rng(1234)


def rand8(*shape: int) -> np.ndarray:
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def rand16(*shape: int) -> np.ndarray:
    return RNG.integers(0, 65536, shape, dtype=np.uint16)


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def exif_bytes(orientation: int | None, make: str = "LiteSR-Test") -> bytes:
    exif = Image.Exif()
    exif[0x010F] = make
    if orientation is not None:
        exif[0x0112] = orientation
    return exif.tobytes()


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# ------------------------------------------------------------------ 8-bit round trips


def test_rgb_png_round_trip(tmp_path: Path) -> None:
    pixels = rand8(7, 5, 3)
    assert write_image(tmp_path / "a.png", pixels) == []
    img = read_image(tmp_path / "a.png")
    assert img.pixels.dtype == np.uint8 and img.pixels.shape == (7, 5, 3)
    np.testing.assert_array_equal(img.pixels, pixels)
    assert (img.alpha, img.mode, img.bit_depth, img.format) == (None, "RGB", 8, "PNG")
    assert img.source == tmp_path / "a.png" and img.warnings == []
    assert img.pixels.flags.writeable


def test_gray_png_round_trip(tmp_path: Path) -> None:
    pixels = rand8(4, 6)
    write_image(tmp_path / "g.png", pixels)
    img = read_image(tmp_path / "g.png")
    assert img.mode == "L" and img.pixels.shape == (4, 6) and img.alpha is None
    np.testing.assert_array_equal(img.pixels, pixels)


def test_la_file_splits_alpha(tmp_path: Path) -> None:
    arr = rand8(3, 4, 2)
    Image.fromarray(arr, "LA").save(tmp_path / "la.png")
    img = read_image(tmp_path / "la.png")
    assert img.mode == "LA" and img.pixels.shape == (3, 4)
    np.testing.assert_array_equal(img.pixels, arr[..., 0])
    np.testing.assert_array_equal(img.alpha, arr[..., 1])
    write_image(tmp_path / "la2.png", img.pixels, alpha=img.alpha)
    again = read_image(tmp_path / "la2.png")
    np.testing.assert_array_equal(again.alpha, arr[..., 1])
    assert again.mode == "LA"


def test_rgba_round_trip_and_channels_last_alpha(tmp_path: Path) -> None:
    rgba = rand8(5, 3, 4)
    write_image(tmp_path / "a.png", rgba)  # H×W×4 means RGB + alpha
    img = read_image(tmp_path / "a.png")
    assert img.mode == "RGBA"
    np.testing.assert_array_equal(img.pixels, rgba[..., :3])
    np.testing.assert_array_equal(img.alpha, rgba[..., 3])


def test_palette_with_transparency_becomes_rgb_plus_alpha(tmp_path: Path) -> None:
    im = Image.new("P", (3, 2))
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    im.putdata([0, 1, 2, 2, 1, 0])
    im.save(tmp_path / "p.png", transparency=1)
    img = read_image(tmp_path / "p.png")
    assert img.mode == "P" and img.pixels.shape == (2, 3, 3)
    np.testing.assert_array_equal(img.pixels[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(img.pixels[0, 2], [0, 0, 255])
    np.testing.assert_array_equal(img.alpha, [[255, 0, 255], [255, 0, 255]])


def test_palette_without_transparency_is_plain_rgb(tmp_path: Path) -> None:
    Image.fromarray(rand8(4, 4, 3)).convert("P").save(tmp_path / "p.png")
    img = read_image(tmp_path / "p.png")
    assert img.pixels.shape == (4, 4, 3) and img.alpha is None


def test_rgb_colour_key_becomes_alpha(tmp_path: Path) -> None:
    Image.fromarray(np.array([[[1, 2, 3], [4, 5, 6]]], np.uint8)).save(tmp_path / "k.png", transparency=(1, 2, 3))
    img = read_image(tmp_path / "k.png")
    np.testing.assert_array_equal(img.alpha, [[0, 255]])


def test_cmyk_becomes_rgb_with_warning(tmp_path: Path) -> None:
    Image.new("CMYK", (2, 2), (0, 255, 255, 0)).save(tmp_path / "c.tif")
    img = read_image(tmp_path / "c.tif")
    assert img.mode == "CMYK" and img.pixels.shape == (2, 2, 3)
    np.testing.assert_array_equal(img.pixels[0, 0], [255, 0, 0])
    assert any("CMYK" in w for w in img.warnings)


def test_cmyk_jpeg_reads_as_rgb(tmp_path: Path) -> None:
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    img = read_image(tmp_path / "c.jpg")
    assert img.pixels.shape == (8, 8, 3) and img.format == "JPEG"
    assert img.pixels[4, 4, 0] > 240 and img.pixels[4, 4, 1] < 15


def test_bilevel_becomes_gray(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).convert("1").save(tmp_path / "b.png")
    img = read_image(tmp_path / "b.png")
    assert img.mode == "1" and img.pixels.dtype == np.uint8
    np.testing.assert_array_equal(img.pixels, [[0, 255], [255, 0]])


@pytest.mark.parametrize("mode", ["F", "I"])
def test_32bit_modes_are_refused(tmp_path: Path, mode: str) -> None:
    Image.new(mode, (3, 3)).save(tmp_path / "x.tif")
    with pytest.raises(ImageError, match="unsupported mode"):
        read_image(tmp_path / "x.tif")


# --------------------------------------------------------------------- 16-bit PNG


def test_pillow_reduces_16bit_rgb_png_which_is_why_we_decode_it(tmp_path: Path) -> None:
    values = np.array([[[0x1234, 0xABCD, 0xFFFF]]], np.uint16)
    (tmp_path / "x.png").write_bytes(png16_bytes(values, filters=[0]))
    with Image.open(tmp_path / "x.png") as im:  # documents the Pillow behaviour we work around
        assert im.mode == "RGB"
        assert np.array(im).dtype == np.uint8
    img = read_image(tmp_path / "x.png")
    assert img.bit_depth == 16 and img.mode == "RGB;16"
    np.testing.assert_array_equal(img.pixels, values[..., :3])


def test_16bit_gray_round_trip_and_interop(tmp_path: Path) -> None:
    pixels = rand16(5, 7)
    pixels[0, :3] = [0, 1, 65535]
    write_image(tmp_path / "g16.png", pixels)
    img = read_image(tmp_path / "g16.png")
    assert (img.mode, img.bit_depth, img.pixels.dtype) == ("I;16", 16, np.uint16)
    np.testing.assert_array_equal(img.pixels, pixels)
    with Image.open(tmp_path / "g16.png") as im:  # Pillow agrees with our encoder
        np.testing.assert_array_equal(np.array(im), pixels)


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_16bit_colour_round_trip(tmp_path: Path, channels: int) -> None:
    values = rand16(6, 9, channels)
    values[0, 0] = 0
    values[0, 1] = 65535
    values[0, 2] = 0x00FF  # same high byte as 0x0000: only 16 bits tell them apart
    write_image(tmp_path / "c.png", values)
    img = read_image(tmp_path / "c.png")
    assert img.bit_depth == 16 and img.pixels.dtype == np.uint16
    assert img.mode == {2: "LA;16", 3: "RGB;16", 4: "RGBA;16"}[channels]
    colour = values[..., 0] if channels == 2 else values[..., :3]
    np.testing.assert_array_equal(img.pixels, colour)
    if channels == 3:
        assert img.alpha is None
    else:
        np.testing.assert_array_equal(img.alpha, values[..., -1])
    with Image.open(tmp_path / "c.png") as im:  # a valid PNG for other readers too
        im.load()
        assert im.size == (9, 6)


def test_16bit_rgb_colour_key_becomes_alpha(tmp_path: Path) -> None:
    values = np.array([[[1, 2, 3], [4, 5, 6]]], np.uint16)
    (tmp_path / "k.png").write_bytes(png16_bytes(values, [0], trns=struct.pack(">3H", 1, 2, 3)))
    img = read_image(tmp_path / "k.png")
    np.testing.assert_array_equal(img.alpha, [[0, 65535]])


def test_16bit_gray_colour_key_becomes_alpha(tmp_path: Path) -> None:
    Image.fromarray(np.array([[7, 300]], np.uint16)).save(tmp_path / "k.png", transparency=300)
    img = read_image(tmp_path / "k.png")
    assert img.alpha.dtype == np.uint16
    np.testing.assert_array_equal(img.alpha, [[65535, 0]])


def test_corrupt_16bit_png_is_an_image_error(tmp_path: Path) -> None:
    data = bytearray(png16_bytes(rand16(8, 8, 3), [0]))
    data[-20] ^= 0xFF  # inside IDAT: CRC no longer matches
    (tmp_path / "bad.png").write_bytes(bytes(data))
    with pytest.raises(ImageError, match="corrupt"):
        read_image(tmp_path / "bad.png")


# ------------------------------------------------------- 16-bit gray: PGM and TIFF


def test_16bit_pgm_reads_as_uint16_gray(tmp_path: Path) -> None:
    values = np.array([[0, 1, 255, 256], [4095, 32768, 65534, 65535]], np.uint16)
    (tmp_path / "g.pgm").write_bytes(b"P5\n4 2\n65535\n" + values.astype(">u2").tobytes())
    with Image.open(tmp_path / "g.pgm") as im:  # Pillow's mode for it, refused before issue 12
        assert im.mode == "I"
    img = read_image(tmp_path / "g.pgm")
    assert (img.mode, img.bit_depth, img.pixels.dtype, img.alpha) == ("I", 16, np.uint16, None)
    np.testing.assert_array_equal(img.pixels, values)


@pytest.mark.parametrize("name", ["g16.tif", "g16.pgm"])
def test_16bit_gray_tiff_and_pgm_round_trip(tmp_path: Path, name: str) -> None:
    pixels = rand16(5, 7)
    pixels[0, :3] = [0, 1, 65535]
    assert write_image(tmp_path / name, pixels) == []
    with Image.open(tmp_path / name) as im:  # really 16 bits in the file, for any reader
        assert im.mode in ("I;16", "I") and im.format == ("TIFF" if name.endswith(".tif") else "PPM")
    img = read_image(tmp_path / name)
    assert img.bit_depth == 16 and img.pixels.dtype == np.uint16
    np.testing.assert_array_equal(img.pixels, pixels)


def test_16bit_colour_tiff_falls_back_to_8_bits_and_says_why(tmp_path: Path) -> None:
    # Pillow has no 16-bit RGB (or gray+alpha) image mode, so it cannot write one
    for name, pixels, alpha in [("c.tif", rand16(4, 4, 3), None), ("ga.tif", rand16(4, 4), rand16(4, 4))]:
        notes = write_image(tmp_path / name, pixels, alpha=alpha)
        assert notes == [
            "Pillow writes 16-bit TIFF only for gray images without alpha (use .png to keep 16 bits in colour "
            "or with alpha); the image was written with 8 bits per channel"
        ]
        img = read_image(tmp_path / name)
        assert img.bit_depth == 8
        np.testing.assert_array_equal(img.pixels, ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8))


def test_pgm_drops_alpha_and_keeps_16_bits(tmp_path: Path) -> None:
    pixels = rand16(3, 3)
    notes = write_image(tmp_path / "a.pgm", pixels, alpha=np.zeros((3, 3), np.uint16))
    assert notes == ["PPM has no alpha channel; the transparency was discarded"]
    np.testing.assert_array_equal(read_image(tmp_path / "a.pgm").pixels, pixels)


# ------------------------------------------------------------------- orientation


def test_exif_orientation_6_is_applied_and_consumed(tmp_path: Path) -> None:
    pixels = rand8(2, 3, 3)  # H=2, W=3
    Image.fromarray(pixels).save(tmp_path / "o.png", exif=exif_bytes(6))
    img = read_image(tmp_path / "o.png")
    assert img.pixels.shape == (3, 2, 3)
    # orientation 6 = rotate 90° clockwise: the old bottom-left corner is the new top-left
    np.testing.assert_array_equal(img.pixels[0, 0], pixels[1, 0])
    np.testing.assert_array_equal(img.pixels[0, 1], pixels[0, 0])
    np.testing.assert_array_equal(img.pixels, np.rot90(pixels, -1))
    exif = Image.Exif()
    exif.load(img.exif)
    assert 0x0112 not in exif and exif[0x010F] == "LiteSR-Test"


def test_exif_orientation_on_16bit_png(tmp_path: Path) -> None:
    values = rand16(2, 3, 4)
    write_image(tmp_path / "o.png", values)
    data = (tmp_path / "o.png").read_bytes()
    exif = Image.Exif()
    exif[0x0112] = 6
    chunk = png_chunk(b"eXIf", exif.tobytes()[6:])
    (tmp_path / "o.png").write_bytes(data[:33] + chunk + data[33:])  # right after IHDR
    img = read_image(tmp_path / "o.png")
    np.testing.assert_array_equal(img.pixels, np.rot90(values[..., :3], -1))
    np.testing.assert_array_equal(img.alpha, np.rot90(values[..., 3], -1))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_numpy_orientation_matches_pillow(orientation: int) -> None:
    pixels = rand8(3, 5, 3)
    im = Image.fromarray(pixels)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.info["exif"] = exif.tobytes()
    expected = np.array(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(iio.orient_array(pixels, orientation), expected)


# ---------------------------------------------------------------- metadata on write


@pytest.mark.parametrize("name", ["i.png", "i.jpg", "i.webp", "i16.png"])
def test_icc_profile_survives_write_and_read(tmp_path: Path, name: str) -> None:
    icc = srgb_icc()
    pixels = rand16(8, 8, 3) if "16" in name else rand8(8, 8, 3)
    assert write_image(tmp_path / name, pixels, icc_profile=icc) == []
    assert read_image(tmp_path / name).icc_profile == icc


def test_icc_that_does_not_fit_is_dropped_with_a_note(tmp_path: Path) -> None:
    notes = write_image(tmp_path / "g.png", rand8(4, 4), icc_profile=srgb_icc())
    assert any("ICC" in n for n in notes)
    assert read_image(tmp_path / "g.png").icc_profile is None


@pytest.mark.parametrize("name", ["e.jpg", "e.png", "e.webp", "e16.png"])
def test_exif_is_written_with_orientation_1(tmp_path: Path, name: str) -> None:
    pixels = rand16(4, 6, 3) if "16" in name else rand8(4, 6, 3)
    write_image(tmp_path / name, pixels, exif=exif_bytes(6))
    with Image.open(tmp_path / name) as im:
        exif = im.getexif()
        assert exif[0x0112] == 1 and exif[0x010F] == "LiteSR-Test"
    assert read_image(tmp_path / name).pixels.shape == (4, 6, 3)  # not rotated again


def test_invalid_icc_profile_is_reported_clearly(tmp_path: Path) -> None:
    Image.fromarray(rand8(4, 4, 3)).save(tmp_path / "i.png", icc_profile=b"0123456789")
    img = read_image(tmp_path / "i.png")
    assert img.icc_profile is None
    assert img.warnings == ["the embedded ICC profile is invalid (10 bytes, not an ICC profile); it was ignored"]
    notes = write_image(tmp_path / "o.png", img.pixels, icc_profile=b"0123456789")
    assert notes == ["the ICC profile is invalid (10 bytes, not an ICC profile); it was not written"]
    not_icc = b"\x00" * 16 + b"RGB " + b"\x00" * 108  # long enough, but no 'acsp' signature
    assert "invalid (128 bytes" in write_image(tmp_path / "o.png", img.pixels, icc_profile=not_icc)[0]


def test_icc_profile_for_another_colour_space_names_it(tmp_path: Path) -> None:
    notes = write_image(tmp_path / "g.png", rand8(4, 4), icc_profile=srgb_icc())
    assert notes == ["the ICC profile is for RGB data, which does not fit a grayscale image; it was not written"]


def corrupt_exif() -> bytes:
    """EXIF whose IFD claims 5 entries but holds 1: Pillow reads the first and warns."""
    ifd = struct.pack("<H", 5) + struct.pack("<HHL4s", 0x010F, 2, 4, b"abc\x00")
    return b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8) + ifd


@pytest.mark.parametrize("name", ["e.jpg", "e16.png"])
def test_corrupt_exif_becomes_a_note_not_a_stray_warning(tmp_path: Path, name: str) -> None:
    if name == "e.jpg":
        Image.fromarray(rand8(4, 4, 3)).save(tmp_path / name, exif=corrupt_exif())
    else:  # the 16-bit PNG path reads EXIF on its own
        data = png16_bytes(rand16(4, 4, 3), [0])
        (tmp_path / name).write_bytes(data[:33] + png_chunk(b"eXIf", corrupt_exif()[6:]) + data[33:])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's own "Corrupt EXIF data" warning must not escape
        img = read_image(tmp_path / name)
        assert img.warnings == [
            "the EXIF metadata is corrupt (Corrupt EXIF data. Expecting to read 12 bytes but only got 0.); "
            "its unreadable part was ignored"
        ]
        exif = Image.Exif()
        exif.load(img.exif)  # what is kept parses cleanly, so writing it warns no more
        assert dict(exif) == {0x010F: "abc"}
        assert write_image(tmp_path / f"out-{name}", img.pixels, exif=img.exif) == []


def test_writing_corrupt_exif_keeps_the_readable_tags_with_a_note(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        notes = write_image(tmp_path / "o.jpg", rand8(4, 4, 3), exif=corrupt_exif())
    assert notes == [
        "the EXIF metadata is corrupt (Corrupt EXIF data. Expecting to read 12 bytes but only got 0.); "
        "only its readable tags were written"
    ]
    with Image.open(tmp_path / "o.jpg") as im:
        assert dict(im.getexif()) == {0x010F: "abc"}


def test_pillow_decoder_warnings_become_notes(tmp_path: Path) -> None:
    # an ICO whose directory says 16×16 for an embedded 24×24 PNG: Pillow warns, naming no file
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), (9, 8, 7)).save(buffer, "PNG")
    png = buffer.getvalue()
    entry = struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(png), 22)
    (tmp_path / "i.ico").write_bytes(struct.pack("<HHH", 0, 1, 1) + entry + png)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img = read_image(tmp_path / "i.ico")
    assert img.pixels.shape[:2] == (24, 24)
    assert img.warnings == ["the decoder warned: Image was not the expected size"]


def test_jpeg_drops_alpha_and_16_bits_with_notes(tmp_path: Path) -> None:
    pixels = np.full((8, 8, 3), 0x8080, np.uint16)
    notes = write_image(tmp_path / "a.jpg", pixels, alpha=np.zeros((8, 8), np.uint16), quality=100)
    assert notes == [
        "JPEG has no alpha channel; the transparency was discarded",
        "JPEG cannot store 16 bits per channel; the image was written with 8 bits per channel",
    ]
    img = read_image(tmp_path / "a.jpg")
    assert img.alpha is None and img.bit_depth == 8
    assert np.abs(img.pixels.astype(int) - 128).max() <= 1


def test_webp_keeps_alpha(tmp_path: Path) -> None:
    alpha = np.zeros((8, 8), np.uint8)
    alpha[:, 4:] = 255
    assert write_image(tmp_path / "a.webp", np.full((8, 8, 3), 200, np.uint8), alpha=alpha) == []
    img = read_image(tmp_path / "a.webp")
    np.testing.assert_array_equal(img.alpha, alpha)


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_pillow_formats_get_views_and_alpha_band_by_band(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, channels: int
) -> None:
    """TIFF goes through Pillow: strided views and alpha are copied into its image a band at a time."""
    monkeypatch.setattr(writing, "_PILLOW_BAND_BYTES", 1)  # one row per band
    wide = rand16(7, 10, 2) if channels == 1 else rand8(7, 10, channels)
    values = wide[:, ::2, 0] if channels == 1 else wide  # 16-bit gray as a strided view
    assert write_image(tmp_path / "v.tif", values) == []
    colour, alpha = (values, None) if channels == 1 else (values[..., :-1], values[..., -1])
    img = read_image(tmp_path / "v.tif")
    np.testing.assert_array_equal(img.pixels, colour[..., 0] if channels == 2 else colour)
    np.testing.assert_array_equal(img.alpha, alpha)


def test_gray_webp_is_written_as_rgb(tmp_path: Path) -> None:
    gray = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (16, 1))
    assert write_image(tmp_path / "g.webp", gray, quality=100) == []
    with Image.open(tmp_path / "g.webp") as im:
        assert im.mode == "RGB"
        assert np.abs(np.asarray(im).astype(int) - gray[..., None]).max() <= 8


def test_write_accepts_pil_images_and_explicit_bit_depth(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png", Image.fromarray(rand8(3, 3, 4), "RGBA"))
    assert read_image(tmp_path / "a.png").alpha is not None
    write_image(tmp_path / "b.png", np.array([[0, 1, 255]], np.uint8), bit_depth=16)
    np.testing.assert_array_equal(read_image(tmp_path / "b.png").pixels, [[0, 257, 65535]])


def test_write_rejects_bad_arrays_and_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError):
        write_image(tmp_path / "a.png", np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(ImageError, match="unknown image format"):
        write_image(tmp_path / "a.xyz", np.zeros((4, 4), np.uint8))
    assert listing(tmp_path) == []


# ---------------------------------------------------------------- animation, MPO


def test_animated_gif_gives_first_frame_and_warning(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    img = read_image(tmp_path / "a.gif")
    assert img.warnings == [ANIMATED_WARNING]
    np.testing.assert_array_equal(img.pixels[0, 0], [255, 0, 0])
    with pytest.raises(ImageError, match="animated"):
        read_image(tmp_path / "a.gif", allow_animated_first_frame=False)


def test_mpo_still_photo_is_not_called_animated(tmp_path: Path) -> None:
    first, second = Image.new("RGB", (8, 8), (250, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 250))
    first.save(tmp_path / "m.jpg", format="MPO", save_all=True, append_images=[second])
    img = read_image(tmp_path / "m.jpg", allow_animated_first_frame=False)
    assert img.warnings == [] and img.format == "JPEG" and img.pixels[4, 4, 0] > 240


# ------------------------------------------------------------------- bad input


def test_missing_directory_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no such file"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="directory"):
        read_image(tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        read_image(tmp_path / "empty.png")


def test_text_file_is_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("hello, not a picture\n")
    with pytest.raises(ImageError, match="not a recognised image format"):
        read_image(tmp_path / "notes.png")


@pytest.mark.parametrize("name", ["t.png", "t.jpg", "t16.png"])
def test_truncated_files_are_refused(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # a caller's lax setting must not leak in
    pixels = rand16(64, 64, 3) if "16" in name else rand8(64, 64, 3)
    write_image(tmp_path / name, pixels)
    data = (tmp_path / name).read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated"):
        read_image(tmp_path / name)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored afterwards


def test_image_error_is_a_litesr_error_so_the_cli_prints_one_line() -> None:
    assert issubclass(ImageError, LiteSRError)


def test_errors_are_single_sentences_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "x.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    with pytest.raises(ImageError) as info:
        read_image(tmp_path / "x.jpg")
    message = str(info.value)
    assert str(tmp_path / "x.jpg") in message and "\n" not in message


def test_pixel_limit_is_checked_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_image(tmp_path / "big.png", rand8(100, 120, 3))

    def must_not_decode(self: Image.Image) -> None:
        raise AssertionError("decoded before the size check")

    monkeypatch.setattr(ImageFile.ImageFile, "load", must_not_decode)
    with pytest.raises(ImageError) as info:
        read_image(tmp_path / "big.png", max_pixels=5_000)
    assert "120×100 = 12,000 pixels" in str(info.value)
    assert "5,000" in str(info.value) and "--max-pixels" in str(info.value)


def test_limit_above_pillows_own_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_image(tmp_path / "a.png", rand8(20, 20, 3))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # Pillow alone would call this a bomb
    assert read_image(tmp_path / "a.png", max_pixels=1_000).pixels.shape == (20, 20, 3)
    assert Image.MAX_IMAGE_PIXELS == 10


def test_pillows_bomb_error_becomes_image_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_image(tmp_path / "a.png", rand8(4, 4, 3))

    def bomb(self: Image.Image) -> None:
        raise Image.DecompressionBombError("too big")

    monkeypatch.setattr(ImageFile.ImageFile, "load", bomb)
    with pytest.raises(ImageError, match="--max-pixels"):
        read_image(tmp_path / "a.png")


# ------------------------------------------------------- atomic writes, write errors


@pytest.mark.parametrize("name", ["out.png", "out.tif"])  # our PNG encoder, Pillow's TIFF encoder
@pytest.mark.parametrize("exc", [KeyboardInterrupt, OSError(28, "No space left on device")])
def test_write_image_failure_leaves_no_target_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc, name: str
) -> None:
    seen: list[list[str]] = []

    def failing_encoder(fh, *args, **kwargs) -> None:
        fh.write(b"partial")
        seen.append(listing(tmp_path))  # the temp file exists while encoding
        raise exc

    if name.endswith(".png"):
        monkeypatch.setattr(writing, "write_png", failing_encoder)
    else:
        monkeypatch.setattr(Image.Image, "save", lambda self, fp, *args, **kwargs: failing_encoder(fp))
    expected = KeyboardInterrupt if exc is KeyboardInterrupt else ImageError
    with pytest.raises(expected) as info:
        write_image(tmp_path / name, rand8(4, 4, 3))
    assert listing(tmp_path) == []
    [[temp_name]] = seen
    assert temp_name.startswith(f".{name}.") and temp_name.endswith(".tmp")
    if expected is ImageError:
        assert str(info.value) == f"cannot write {tmp_path / name}: no space left on device"
        assert info.value.__cause__ is exc


def test_write_image_failure_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "out.png").write_bytes(b"previous result")

    def failing_encoder(*args, **kwargs) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(writing, "write_png", failing_encoder)
    with pytest.raises(KeyboardInterrupt):
        write_image(tmp_path / "out.png", rand16(4, 4, 3))
    assert listing(tmp_path) == ["out.png"]
    assert (tmp_path / "out.png").read_bytes() == b"previous result"


def test_unwritable_destinations_raise_image_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="cannot write"):
        write_image(tmp_path / "missing" / "out.png", rand8(2, 2))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ImageError, match="cannot write"):
        write_image(tmp_path / "file" / "out.png", rand8(2, 2))
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageError, match="directory"):
        write_image(tmp_path / "dir.png", rand8(2, 2))
    assert listing(tmp_path) == ["dir.png", "file"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_directory_raises_image_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ImageError, match="permission denied"):
            write_image(locked / "out.png", rand8(2, 2))
    finally:
        locked.chmod(0o700)


# ------------------------------------------------------------ tensor conversion


def test_uint8_tensor_round_trip_is_exact() -> None:
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    tensor = to_float_tensor(pixels)
    assert tensor.shape == (1, 1, 16, 16) and tensor.dtype == torch.float32
    assert tensor.min() == 0 and tensor.max() == 1
    np.testing.assert_array_equal(from_float_tensor(tensor, np.uint8), pixels)


def test_uint16_tensor_round_trip_is_exact() -> None:
    pixels = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    rgb = np.stack([pixels, pixels[::-1], pixels.T], axis=-1)
    tensor = to_float_tensor(rgb)
    assert tensor.shape == (1, 3, 256, 256)
    np.testing.assert_array_equal(from_float_tensor(tensor, np.uint16), rgb)


def test_from_float_tensor_clamps_rounds_and_handles_nan() -> None:
    t = torch.tensor([[[-0.5, 1.5, float("nan"), 0.5 / 255, 1.5 / 255]]])
    out = from_float_tensor(t, np.uint8)
    assert out.shape == (1, 5)
    np.testing.assert_array_equal(out, [[0, 255, 0, 0, 2]])  # half-to-even: 0.5→0, 1.5→2
    half = to_float_tensor(rand8(2, 2, 3)).half()
    assert from_float_tensor(half, "uint8").dtype == np.uint8


def test_tensor_conversion_rejects_wrong_inputs() -> None:
    with pytest.raises(TypeError):
        to_float_tensor(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError):
        from_float_tensor(torch.zeros(2, 3, 4, 4), np.uint8)
    with pytest.raises(TypeError):
        from_float_tensor(torch.zeros(1, 3, 4, 4), np.int16)


def test_read_only_arrays_convert_without_warnings() -> None:
    pixels = rand8(3, 3, 3)
    pixels.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns about non-writable numpy arrays
        assert to_float_tensor(pixels).shape == (1, 3, 3, 3)


def test_loaded_image_feeds_tensor_conversion(tmp_path: Path) -> None:
    values = rand16(4, 5, 3)
    write_image(tmp_path / "a.png", values)
    tensor = to_float_tensor(read_image(tmp_path / "a.png").pixels)
    write_image(tmp_path / "b.png", from_float_tensor(tensor, np.uint16))
    np.testing.assert_array_equal(read_image(tmp_path / "b.png").pixels, values)
