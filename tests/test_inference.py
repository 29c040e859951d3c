"""Tiling, precision and device handling of the inference runner."""
import os
import warnings

import numpy as np
import pytest
import torch

from litesr.archs import LESRCNN, SCNet, SPAN
from litesr.errors import LiteSRError, ScaleError
from litesr.devices import check_precision, resolve_device
from litesr.inference import DeployedNet, PrecisionFallbackWarning, auto_tile_size, available_memory, upscale_tensor
from litesr.tiling import Tile, TilingError, plan_tiles, tile_grid


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


def test_tiles_keep_their_centre_and_fill_the_output_once():
    tiles = plan_tiles(45, 38, 16, pad=3)
    assert {(t.window_bottom - t.window_top, t.window_right - t.window_left) for t in tiles} == {(22, 22)}
    filled = np.zeros((90, 76), int)
    for tile in tiles:
        rows, columns = tile.kept_in_window(2)
        out_rows, out_columns = tile.in_output(2)
        assert rows.stop - rows.start == out_rows.stop - out_rows.start == (tile.bottom - tile.top) * 2
        assert columns.stop - columns.start == out_columns.stop - out_columns.start == (tile.right - tile.left) * 2
        # the kept part is at least `pad` away from every window edge that is not the image's
        assert tile.top - tile.window_top >= 3 or tile.window_top == 0
        assert tile.window_bottom - tile.bottom >= 3 or tile.window_bottom == 45
        filled[out_rows, out_columns] += 1
    assert (filled == 1).all()
    assert plan_tiles(45, 38, None, 3) == plan_tiles(45, 38, 64, 3) == [Tile(0, 0, 45, 38, 0, 0, 45, 38)]


def test_negative_margin_is_a_clear_error():
    with pytest.raises(TilingError, match="tile_pad must be 0 or more"):
        upscale_tensor(NETS["lesrcnn"](), torch.rand(1, 3, 20, 20), 2, tile=10, tile_pad=-2)


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


def test_available_memory_is_positive_and_below_the_machine():
    free = available_memory(torch.device("cpu"))
    assert 0 < free <= os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def test_a_runner_answers_for_its_scales_and_parameters():
    net = LESRCNN(2, num_feat=8, multi_scale=True)
    runner = DeployedNet(net)
    assert runner.scales == (2, 3, 4) and runner.check_scale(None) == 4 and runner.check_scale(3) == 3
    assert runner.num_params == sum(p.numel() for p in net.parameters())
    with pytest.raises(ScaleError, match=r"LESRCNN serves ×2, ×3, ×4, not ×5"):
        runner.check_scale(5)


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


# --------------------------------------------------------------------------- deploy path

from litesr.inference import (DeployedNet, _FloatOutput, _FullPrecision, activation_bytes_per_pixel,  # noqa: E402
                              head_and_tail, keep_freed_host_memory, mixed_precision_copy)
from litesr.model import SRModel  # noqa: E402
from litesr.spec import ArchSpec  # noqa: E402

TRAINING_FORMS = {
    "scnet": ArchSpec("scnet", dict(num_feat=16, num_block=3, upscale=4, use_pixelshuffle=True)),
    "scnet-interp": ArchSpec("scnet", dict(num_feat=16, num_block=2, upscale=3)),
    "span": ArchSpec("span", dict(feature_channels=8, upscale=4)),
    "lesrcnn": ArchSpec("lesrcnn", dict(scale=2, num_feat=8)),
}


@pytest.mark.parametrize("name", TRAINING_FORMS)
def test_deploy_path_equals_training_form(name):
    """Fused, channels-last, depthwise shift, inference mode: the same function (≤ 1e-4)."""
    spec = TRAINING_FORMS[name]
    net = _perturbed(spec.build())
    image = torch.rand(1, 3, 23, 19)
    with torch.no_grad():
        expected = net(image)
    model = SRModel(net, spec).deploy(reuse_memory=False)
    assert isinstance(model.runner, DeployedNet) and model.runner.memory_format == torch.channels_last
    assert (model.run(image) - expected).abs().max().item() <= 1e-4
    tiled = upscale_tensor(model.runner, image, model.scale, tile=8)
    assert (tiled - expected).abs().max().item() <= 1e-4


def test_head_and_tail_are_the_image_facing_convolutions():
    lesrcnn = LESRCNN(2, num_feat=8)
    head, tail = head_and_tail(lesrcnn, 2)
    assert head == [lesrcnn.sub_mean.shifter, lesrcnn.conv1[0]]
    assert tail == [lesrcnn.conv18[0], lesrcnn.add_mean.shifter]
    span = SPAN(feature_channels=8, upscale=4).fuse()
    assert head_and_tail(span, 4) == ([span.conv_1.eval_conv], [span.upsampler[0]])


