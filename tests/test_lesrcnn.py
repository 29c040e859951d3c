"""LESRCNN reproduces the official fixtures (random and released weights, multi-scale too)."""
import pytest
import torch
from conftest import load_fixture, max_abs_diff
from torch import nn

from litesr.archs import LESRCNN


@pytest.mark.parametrize("name,scale", [("lesrcnn_x2", 2), ("lesrcnn_x2_released", 2),
                                        ("lesrcnn_x3_released", 3), ("lesrcnn_x4_released", 4)])
def test_single_scale_matches_fixture(name, scale):
    state_dict, io, _ = load_fixture(name)
    net = LESRCNN(scale).eval()
    net.load_state_dict(state_dict, strict=True)
    with torch.no_grad():
        assert max_abs_diff(net(io["input"], scale), io["output"]) <= 1e-4
        assert max_abs_diff(net.fuse()(io["input"]), io["output"]) <= 1e-4


def test_multi_scale_matches_fixture_for_each_scale():
    state_dict, io, _ = load_fixture("lesrcnn_multiscale")
    net = LESRCNN(multi_scale=True).eval()
    net.load_state_dict(state_dict, strict=True)
    assert net.scales == (2, 3, 4)
    with torch.no_grad():
        for scale in (2, 3, 4):
            assert max_abs_diff(net(io["input"], scale), io[f"output_x{scale}"]) <= 1e-4


def test_in_place_relu_trap():
    """Residual sums must continue from the activated value; pre-activation sums (as the
    unrolled official source seems to read) visibly break the released weights."""
    state_dict, io, _ = load_fixture("lesrcnn_x2_released")
    net = LESRCNN(2).eval()
    net.load_state_dict(state_dict, strict=True)

    def pre_activation_forward(x, scale=None):
        h = net.conv1(net.sub_mean(x))
        shallow = torch.relu(h)
        residual = h
        for pair in range(8):
            residual = residual + getattr(net, f"conv{2 * pair + 3}")(getattr(net, f"conv{2 * pair + 2}")(torch.relu(residual)))
        t = torch.relu(net.upsample(torch.relu(residual), 2) + net.upsample(shallow, 2))
        for index in range(1, 5):
            t = getattr(net, f"conv17_{index}")(t)
        return net.add_mean(net.conv18(t))

    with torch.no_grad():
        assert max_abs_diff(net(io["input"]), io["output"]) <= 1e-4
        assert max_abs_diff(pre_activation_forward(io["input"]), io["output"]) > 1e-2


def test_scale_is_checked():
    with pytest.raises(ValueError, match="scale"):
        LESRCNN(5)
    with pytest.raises(ValueError, match="×3"):
        LESRCNN(2)(torch.rand(1, 3, 4, 4), 3)
    assert isinstance(LESRCNN(4).upsample.up.body[2], nn.Conv2d)
