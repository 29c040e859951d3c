"""SPAN reproduces the official fixtures in training and deploy form, and fuses once."""
import pytest
import torch
from conftest import load_fixture, max_abs_diff
from torch.nn import functional as F

from litesr.archs import SPAN
from litesr.archs.span import SPAB

FIXTURES = {"span_ch48_x4": (48, 4), "span_ch16_x2": (16, 2), "span_ch20_x3": (20, 3)}
ATOL = 1e-3  # the specs' tolerance: outputs reach ±125 because of the ×255 input scaling


def _net(name):
    state_dict, io, card = load_fixture(name)
    channels, scale = FIXTURES[name]
    assert card["kwargs"]["feature_channels"] == channels and card["kwargs"]["upscale"] == scale
    net = SPAN(feature_channels=channels, upscale=scale).eval()
    net.load_state_dict(state_dict, strict=True)
    return net, io


@pytest.mark.parametrize("name", FIXTURES)
def test_training_and_deploy_forms_match_fixture(name):
    net, io = _net(name)
    with torch.no_grad():
        assert max_abs_diff(net(io["input"]), io["output_train"]) <= ATOL
        net.fuse()
        assert max_abs_diff(net(io["input"]), io["output"]) <= ATOL
        assert max_abs_diff(net(io["input"]), io["output_train"]) <= ATOL


def test_fuse_is_one_way_and_done_once():
    net, io = _net("span_ch16_x2")
    net.fuse()
    layers = net.conv3xc_layers()
    assert layers and all(layer.deployed and not hasattr(layer, "sk") and not hasattr(layer, "conv") for layer in layers)
    assert not any(".sk." in key or ".conv." in key for key in net.state_dict())
    # Forward in deploy form must not recompute the fusion: break the would-be inputs.
    weight_before = layers[0].eval_conv.weight.clone()
    with torch.no_grad():
        net(io["input"])
    assert torch.equal(layers[0].eval_conv.weight, weight_before)
    net.fuse()  # idempotent
    assert torch.equal(layers[0].eval_conv.weight, weight_before)


def test_deploy_built_network_loads_fused_weights():
    net, io = _net("span_ch20_x3")
    fused_state = net.fuse().state_dict()
    deploy_net = SPAN(feature_channels=20, upscale=3, deploy=True).eval()
    deploy_net.load_state_dict(fused_state, strict=True)
    with torch.no_grad():
        assert max_abs_diff(deploy_net(io["input"]), io["output"]) <= ATOL


def test_stored_eval_conv_is_ignored_in_favour_of_branches():
    """A stale eval_conv in a training checkpoint must not leak into the fused network."""
    state_dict, io, _ = load_fixture("span_ch16_x2")
    stale = {k: (torch.zeros_like(v) if ".eval_conv." in k else v) for k, v in state_dict.items()}
    net = SPAN(feature_channels=16, upscale=2).eval()
    net.load_state_dict(stale, strict=True)
    with torch.no_grad():
        assert max_abs_diff(net.fuse()(io["input"]), io["output"]) <= ATOL


def test_in_place_silu_trap(monkeypatch):
    """The 4th tensor concatenated is block_6's first conv output AFTER SiLU (the official
    code's in-place SiLU). Handing on the pre-activation tensor visibly breaks the fixture."""
    net, io = _net("span_ch48_x4")

    def pre_activation_forward(self, x):
        o1 = self.c1_r(x)
        o3 = self.c3_r(F.silu(self.c2_r(F.silu(o1))))
        att = torch.sigmoid(o3) - 0.5
        return (o3 + x) * att, o1, att

    with torch.no_grad():
        assert max_abs_diff(net(io["input"]), io["output_train"]) <= ATOL
        monkeypatch.setattr(SPAB, "forward", pre_activation_forward)
        assert max_abs_diff(net(io["input"]), io["output_train"]) > 100 * ATOL


def test_no_norm_variant_skips_normalisation_and_carries_the_flag():
    torch.manual_seed(0)
    plain = SPAN(feature_channels=8, upscale=2, norm=False).eval()
    assert "no_norm" in plain.state_dict()
    x = torch.rand(1, 3, 6, 6)
    normed = SPAN(feature_channels=8, upscale=2).eval()
    normed.load_state_dict({k: v for k, v in plain.state_dict().items() if k != "no_norm"})
    with torch.no_grad():
        assert torch.allclose(plain(x), normed(x * (1 / 255.0) + normed.mean), atol=1e-4)


def test_rejects_unsupported_scale():
    with pytest.raises(ValueError, match="upscale"):
        SPAN(upscale=5)
