"""SCNet's streamed deploy forward computes what the layer-by-layer forward computes."""
import itertools

import pytest
import torch
from conftest import load_fixture, max_abs_diff
from torch import nn

from litesr.archs import SCNet
from litesr.archs.scnet_stream import streamed_forward
from litesr.errors import ConfigurationError
from litesr.inference import DeployedNet


def noisy_scnet(upscale: int, use_pixelshuffle: bool, num_feat: int = 16, num_block: int = 3) -> SCNet:
    """A small SCNet with weights large enough that every layer (and every shift) shows."""
    torch.manual_seed(upscale * 2 + use_pixelshuffle)
    net = SCNet(num_feat=num_feat, num_block=num_block, upscale=upscale, use_pixelshuffle=use_pixelshuffle).eval()
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.normal_(module.weight, std=0.3)
            nn.init.normal_(module.bias, std=0.1)
    return net


@pytest.mark.parametrize("upscale,use_pixelshuffle", [
    pytest.param(*case, marks=pytest.mark.slow) if case[0] == 8 else case  # three stages: ~10 s on 2 busy cores
    for case in itertools.product((2, 3, 4, 8), (True, False))])
def test_streamed_equals_layered_for_any_band_size(upscale, use_pixelshuffle):
    net = noisy_scnet(upscale, use_pixelshuffle)
    x = torch.rand(2, 3, 13, 9)
    with torch.no_grad():
        expected = net.layered_forward(x, upscale)
        # 1 px: one row per band everywhere; 150 px: ragged bands; 10**6: a single band.
        for band_pixels in (1 if upscale < 8 else 40, 150, 10**6):
            got = streamed_forward(net, x, upscale, band_pixels)
            assert got.shape == expected.shape
            assert max_abs_diff(got, expected) <= 1e-5, band_pixels


def test_streamed_handles_single_row_and_channels_last_input():
    net = noisy_scnet(4, True)
    for x in (torch.rand(1, 3, 1, 6), torch.rand(1, 3, 7, 5).contiguous(memory_format=torch.channels_last)):
        with torch.no_grad():
            assert max_abs_diff(streamed_forward(net, x, 4, 32), net.layered_forward(x, 4)) <= 1e-5


def test_bands_really_are_bands():
    """The HR layers never see more rows than the band size allows: nothing full-size is built."""
    net = noisy_scnet(4, True).fuse()
    x = torch.rand(1, 3, 24, 8)
    rows_seen = []
    handle = net.conv_hr.register_forward_hook(lambda module, inputs, output: rows_seen.append(inputs[0].shape[2]))
    try:
        with torch.no_grad():
            out = streamed_forward(net, x, 4, band_pixels=4 * 32)  # 4 output rows of width 32
    finally:
        handle.remove()
    assert max(rows_seen) == 4 and sum(rows_seen) == out.shape[2] == 96


def test_deploy_form_streams_and_matches_training_form():
    net = noisy_scnet(4, True)
    net.band_pixels = 256
    x = torch.rand(1, 3, 70, 9)  # 280 output rows of width 36: many bands
    with torch.no_grad():
        expected = net(x)
        net.fuse()
        calls = []
        handle = net.conv_last.register_forward_hook(lambda *args: calls.append(1))
        try:
            got = DeployedNet(net)(x, 4)
        finally:
            handle.remove()
    assert len(calls) > 1, "the deploy form should run in several bands"
    assert max_abs_diff(got, expected) <= 1e-5


class AtScale(nn.Module):
    def __init__(self, net: SCNet, scale: int) -> None:
        super().__init__()
        self.net, self.scale = net, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.scale)


def test_tracing_sees_the_layered_forward():
    """ONNX export traces the deploy form: it must be one fixed graph, not an unrolled band loop."""
    net = noisy_scnet(2, True, num_block=2).fuse()
    net.band_pixels = 64
    convs = sum(isinstance(m, nn.Conv2d) for m in net.modules())  # NCHW: the shifts are slice copies
    x = torch.rand(1, 3, 40, 40)  # many bands of 64 px
    with torch.no_grad():
        traced = torch.jit.trace(AtScale(net, 2), (x,), check_trace=False)
        assert str(traced.inlined_graph).count("aten::_convolution") == convs
        assert max_abs_diff(traced(x), streamed_forward(net, x, 2, 64)) <= 1e-5


def test_bf16_runs_streamed_close_to_fp32():
    net = noisy_scnet(2, True).fuse()
    runner = DeployedNet(net)
    x = torch.rand(1, 3, 40, 12)
    fp32, bf16 = runner(x, 2), runner(x, 2, "bf16")
    assert bf16.dtype == torch.float32 and bf16.shape == fp32.shape
    assert 0 < max_abs_diff(bf16, fp32) < 0.1 * fp32.abs().max().item()


def test_rejects_bad_band_size():
    net = noisy_scnet(2, True)
    with pytest.raises(ConfigurationError, match="band_pixels"):
        streamed_forward(net, torch.rand(1, 3, 4, 4), 2, 0)


@pytest.mark.parametrize("name,kwargs", [
    ("scnet_x4_ps", dict(upscale=4, use_pixelshuffle=True)),
    ("scnet_x3_mlp", dict(upscale=3, use_pixelshuffle=False)),
])
def test_streamed_matches_official_fixture_in_many_bands(name, kwargs):
    state_dict, io, _ = load_fixture(name)
    net = SCNet(**kwargs).eval()
    net.load_state_dict(state_dict, strict=True)
    with torch.no_grad():
        assert max_abs_diff(streamed_forward(net, io["input"], kwargs["upscale"], band_pixels=64), io["output"]) <= 1e-4
