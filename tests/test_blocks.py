"""The shared primitives against straightforward reference formulations."""
import pytest
import torch
from torch import nn

from litesr.archs.blocks import SHIFT8_OFFSETS, Conv3XC, MeanShift, Shift8, pixel_shuffle_upsampler, shift8_kernel


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


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_shift8_channels_last_path_is_exact(dtype):
    x = torch.randn(2, 16, 5, 6).to(dtype)
    nhwc = x.contiguous(memory_format=torch.channels_last)
    out = Shift8()(nhwc)
    assert out.dtype == dtype and torch.equal(out, reference_shift(x))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast must not round a shift
        assert torch.equal(Shift8()(nhwc.float()), reference_shift(x.float()))


def test_shift8_kernel_is_one_hot_per_group():
    kernel = shift8_kernel(16)
    assert kernel.shape == (16, 1, 3, 3) and (kernel.sum(dim=(1, 2, 3)) == 1).all()
    assert kernel[0, 0, 0, 1] == 1 and kernel[15, 0, 0, 0] == 1  # group 0 reads (-1, 0), group 7 (-1, -1)


def test_shift8_gradients_agree_between_layouts():
    x = torch.randn(1, 8, 4, 5, requires_grad=True)
    y = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    weight = torch.randn(1, 8, 4, 5)
    (Shift8()(x) * weight).sum().backward()
    (Shift8()(y) * weight).sum().backward()
    assert torch.equal(x.grad, y.grad.contiguous())
