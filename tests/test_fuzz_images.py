"""Fuzzing the image reader: crafted files (issue 12) and mutated valid files.

The contract under test: :func:`litesr.imaging.io.read_image` either returns an image or
raises an :class:`~litesr.errors.LiteSRError` whose one-line message names the file; it
never lets a decoder's own exception out, and the pixel limit holds whatever the headers
say. Memory use of the heavy cases is measured in a subprocess by test_fuzz_cli.py.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from corpus import CORPUS_MAX_PIXELS, EXPECT_OK, image_cases, mutated, seed_images
from litesr.errors import LiteSRError
from litesr.imaging.io import LoadedImage, read_image, write_image

#: Fixed example count and seed: the same inputs every run, a bounded time in CI.
FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
CASES = list(image_cases(heavy=False))
SEEDS = seed_images()


def read_or_refuse(path: Path, max_pixels: int = CORPUS_MAX_PIXELS) -> LoadedImage | LiteSRError:
    """The image, or the LiteSRError it was refused with; any other exception escapes (a bug)."""
    try:
        return read_image(path, max_pixels=max_pixels)
    except LiteSRError as error:
        return error


def assert_clean_refusal(result: LoadedImage | LiteSRError, path: Path) -> None:
    assert isinstance(result, LiteSRError), f"{path.name} was read, but must be refused"
    message = str(result)
    assert str(path) in message and "\n" not in message, message


def assert_sane_image(image: LoadedImage, max_pixels: int = CORPUS_MAX_PIXELS) -> None:
    height, width = image.pixels.shape[:2]
    assert 0 < height * width <= max_pixels
    assert image.pixels.dtype in (np.uint8, np.uint16) and image.pixels.ndim in (2, 3)
    assert image.alpha is None or image.alpha.shape == (height, width)


@pytest.mark.parametrize(("name", "expect", "why", "make"), CASES, ids=[case[0] for case in CASES])
def test_corpus_image_is_read_or_refused_cleanly(tmp_path: Path, name: str, expect: str, why: str, make) -> None:
    path = tmp_path / name
    path.write_bytes(make())
    result = read_or_refuse(path)
    if expect == EXPECT_OK:
        assert isinstance(result, LoadedImage), f"{why}: refused with {result}"
        assert_sane_image(result)
    else:
        assert_clean_refusal(result, path)


def test_16bit_pgm_keeps_its_samples(tmp_path: Path) -> None:
    path = tmp_path / "gray16.pgm"
    path.write_bytes(SEEDS["seed_gray16.pgm"])
    image = read_image(path)
    expected = np.frombuffer(SEEDS["seed_gray16.pgm"].split(b"\n", 1)[1], dtype=">u2").reshape(4, 6)
    assert image.bit_depth == 16 and image.pixels.dtype == np.uint16
    np.testing.assert_array_equal(image.pixels, expected)


def test_short_icc_profile_is_never_described_as_none(tmp_path: Path) -> None:
    source = tmp_path / "icc.png"
    source.write_bytes(dict((case[0], case[3]) for case in CASES)["icc_10_bytes.png"]())
    image = read_image(source)
    notes = write_image(tmp_path / "out.png", image.pixels, alpha=image.alpha, icc_profile=image.icc_profile)
    assert not any("None" in note for note in [*image.warnings, *notes]), [*image.warnings, *notes]
    assert read_image(tmp_path / "out.png").pixels.shape == image.pixels.shape


@pytest.mark.parametrize("max_pixels", [0, -1])
def test_non_positive_pixel_limit_is_a_litesr_error(tmp_path: Path, max_pixels: int) -> None:
    path = tmp_path / "seed.png"
    path.write_bytes(SEEDS["seed_rgb8.png"])
    with pytest.raises(LiteSRError, match="max.pixels"):
        read_image(path, max_pixels=max_pixels)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder reused by every example (a fresh tmp_path per example would be far slower)."""
    return tmp_path_factory.mktemp("fuzz_images")


@FUZZ
@given(sample=mutated(SEEDS))
def test_mutated_images_are_read_or_refused_cleanly(scratch: Path, sample: tuple[str, bytes]) -> None:
    name, data = sample
    path = scratch / f"mutated{Path(name).suffix}"
    path.write_bytes(data)
    result = read_or_refuse(path)
    if isinstance(result, LiteSRError):
        assert_clean_refusal(result, path)
        return
    assert_sane_image(result)
    # what was read must also be writable back, with its metadata, or refused cleanly
    try:
        notes = write_image(scratch / "written.png", result.pixels, alpha=result.alpha,
                            icc_profile=result.icc_profile, exif=result.exif)
    except LiteSRError as error:
        assert "\n" not in str(error)
    else:
        assert not any("None" in note for note in notes), notes
