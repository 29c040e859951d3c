"""SCNet reproduces the official implementation's fixtures, in training and deploy form."""
import pytest
import torch
from conftest import load_fixture, max_abs_diff

from litesr.archs import SCNet

FIXTURES = {
    "scnet_x2_ps": dict(upscale=2, use_pixelshuffle=True),
    "scnet_x3_ps": dict(upscale=3, use_pixelshuffle=True),
    "scnet_x4_ps": dict(upscale=4, use_pixelshuffle=True),
    "scnet_x2_mlp": dict(upscale=2, use_pixelshuffle=False),
    "scnet_x3_mlp": dict(upscale=3, use_pixelshuffle=False),
    "scnet_x4_mlp": dict(upscale=4, use_pixelshuffle=False),
    "scnet_f32b4_x4_ps": dict(num_feat=32, num_block=4, upscale=4, use_pixelshuffle=True),
}


@pytest.mark.parametrize("name", FIXTURES)
def test_matches_official_fixture_in_both_forms(name):
    state_dict, io, card = load_fixture(name)
    net = SCNet(**FIXTURES[name]).eval()
    net.load_state_dict(state_dict, strict=True)
    assert card["kwargs"] == {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "num_block": 16} | FIXTURES[name]
    with torch.no_grad():
        assert max_abs_diff(net(io["input"]), io["output"]) <= 1e-4
        net.fuse()
        assert net.deployed
        assert max_abs_diff(net(io["input"]), io["output"]) <= 1e-4


@pytest.mark.parametrize("upscale,stages", [(2, 1), (3, 1), (4, 2), (8, 3)])
def test_output_shape_and_stage_count(upscale, stages):
    net = SCNet(num_feat=16, num_block=2, upscale=upscale, use_pixelshuffle=True)
    assert net.num_stages == stages and net.scale == upscale
    assert net(torch.rand(1, 3, 5, 7)).shape == (1, 3, 5 * upscale, 7 * upscale)


def test_rejects_bad_hyper_parameters():
    with pytest.raises(ValueError, match="divisible by 8"):
        SCNet(num_feat=12)
    with pytest.raises(ValueError, match="upscale"):
        SCNet(upscale=5)
    with pytest.raises(ValueError, match="×3"):
        SCNet(upscale=4)(torch.rand(1, 3, 4, 4), 3)
