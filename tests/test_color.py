"""BT.601 Y as MATLAB rgb2ycbcr / BasicSR bgr2ycbcr compute it."""
from __future__ import annotations

import numpy as np
import pytest

from litesr.imaging.color import rgb_to_y, to_float01


def test_known_values() -> None:
    rgb = np.array(
        [[[0, 0, 0], [255, 255, 255], [255, 0, 0]], [[0, 255, 0], [0, 0, 255], [128, 64, 32]]],
        dtype=np.uint8,
    )
    y = rgb_to_y(rgb)
    assert y.shape == (2, 3) and y.dtype == np.float64
    r, g, b = 128 / 255, 64 / 255, 32 / 255
    want = [[16.0, 235.0, 16 + 65.481], [16 + 128.553, 16 + 24.966, 16 + 65.481 * r + 128.553 * g + 24.966 * b]]
    np.testing.assert_allclose(y, want, rtol=0, atol=1e-10)


def test_not_rounded_and_dtypes_agree() -> None:
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (9, 7, 3)).astype(np.uint8)
    y8 = rgb_to_y(u8)
    assert not np.array_equal(y8, np.round(y8))  # float Y, as the reference numbers use
    np.testing.assert_allclose(rgb_to_y(u8.astype(np.float64) / 255), y8, atol=1e-12)
    np.testing.assert_allclose(rgb_to_y(u8.astype(np.uint16) * 257), y8, atol=1e-9)
    np.testing.assert_allclose(rgb_to_y(u8.astype(np.float32) / 255), y8, atol=1e-4)


def test_gray_passes_through_on_0_255_scale() -> None:
    gray = np.arange(0, 256, 17, dtype=np.uint8).reshape(4, 4)
    np.testing.assert_array_equal(rgb_to_y(gray), gray.astype(np.float64))
    np.testing.assert_array_equal(rgb_to_y(gray[..., None]), gray.astype(np.float64))
    np.testing.assert_allclose(rgb_to_y(gray / 255.0), gray, atol=1e-12)
    # An RGB image with R=G=B is *not* a gray image: it gets the 16-235 mapping.
    np.testing.assert_allclose(rgb_to_y(np.stack([gray] * 3, -1)), 16 + 219 * gray.astype(np.float64) / 255.0, atol=1e-9)


@pytest.mark.parametrize(
    "img", [np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 2), np.uint8), np.zeros(4, np.uint8),
            np.zeros((4, 4, 3), np.int32)]
)
def test_bad_input(img: np.ndarray) -> None:
    with pytest.raises(ValueError):
        rgb_to_y(img)


def test_to_float01() -> None:
    assert to_float01(np.array([255], np.uint8))[0] == 1.0
    assert to_float01(np.array([65535], np.uint16))[0] == 1.0
    assert to_float01(np.array([0.25], np.float32)).dtype == np.float64
    with pytest.raises(ValueError):
        to_float01(np.array([1], np.int64))
