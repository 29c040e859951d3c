"""The 'residual' weight init: unit-gain layers, small residual branches, SCNet only."""
import pytest
import torch

from litesr.archs import SCNet, SPAN
from litesr.errors import LiteSRError
from litesr.train.init import apply_weight_init


def test_residual_init_scales_only_branch_ends():
    torch.manual_seed(0)
    net = apply_weight_init(SCNet(num_feat=64, num_block=4, upscale=2, use_pixelshuffle=True), "residual")
    assert net.conv_first.weight.std() > 0.5  # Kaiming gain, not ×0.1
    assert net.body[0].conv2.weight.std() < 0.5 * net.body[0].conv1.weight.std()
    assert net.conv_last.weight.std() < 0.5 * net.conv_hr.weight.std()
    assert all((m.bias == 0).all() for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    official = SCNet(num_feat=64, num_block=4, upscale=2, use_pixelshuffle=True)
    assert apply_weight_init(official, "official") is official


def test_residual_init_refuses_other_architectures():
    with pytest.raises(LiteSRError, match="not implemented for SPAN"):
        apply_weight_init(SPAN(feature_channels=8, upscale=2), "residual")
