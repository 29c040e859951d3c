"""The MAC counter, layer tracing, and `litesr profile`."""
import json

import pytest
import torch
from torch import nn

from conftest import shared_path
from litesr import SRModel, load
from litesr.archs import LESRCNN, SCNet, SPAN
from litesr.cli import main
from litesr.cli.profile import size_argument
from litesr.profile import measure_latency, profile_model, training_form_parameters
from litesr.tracing import count_parameters, layer_macs, trace_layers, trace_shapes
from litesr.spec import ArchSpec


def test_layer_macs_follow_the_fvcore_convention():
    assert layer_macs(nn.Conv2d(8, 16, 3, padding=1), (1, 16, 10, 10)) == 1600 * 8 * 9
    assert layer_macs(nn.Conv2d(8, 8, 3, padding=1, groups=8), (1, 8, 10, 10)) == 800 * 9  # depthwise
    assert layer_macs(nn.Linear(5, 7), (2, 7)) == 14 * 5
    assert layer_macs(nn.PixelShuffle(2), (1, 3, 8, 8)) == 0


def test_trace_follows_execution_order_not_registration_order():
    net = SPAN(feature_channels=8, upscale=2).fuse()
    names = [r.name for r in trace_layers(net, torch.rand(1, 3, 6, 6), 2) if isinstance(r.module, nn.Conv2d)]
    assert names.index("conv_2.eval_conv") < names.index("conv_cat") < names.index("upsampler.0")
    lesrcnn = [r.name for r in trace_layers(LESRCNN(2, num_feat=8), torch.rand(1, 3, 6, 6))]
    assert lesrcnn.index("upsample.up.body.0") < lesrcnn.index("conv17_1.0")


def test_shape_only_trace_matches_a_real_one():
    net = SCNet(num_feat=16, num_block=2, upscale=4, use_pixelshuffle=True)
    real = trace_layers(net, torch.rand(1, 3, 9, 7))
    meta = trace_shapes(net, (9, 7))
    assert [(r.name, r.output_shape, r.macs) for r in real] == [(r.name, r.output_shape, r.macs) for r in meta]
    assert next(net.parameters()).device.type == "cpu"  # the network itself never moved


def test_ntire2024_span_ch28_cost_matches_the_report():
    """NTIRE 2024 ESR winner: 150,688 parameters and 9.83 G MACs at 256×256 (fvcore)."""
    model = load(shared_path("weights", "span", "ntire2024_esr", "team38_span_ch28_slim.pth"))
    assert count_parameters(model.net) == 150_688
    macs = sum(r.macs for r in trace_shapes(model.net, (256, 256), 4))
    assert abs(macs - 9.83e9) < 0.005e9 and macs == 9_833_807_872
    assert training_form_parameters(model) > 150_688  # the un-fused Conv3XC branches


def test_training_and_deploy_parameter_counts():
    spec = ArchSpec("lesrcnn", dict(scale=2, num_feat=8))
    model = SRModel(spec.build(), spec)
    assert training_form_parameters(model) == count_parameters(model.net) - 24  # frozen mean shifts
    span_spec = ArchSpec("span", dict(feature_channels=8, upscale=2))
    span = SRModel(span_spec.build(), span_spec).deploy(reuse_memory=False)
    assert training_form_parameters(span) > count_parameters(span.net)


def test_profile_model_reports_everything():
    spec = ArchSpec("scnet", dict(num_feat=16, num_block=2, upscale=2, use_pixelshuffle=True))
    model = SRModel(spec.build(), spec, name="tiny").deploy(reuse_memory=False)
    result = profile_model(model, (12, 10), runs=3, warmup=1)
    assert result.macs == sum(r.macs for r in trace_layers(model.net, torch.rand(1, 3, 12, 10), 2))
    assert len(result.latency_s) == 3 and result.latency_median_s > 0 and result.threads >= 1
    assert result.params_training == result.params_deploy == count_parameters(model.net)
    assert result.activations > 0 and result.peak_memory_bytes >= 0 and result.backend == "torch"
    data = result.to_dict()
    assert json.loads(json.dumps(data))["gflops_per_s"] > 0


def test_measure_latency_counts_runs():
    calls = []
    assert len(measure_latency(lambda: calls.append(1), runs=4, warmup=2)) == 4 and len(calls) == 6


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    spec = ArchSpec("span", dict(feature_channels=8, upscale=2))
    torch.manual_seed(0)
    return SRModel(spec.build(), spec).save(tmp_path_factory.mktemp("w") / "tiny_span_x2.safetensors")


def test_profile_command_text_and_json(weights, capsys):
    assert main(["profile", "-w", str(weights), "--size", "16x12", "--runs", "2", "--warmup", "0"]) == 0
    text = capsys.readouterr().out
    assert "training form" in text and "deploy form" in text and "MACs" in text and "median of 2" in text
    assert main(["profile", "-w", str(weights), "--size", "16", "--runs", "1", "--json", "--threads", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input_size"] == [16, 16] and data["threads"] == 1 and data["macs"] > 0
    assert data["params_training"] > data["params_deploy"]


def test_profile_command_errors(weights, capsys):
    assert main(["profile", "-w", str(weights), "--runs", "0"]) == 1
    assert "error: --runs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["profile", "-w", str(weights), "--size", "big"])


def test_size_argument():
    assert size_argument("256x128") == (256, 128) and size_argument("64") == (64, 64)
    assert size_argument("32×48") == (32, 48)
