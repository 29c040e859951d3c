"""PSNR / SSIM / quantize as in BasicSR, checked against literal slow references."""
from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from conftest import shared_path
from litesr.imaging.color import rgb_to_y
from litesr.metrics import psnr, quantize, ssim


def _ref_ssim_channel(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al. SSIM with explicit loops: 11x11 Gaussian (sigma 1.5), valid windows only."""
    g = np.array([math.exp(-((i - 5) ** 2) / (2 * 1.5**2)) for i in range(11)])
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            pa, pb = a[i : i + 11, j : j + 11], b[i : i + 11, j : j + 11]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va = (w * pa * pa).sum() - ma * ma
            vb = (w * pb * pb).sum() - mb * mb
            cov = (w * pa * pb).sum() - ma * mb
            vals.append(((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


def _pair(shape: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    hr = rng.integers(0, 256, shape).astype(np.uint8)
    noise = rng.integers(-20, 21, shape)
    sr = np.clip(hr.astype(int) + noise, 0, 255).astype(np.uint8)
    return sr, hr


def test_psnr_identical_is_inf() -> None:
    img = np.full((8, 8, 3), 7, np.uint8)
    assert psnr(img, img) == math.inf
    assert ssim(np.tile(np.arange(16, dtype=np.uint8), (16, 1)), np.tile(np.arange(16, dtype=np.uint8), (16, 1))) == pytest.approx(1.0)


def test_psnr_known_value() -> None:
    hr = np.zeros((4, 4), np.uint8)
    sr = hr.copy()
    sr[0, 0] = 16  # MSE = 256/16 = 16
    assert psnr(sr, hr) == pytest.approx(10 * math.log10(255**2 / 16))
    sr8 = np.full((6, 6, 3), 10, np.uint8)
    hr8 = np.full((6, 6, 3), 12, np.uint8)
    assert psnr(sr8, hr8) == pytest.approx(10 * math.log10(255**2 / 4))


def test_psnr_crop_border_ignores_border() -> None:
    hr = np.full((10, 10, 3), 100, np.uint8)
    sr = hr.copy()
    sr[:2] = 0
    sr[:, -2:] = 255
    assert psnr(sr, hr, crop_border=2) == math.inf
    assert psnr(sr, hr, crop_border=1) < 20


def test_psnr_y_channel_matches_manual() -> None:
    sr, hr = _pair((12, 10, 3))
    ys, yh = rgb_to_y(sr), rgb_to_y(hr)
    mse = np.mean((ys[3:-3, 3:-3] - yh[3:-3, 3:-3]) ** 2)
    assert psnr(sr, hr, crop_border=3, y_channel=True) == pytest.approx(10 * math.log10(255**2 / mse), rel=1e-12)


@pytest.mark.parametrize("shape", [(16, 14), (15, 19, 3)])
def test_ssim_matches_slow_reference(shape: tuple[int, ...]) -> None:
    sr, hr = _pair(shape, seed=1)
    a, b = sr.astype(np.float64), hr.astype(np.float64)
    if a.ndim == 2:
        want = _ref_ssim_channel(a, b)
    else:
        want = float(np.mean([_ref_ssim_channel(a[..., c], b[..., c]) for c in range(3)]))
    assert ssim(sr, hr) == pytest.approx(want, rel=1e-10)
    # crop + Y
    ya, yb = rgb_to_y(sr[1:-1, 1:-1]), rgb_to_y(hr[1:-1, 1:-1])
    if a.ndim == 3:
        assert ssim(sr, hr, crop_border=1, y_channel=True) == pytest.approx(_ref_ssim_channel(ya, yb), rel=1e-10)


def test_ssim_lower_for_noisier() -> None:
    rng = np.random.default_rng(5)
    hr = np.clip(np.add.outer(np.arange(32), np.arange(32)) * 4, 0, 255).astype(np.uint8)
    n = rng.standard_normal(hr.shape)
    a = np.clip(hr + 5 * n, 0, 255).astype(np.uint8)
    b = np.clip(hr + 25 * n, 0, 255).astype(np.uint8)
    assert 1 > ssim(a, hr) > ssim(b, hr) > 0


def test_gray_images_with_and_without_y() -> None:
    sr, hr = _pair((20, 18))
    assert psnr(sr, hr, y_channel=True) == psnr(sr, hr)
    assert ssim(sr, hr, y_channel=True) == ssim(sr, hr)
    assert psnr(sr[..., None], hr[..., None], y_channel=True) == psnr(sr, hr)


def test_gray_bridge_from_set14() -> None:
    root = shared_path("data", "benchmark", "Set14")
    with Image.open(root / "HR" / "bridge.png") as im:
        assert im.mode == "L"
        hr = np.asarray(im)
    from litesr.imaging.resize import imresize

    sr = imresize(imresize(hr, 0.5), 2)
    p, s = psnr(sr, hr, 2, True), ssim(sr, hr, 2, True)
    assert p == psnr(sr, hr, 2) and s == ssim(sr, hr, 2)
    assert 20 < p < 35 and 0.5 < s < 1


def test_rgb_ssim_is_mean_of_channels() -> None:
    sr, hr = _pair((20, 20, 3), seed=2)
    per = [ssim(sr[..., c], hr[..., c]) for c in range(3)]
    assert ssim(sr, hr) == pytest.approx(np.mean(per), rel=1e-12)


@pytest.mark.parametrize(
    "args",
    [
        (np.zeros((12, 12), np.uint8), np.zeros((12, 13), np.uint8), {}),
        (np.zeros((12, 12, 4), np.uint8), np.zeros((12, 12, 4), np.uint8), {}),
        (np.zeros((12, 12), np.uint8), np.zeros((12, 12), np.uint8), {"crop_border": -1}),
        (np.zeros((12, 12), np.uint8), np.zeros((12, 12), np.uint8), {"crop_border": 6}),
        (np.zeros((12, 12), np.uint8), np.zeros((12, 12), np.uint8), {"crop_border": 1.5}),
    ],
)
def test_bad_inputs_raise(args: tuple) -> None:
    a, b, kw = args
    with pytest.raises(ValueError):
        psnr(a, b, **kw)
    with pytest.raises(ValueError):
        ssim(a, b, **kw)


def test_ssim_too_small_raises() -> None:
    with pytest.raises(ValueError):
        ssim(np.zeros((10, 20), np.uint8), np.zeros((10, 20), np.uint8))


def test_quantize() -> None:
    x = np.array([-0.1, 0.0, 0.5 / 255, 1.5 / 255, 2.5 / 255, 0.5, 1.0, 1.2], np.float32)
    q = quantize(x)
    assert q.dtype == np.uint8
    np.testing.assert_array_equal(q, [0, 0, 0, 2, 2, 128, 255, 255])  # halves to even
    chw = np.random.default_rng(0).random((3, 5, 4)).astype(np.float32)
    assert quantize(chw).shape == (3, 5, 4)
    with pytest.raises(ValueError):
        quantize(np.zeros(3, np.uint8))


def test_quantize_torch_matches_basicsr() -> None:
    torch = pytest.importorskip("torch")
    t = torch.rand(1, 3, 9, 7) * 1.2 - 0.1
    want = (t.clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()
    np.testing.assert_array_equal(quantize(t), want)
