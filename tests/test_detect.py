"""Architecture detection recovers every hyper-parameter from keys and shapes."""
import pytest
import torch
from conftest import load_fixture, shared_path

from litesr.checkpoints import read_checkpoint
from litesr.detect import detect_architecture
from litesr.errors import CheckpointError

FIXTURE_FAMILY = {"scnet": "scnet", "span": "span", "lesrcnn": "lesrcnn"}


@pytest.mark.parametrize("name", [
    "scnet_x2_ps", "scnet_x3_ps", "scnet_x4_ps", "scnet_x4_mlp", "scnet_f32b4_x4_ps",
    "span_ch48_x4", "span_ch16_x2", "span_ch20_x3", "lesrcnn_x2", "lesrcnn_multiscale",
])
def test_detects_fixture_configuration(name):
    state_dict, _, card = load_fixture(name)
    spec = detect_architecture(state_dict)
    assert spec.arch == name.split("_")[0]
    expected = dict(card["kwargs"])
    if spec.arch == "lesrcnn":
        expected.pop("group")
        expected["num_feat"] = 64
        if expected["multi_scale"]:
            expected["scale"] = None
    if spec.arch == "span":
        expected.update(norm=True, deploy=False)
    assert dict(spec.kwargs) == expected


@pytest.mark.parametrize("scale", [2, 3])
def test_scnet_interpolation_kind_needs_a_scale_hint(scale):
    state_dict, _, _ = load_fixture(f"scnet_x{scale}_mlp")
    with pytest.raises(CheckpointError, match=r"could be ×2 or ×3.*pass the scale"):
        detect_architecture(state_dict)
    assert detect_architecture(state_dict, scale_hint=scale).kwargs["upscale"] == scale


def test_span_deploy_only_and_no_norm():
    state_dict, _, _ = load_fixture("span_ch16_x2")
    deploy_only = {k: v for k, v in state_dict.items() if ".sk." not in k and ".conv." not in k}
    spec = detect_architecture({**deploy_only, "no_norm": torch.zeros(1)})
    assert spec.kwargs == dict(num_in_ch=3, num_out_ch=3, feature_channels=16, upscale=2, norm=False, deploy=True)


@pytest.mark.parametrize("relative,arch,expected", [
    ("lesrcnn/lesrcnn_x2.pth", "lesrcnn", {"scale": 2}),
    ("lesrcnn/lesrcnn_x3.pth", "lesrcnn", {"scale": 3}),
    ("lesrcnn/lesrcnn_x4.pth", "lesrcnn", {"scale": 4}),
    ("span/official_via_ncnn/spanx2_ch48_eval_from_ncnn.pth", "span", {"feature_channels": 48, "upscale": 2}),
    ("span/official_via_ncnn/spanx2_ch52_eval_from_ncnn.pth", "span", {"feature_channels": 52, "upscale": 2}),
    ("span/official_via_ncnn/spanx4_ch48_eval_from_ncnn.pth", "span", {"feature_channels": 48, "upscale": 4}),
    ("span/official_via_ncnn/spanx4_ch52_eval_from_ncnn.pth", "span", {"feature_channels": 52, "upscale": 4}),
    ("span/ntire2024_esr/team38_span_ch28_slim.pth", "span", {"feature_channels": 28, "upscale": 4}),
    ("span/ntire2024_esr/team39_spantiny_ch26_slim.pth", "span", {"feature_channels": 26, "upscale": 4}),
])
def test_detects_released_weights(relative, arch, expected):
    spec = detect_architecture(read_checkpoint(shared_path("weights", *relative.split("/"))).state_dict)
    assert spec.arch == arch
    assert expected.items() <= dict(spec.kwargs).items()
    if arch == "span":
        assert spec.kwargs["deploy"] is True


def test_unknown_architecture_names_the_keys():
    with pytest.raises(CheckpointError, match=r"unrecognised architecture.*'encoder\.weight'.*SCNet, SPAN, LESRCNN"):
        detect_architecture({"encoder.weight": torch.zeros(1), "decoder.bias": torch.zeros(1)})
