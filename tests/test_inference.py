"""Tiling, precision and device handling of the inference runner."""
import numpy as np
import pytest
import torch

from litesr.archs import LESRCNN, SCNet, SPAN
from litesr.errors import LiteSRError
from litesr.inference import (PrecisionFallbackWarning, auto_tile_size, check_precision, resolve_device, tile_grid,
                              upscale_tensor)


def _perturbed(net):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            if p.requires_grad:
                p.add_(0.5 * torch.randn_like(p) / p[0].numel() ** 0.5)
    return net.eval()


NETS = {
    "scnet": lambda: _perturbed(SCNet(num_feat=16, num_block=4, upscale=4, use_pixelshuffle=True)),
    "scnet-mlp": lambda: _perturbed(SCNet(num_feat=16, num_block=3, upscale=3)),
    "span": lambda: _perturbed(SPAN(feature_channels=8, upscale=4)).fuse(),
    "lesrcnn": lambda: _perturbed(LESRCNN(2, num_feat=8)),
}


@pytest.mark.parametrize("name", NETS)
def test_tiled_equals_untiled_when_pad_covers_receptive_field(name):
    net = NETS[name]()
    image = torch.rand(1, 3, 45, 38)
    whole = upscale_tensor(net, image, net.scale)
    tiled = upscale_tensor(net, image, net.scale, tile=16)
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max().item() <= 1e-4
    # A margin smaller than the receptive field shows seams: the test is not vacuous.
    assert (upscale_tensor(net, image, net.scale, tile=16, tile_pad=1) - whole).abs().max().item() > 1e-3


def test_tile_grid_covers_image_once():
    grid = tile_grid(45, 38, 16)
    covered = np.zeros((45, 38), int)
    for top, left, bottom, right in grid:
        covered[top:bottom, left:right] += 1
    assert (covered == 1).all() and len(grid) == 9


def test_progress_callback_and_tiny_tile():
    net = NETS["lesrcnn"]()
    seen = []
    upscale_tensor(net, torch.rand(1, 3, 20, 20), 2, tile=10, on_tile=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    with pytest.raises(LiteSRError, match="too small"):
        upscale_tensor(net, torch.rand(1, 3, 20, 20), 2, tile=4)


def test_auto_tile_bounds_memory(monkeypatch):
    net = NETS["span"]()
    monkeypatch.setattr("litesr.inference.available_memory", lambda device: 64 << 20)  # 64 MiB free
    side = auto_tile_size(net, 4, torch.device("cpu"), 540, 960)
    assert side is not None and side < 540
    assert auto_tile_size(net, 4, torch.device("cpu"), 16, 16) is None
    image = torch.rand(1, 3, 70, 90)
    assert (upscale_tensor(net, image, 4, tile=0) - upscale_tensor(net, image, 4)).abs().max() <= 1e-4


def test_bf16_close_to_fp32_and_fallback_on_overflow():
    net = NETS["lesrcnn"]()
    image = torch.rand(1, 3, 12, 12)
    assert (upscale_tensor(net, image, 2, precision="bf16") - upscale_tensor(net, image, 2)).abs().max() < 0.1

    class Overflowing(torch.nn.Module):
        scales, receptive_radius = (2,), 0

        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(1))

        def forward(self, x, scale):
            out = torch.nn.functional.interpolate(x, scale_factor=2) * self.weight
            return out * float("inf") if torch.is_autocast_enabled("cpu") else out

    with pytest.warns(PrecisionFallbackWarning):
        out = upscale_tensor(Overflowing(), image, 2, precision="bf16")
    assert torch.isfinite(out).all()


def test_precision_and_device_errors():
    with pytest.raises(LiteSRError, match="fp16 is for CUDA"):
        check_precision("fp16", torch.device("cpu"))
    with pytest.raises(LiteSRError, match="unknown precision"):
        check_precision("int4", torch.device("cpu"))
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(LiteSRError, match="no CUDA GPU"):
            resolve_device("cuda")
