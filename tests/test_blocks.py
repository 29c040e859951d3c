"""The shared primitives against straightforward reference formulations."""
import pytest
import torch
from torch import nn

from litesr.archs.blocks import SHIFT8_OFFSETS, Conv3XC, MeanShift, Shift8, pixel_shuffle_upsampler


def reference_shift(x):
    """The official formulation: a zero-filled output and eight slice writes."""
    out = torch.zeros_like(x)
    g = x.shape[1] // 8
    height, width = x.shape[-2:]
    for k, (dy, dx) in enumerate(SHIFT8_OFFSETS):
        for i in range(height):
            for j in range(width):
                if 0 <= i + dy < height and 0 <= j + dx < width:
                    out[:, k * g:(k + 1) * g, i, j] = x[:, k * g:(k + 1) * g, i + dy, j + dx]
    return out


def test_shift8_equals_reference_exactly():
    x = torch.randn(2, 16, 5, 6)
    assert torch.equal(Shift8()(x), reference_shift(x))


def test_shift8_rejects_bad_channels():
    with pytest.raises(ValueError, match="divisible by 8"):
        Shift8()(torch.zeros(1, 12, 3, 3))


@pytest.mark.parametrize("c_in,c_out,gain", [(3, 8, 2), (8, 8, 2), (5, 7, 3)])
def test_conv3xc_fused_equals_branches(c_in, c_out, gain):
    torch.manual_seed(0)
    layer = Conv3XC(c_in, c_out, gain)
    for p in layer.parameters():
        if p.requires_grad:
            nn.init.normal_(p, std=0.5)
    x = torch.randn(2, c_in, 9, 7)
    with torch.no_grad():
        branches = layer(x)
        layer.fuse()
        assert layer.deployed and not hasattr(layer, "sk")
        assert torch.allclose(layer(x), branches, atol=1e-4)


def test_mean_shift_is_exact_and_frozen():
    shift = MeanShift(sign=-1)
    x = torch.rand(1, 3, 4, 4)
    assert torch.allclose(shift(x), x - torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1))
    assert not any(p.requires_grad for p in shift.parameters())


@pytest.mark.parametrize("scale,out,convs", [(2, None, 1), (4, None, 2), (8, None, 3), (3, None, 1), (4, 3, 1)])
def test_pixel_shuffle_upsampler_layout(scale, out, convs):
    up = pixel_shuffle_upsampler(8, scale, out_channels=out)
    assert sum(isinstance(m, nn.Conv2d) for m in up) == convs
    assert up(torch.zeros(1, 8, 3, 3)).shape == (1, out or 8, 3 * scale, 3 * scale)
    with pytest.raises(ValueError):
        pixel_shuffle_upsampler(8, 5)
