"""Integer images upscaled tile by tile straight into the result: same pixels, bounded memory."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from litesr import SRModel
from litesr.errors import LiteSRError
from litesr.image_upscale import ImageInputError, OutputTooLargeError, check_image, upscale_image
from litesr.inference import AUTO_TILE_MEMORY_SHARE, DeployedNet, auto_tile_size, tile_bytes_per_pixel
from litesr.spec import ArchSpec
from litesr.tiling import TilingError


def _image(shape, dtype=np.uint8, seed=0):
    return np.random.default_rng(seed).integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype)


class _Recording:
    """A runner around a real network that remembers the shape of every window it ran."""

    def __init__(self, runner):
        self.runner, self.windows = runner, []

    def __getattr__(self, name):
        return getattr(self.runner, name)

    def __call__(self, x, scale, precision="fp32"):
        self.windows.append(tuple(x.shape))
        return self.runner(x, scale, precision)


@pytest.fixture(scope="module")
def model():
    spec = ArchSpec("scnet", dict(num_feat=16, num_block=2, upscale=4, use_pixelshuffle=True))
    torch.manual_seed(0)
    return SRModel(spec.build(), spec).deploy(reuse_memory=False)


@pytest.mark.parametrize("shape", [(37, 29, 3), (37, 29), (37, 29, 4), (37, 29, 2), (37, 29, 1)])
def test_tiled_result_equals_the_untiled_one_exactly(model, shape):
    image = _image(shape)
    whole = model.upscale(image)
    tiled = model.upscale(image, tile=8)
    assert tiled.dtype == np.uint8 and tiled.shape == whole.shape
    assert whole.shape[:2] == (148, 116) and whole.ndim == (2 if len(shape) == 2 or shape[2] == 1 else 3)
    np.testing.assert_array_equal(tiled, whole)


def test_untiled_result_is_the_network_output_rounded(model):
    image = _image((9, 11, 3), np.uint16)
    tensor = torch.from_numpy(image.astype(np.float32) / 65535).permute(2, 0, 1)[None]
    expected = torch.round(model.run(tensor).clamp(0, 1) * 65535)[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(model.upscale(image), expected.astype(np.uint16))


def test_alpha_through_the_model_tiles_like_colour(model):
    image = _image((21, 18, 4))
    np.testing.assert_array_equal(model.upscale(image, tile=8, alpha="model"), model.upscale(image, alpha="model"))


def test_no_whole_image_float_exists_when_tiling(model, monkeypatch):
    """Each window is small, and what is rounded into the result is one tile's kept part."""
    import litesr.image_upscale as image_upscale

    converted = []
    real = image_upscale.from_float_tensor
    monkeypatch.setattr(image_upscale, "from_float_tensor",
                        lambda tensor, dtype: converted.append(tuple(tensor.shape)) or real(tensor, dtype))
    runner = _Recording(model.runner)
    out = upscale_image(runner, _image((40, 40, 3)), 4, tile=10)
    assert out.shape == (160, 160, 3) and len(runner.windows) == 16
    pad = model.runner.receptive_radius
    assert all(h <= 10 + 2 * pad and w <= 10 + 2 * pad for *_, h, w in runner.windows)
    assert converted == [(1, 3, 40, 40)] * 16


def test_automatic_tiles_leave_room_for_the_output(model, monkeypatch):
    """The output, filled tile by tile, is reserved from the free memory before tiles are sized."""
    runner = _Recording(model.runner)
    image = _image((100, 100, 3))
    whole_bytes = 100 * 100 * tile_bytes_per_pixel(runner, 4)
    output_bytes = 400 * 400 * 3
    # A quarter of this fits the whole-image pass, a quarter of it less the output does not.
    free = int(whole_bytes / AUTO_TILE_MEMORY_SHARE) + output_bytes // 2
    monkeypatch.setattr("litesr.inference.available_memory", lambda device: free)
    tiled = upscale_image(runner, image, 4, tile=0)
    assert len(runner.windows) == 4 and auto_tile_size(runner, 4, model.device, 100, 100) is None
    np.testing.assert_array_equal(tiled, model.upscale(image))


def test_an_output_that_cannot_fit_is_refused_before_any_work(model, monkeypatch):
    monkeypatch.setattr("litesr.image_upscale.available_memory", lambda device: 2 << 30)
    runner = _Recording(model.runner)
    big = np.broadcast_to(np.zeros(3, np.uint8), (8000, 8000, 3))  # a view of 3 bytes
    with pytest.raises(OutputTooLargeError, match=r"output would be 32000×32000×3 \(uint8\), 2.9 GiB; available 2.0 GiB"):
        upscale_image(runner, big, 4, tile=0)
    assert runner.windows == []


def test_bicubic_alpha_matches_torch_bicubic_untiled_and_tiled(model):
    image = _image((30, 26, 4))
    alpha = torch.from_numpy(image[..., 3].astype(np.float32) / 255)[None, None]
    expected = torch.round(F.interpolate(alpha, scale_factor=4, mode="bicubic", align_corners=False)
                           .clamp(0, 1) * 255)[0, 0].numpy().astype(np.uint8)
    np.testing.assert_array_equal(model.upscale(image)[..., 3], expected)
    np.testing.assert_array_equal(model.upscale(image, tile=8)[..., 3], expected)


@pytest.mark.parametrize("bad, message", [
    ([[1, 2], [3, 4]], "got list"),
    (np.zeros((0, 5, 3), np.uint8), "empty"),
    (np.zeros((4, 0), np.uint16), "empty"),
    (np.zeros((4, 4, 3), np.float32), "uint8/uint16"),
    (np.zeros((4, 4, 5), np.uint8), "uint8/uint16"),
    (np.zeros(4, np.uint8), "uint8/uint16"),
])
def test_what_is_not_an_image_is_a_clear_error(bad, message):
    with pytest.raises(ImageInputError, match=message) as caught:
        check_image(bad)
    assert isinstance(caught.value, LiteSRError) and isinstance(caught.value, ValueError)


def test_bad_options_are_clear_errors(model):
    image = _image((8, 8, 3))
    with pytest.raises(TilingError, match="tile_pad must be 0 or more"):
        model.upscale(image, tile=8, tile_pad=-1)
    with pytest.raises(TilingError, match="too small"):
        model.upscale(image, tile=3)
    with pytest.raises(ImageInputError, match="alpha must be one of"):
        model.upscale(image, alpha="magic")
    with pytest.raises(ImageInputError, match="got list"):
        model.upscale([[0]])
    with pytest.raises(ImageInputError, match="empty"):
        model.upscale(np.zeros((0, 0, 3), np.uint8))
    assert isinstance(model.runner, DeployedNet)


@pytest.mark.slow
def test_output_memory_benchmark_prints_its_table():
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "output_memory.py"
    done = subprocess.run([sys.executable, str(script), "--sizes", "32", "--threads", "1"], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| 32×32 | 128×128×3 | 0.00 GiB |" in done.stdout and "CPU capability" in done.stdout
