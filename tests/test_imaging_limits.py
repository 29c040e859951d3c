"""The pixel limit of litesr.imaging.io.read_image holds on what is decoded, on every path.

Hostile files are forged here byte by byte (tests/test_png16.py has the PNG helpers);
each must be refused with an ImageError naming the file, without allocating what the
file asks for.  tracemalloc sees numpy's and Python's allocations, i.e. everything the
16-bit PNG decoder would allocate; Pillow's C buffers are covered by the header checks.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile
from test_png16 import MB, forged_png, ihdr, peak_traced_bytes, png_chunk, zero_idat, zlib_bomb

from litesr.imaging import io as iio
from litesr.imaging.io import ImageError, read_image, write_image


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# ------------------------------------------------------------- forged 16-bit PNGs


@pytest.mark.parametrize("max_pixels", [100, iio.DEFAULT_MAX_PIXELS])
def test_second_ihdr_after_the_image_data_is_refused_cheaply(tmp_path: Path, max_pixels: int) -> None:
    # issue 12: the first IHDR (1×1) passed the guard, the 16-bit decoder used the last
    # (8000×8000 RGBA16: 2.2 GB of arrays)
    path = write(tmp_path / "bomb.png", forged_png(ihdr(1, 1), zero_idat(1, 1), ihdr(8000, 8000)))
    with Image.open(path) as im:
        assert im.size == (1, 1)  # what a header-only check sees
    with pytest.raises(ImageError) as info:
        read_image(path, max_pixels=max_pixels)
    assert str(info.value) == f"cannot read {path}: the PNG is corrupt (it has more than one IHDR chunk)"
    assert peak_traced_bytes(lambda: read_image(path, max_pixels=max_pixels)) < 4 * MB


def test_second_ihdr_before_the_image_data_is_held_to_the_limit(tmp_path: Path) -> None:
    path = write(tmp_path / "bomb.png", forged_png(ihdr(1, 1), ihdr(8000, 8000), zero_idat(1, 1)))
    with pytest.raises(ImageError, match=r"8000×8000 = 64,000,000 pixels, above the limit of 100; raise it"):
        read_image(path, max_pixels=100)
    with pytest.raises(ImageError, match="more than one IHDR"):  # within the limit: still refused
        read_image(path)
    assert peak_traced_bytes(lambda: read_image(path)) < 4 * MB


def test_zero_size_second_ihdr_is_an_image_error(tmp_path: Path) -> None:
    # used to escape as a raw RuntimeError
    for name, later in {"after.png": [zero_idat(1, 1), ihdr(0, 0)], "before.png": [ihdr(0, 0), zero_idat(1, 1)]}.items():
        path = write(tmp_path / name, forged_png(ihdr(1, 1), *later))
        with pytest.raises(ImageError, match=f"^cannot read {path}: "):
            read_image(path)


def test_huge_declared_size_is_refused_before_decoding(tmp_path: Path) -> None:
    path = write(tmp_path / "huge.png", forged_png(ihdr(100_000, 100_000, colour_type=2), zero_idat(1, 1, 3)))
    with pytest.raises(ImageError, match=r"100000×100000 = 10,000,000,000 pixels, above the limit of 200,000,000"):
        read_image(path)
    assert peak_traced_bytes(lambda: read_image(path)) < 4 * MB


def test_zlib_bomb_in_a_16bit_png_costs_only_the_declared_size(tmp_path: Path) -> None:
    path = write(tmp_path / "zbomb.png", forged_png(ihdr(64, 64), png_chunk(b"IDAT", zlib_bomb(32 * MB))))
    image = read_image(path)
    assert image.pixels.shape == (64, 64, 3) and image.bit_depth == 16
    assert peak_traced_bytes(lambda: read_image(path)) < 4 * MB


def test_16bit_decoder_checks_the_limit_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # should Pillow ever report a different size than the 16-bit decoder sees, the
    # decoder's own check still refuses, with the same wording
    path = write(tmp_path / "a.png", forged_png(ihdr(40, 30), zero_idat(40, 30)))
    monkeypatch.setattr(iio, "_check_pixel_limit", lambda *args: None)
    with pytest.raises(ImageError, match=r"40×30 = 1,200 pixels, above the limit of 1,000; raise it with --max-pixels"):
        read_image(path, max_pixels=1000)


# ------------------------------------------------------------------ Pillow paths


@pytest.mark.parametrize("suffix", [".jpg", ".webp", ".tif", ".bmp", ".gif", ".png", ".pgm"])
def test_limit_holds_for_every_format(tmp_path: Path, suffix: str) -> None:
    pixels = np.zeros((30, 40), np.uint8) if suffix == ".pgm" else np.zeros((30, 40, 3), np.uint8)
    path = tmp_path / f"a{suffix}"
    write_image(path, pixels)
    with pytest.raises(ImageError) as info:
        read_image(path, max_pixels=1199)
    assert str(info.value) == (
        f"cannot read {path}: image is 40×30 = 1,200 pixels, above the limit of 1,199; raise it with --max-pixels"
    )
    assert read_image(path, max_pixels=1200).pixels.shape[:2] == (30, 40)


def test_decoded_size_is_checked_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a plugin that decodes more than its header declared (old ICO behaviour) is caught
    write_image(tmp_path / "a.png", np.zeros((10, 10, 3), np.uint8))
    monkeypatch.setattr(iio, "pixels_from_pil", lambda *args: (np.zeros((50, 40, 3), np.uint8), None, 8))
    with pytest.raises(ImageError, match=r"40×50 = 2,000 pixels, above the limit of 1,000"):
        read_image(tmp_path / "a.png", max_pixels=1000)


def test_pillow_plugins_are_held_to_the_limit_while_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Plugins check MAX_IMAGE_PIXELS when they allocate from sizes found deeper in the
    # file (an ICO's embedded PNG, TIFF tiles, GIF frames); simulate one doing so.
    write_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    real_load = ImageFile.ImageFile.load

    def load_with_inner_image(self: ImageFile.ImageFile):
        Image._decompression_bomb_check((100, 60))  # 6,000 pixels
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load_with_inner_image)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 123)
    for limit in (5_000, 2_999):  # Pillow warns above the limit (made an error) and raises above twice it
        with pytest.raises(ImageError) as info:
            read_image(tmp_path / "a.png", max_pixels=limit)
        assert str(info.value) == (
            f"cannot read {tmp_path / 'a.png'}: decoding it needs more than the limit of {limit:,} pixels; "
            "raise it with --max-pixels"
        )
    assert read_image(tmp_path / "a.png", max_pixels=6_000).pixels.shape == (4, 4, 3)
    assert Image.MAX_IMAGE_PIXELS == 123  # the caller's setting is restored


def test_pillows_bomb_warning_becomes_an_image_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))

    def warn(self: ImageFile.ImageFile) -> None:
        warnings.warn("too big", Image.DecompressionBombWarning)

    monkeypatch.setattr(ImageFile.ImageFile, "load", warn)
    with pytest.raises(ImageError, match="--max-pixels"):
        read_image(tmp_path / "a.png")


def test_other_libraries_warnings_pass_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    real_load = ImageFile.ImageFile.load

    def load_and_warn(self: ImageFile.ImageFile):
        warnings.warn("not Pillow's", DeprecationWarning)  # raised from this file, not from PIL/
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load_and_warn)
    with pytest.warns(DeprecationWarning, match="not Pillow's"):
        image = read_image(tmp_path / "a.png")
    assert image.warnings == []


@pytest.mark.parametrize("max_pixels", [0, -5])
def test_non_positive_limit_is_an_image_error_naming_the_file(tmp_path: Path, max_pixels: int) -> None:
    write_image(tmp_path / "a.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(ImageError) as info:
        read_image(tmp_path / "a.png", max_pixels=max_pixels)
    assert str(info.value) == (
        f"cannot read {tmp_path / 'a.png'}: max_pixels must be a positive number of pixels, got {max_pixels}"
    )