def test_mixed_precision_copy_leaves_the_network_alone():
    net = NETS["span"]()
    mixed = mixed_precision_copy(net, 4)
    assert isinstance(mixed.conv_1.eval_conv, _FullPrecision) and isinstance(mixed.upsampler[0], _FullPrecision)
    assert isinstance(mixed.block_3.c2_r.eval_conv, _FloatOutput)
    assert isinstance(net.block_3.c2_r.eval_conv, torch.nn.Conv2d)
    eager = mixed_precision_copy(net, 4, float_activations=False)
    assert isinstance(eager.block_3.c2_r.eval_conv, torch.nn.Conv2d) and isinstance(eager.upsampler[0], _FullPrecision)
    # SPAN's fusion conv before the upsampler is precision-sensitive (measured: see SPAN)
    assert isinstance(mixed.conv_cat, _FullPrecision) and isinstance(eager.conv_cat, _FullPrecision)
    image = torch.rand(1, 3, 12, 12)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = mixed(image, 4)
    reference = upscale_tensor(net, image, 4)
    assert out.dtype == torch.float32
    assert (out - reference).abs().max() < 0.02 * reference.abs().max()


def test_reduced_precision_falls_back_once_per_model():
    class Overflowing(torch.nn.Module):
        scales, receptive_radius = (2,), 0

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 1)
            self.calls = 0

        def forward(self, x, scale):
            self.calls += 1
            out = torch.nn.functional.interpolate(self.conv(x).float(), scale_factor=2)
            return out * float("inf") if torch.is_autocast_enabled("cpu") else out

    net = Overflowing()
    runner = DeployedNet(net)
    image = torch.rand(1, 3, 6, 6)
    with pytest.warns(PrecisionFallbackWarning, match="from now on"):
        assert torch.isfinite(runner(image, 2, "bf16")).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning, and no second bf16 attempt
        calls = net.calls
        assert torch.isfinite(runner(image, 2, "bf16")).all()
        assert net.calls == calls + 1


def test_activation_estimate_sees_wide_output_resolution_layers():
    """SCNet and LESRCNN keep 64 channels at ×4 resolution; the estimate must cover that."""
    scnet = activation_bytes_per_pixel(SCNet(num_feat=64, num_block=1, upscale=4, use_pixelshuffle=True), 4)
    span = activation_bytes_per_pixel(SPAN(feature_channels=48, upscale=4), 4)
    assert scnet >= 4 * 2 * 64 * 16 and span < scnet


def test_keep_freed_host_memory_is_harmless():
    assert keep_freed_host_memory() in (True, False)
    assert keep_freed_host_memory() in (True, False)  # idempotent
    assert torch.ones(1 << 20).sum() == 1 << 20


def test_model_to_rebuilds_the_runner_and_save_still_works(tmp_path):
    spec = TRAINING_FORMS["scnet"]
    model = SRModel(_perturbed(spec.build()), spec).deploy(reuse_memory=False)
    first = model.runner
    assert model.to("cpu").runner is not first and model.runner.memory_format == torch.channels_last
    assert model.save(tmp_path / "m.safetensors").stat().st_size > 0


def test_compile_is_lazy_and_keeps_a_recompile_budget():
    """Compiling itself is minutes of CPU, so only its set-up is tested here (benchmarks/ runs it)."""
    runner = DeployedNet(NETS["span"](), compile=True)
    forward = runner.forward_for(torch.float32, 4)
    assert isinstance(forward, torch._dynamo.eval_frame.OptimizedModule) and runner.compiled
    assert torch._dynamo.config.recompile_limit >= 64
    assert runner.forward_for(torch.float32, 4) is forward  # built once per precision


def test_span_keeps_fp32_activations_under_reduced_precision_even_eagerly():
    span, scnet = NETS["span"]().fuse(), NETS["scnet"]()
    assert span.float_activations_in_reduced_precision and not scnet.float_activations_in_reduced_precision
    forward = DeployedNet(span).forward_for(torch.bfloat16, 4)
    assert isinstance(forward.net.block_3.c2_r.eval_conv, _FloatOutput)
    forward = DeployedNet(scnet).forward_for(torch.bfloat16, 4)
    assert not any(isinstance(m, _FloatOutput) for m in forward.net.modules())
