"""A fourth architecture needs one module and one ``register`` call — nothing else in LiteSR.

This file is that module for a small ESPCN-like network (Shi et al. 2016: two tanh convs and
a sub-pixel output layer). Registered here, it loads with ``litesr.load``, is detected from a
saved checkpoint of any format, trains from an option file that names it, profiles and exports
to ONNX — with no change to the library.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import litesr
from litesr.archs import Architecture, SRNet, architectures, get_architecture, register, unregister
from litesr.archs.detection import StateDict, shape, square_root
from litesr.detect import detect_architecture
from litesr.errors import CheckpointError, LiteSRError
from litesr.spec import ArchSpec

ESPCN_SCALES = (2, 3, 4)


class ESPCN(SRNet):
    def __init__(self, num_feat: int = 16, upscale: int = 2) -> None:
        super().__init__()
        self.scales = (upscale,)
        self.feature = nn.Conv2d(3, num_feat, 5, padding=2)
        self.middle = nn.Conv2d(num_feat, num_feat // 2, 3, padding=1)
        self.subpixel = nn.Conv2d(num_feat // 2, 3 * upscale * upscale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(upscale)

    @property
    def receptive_radius(self) -> int:
        return 2 + 1 + 1

    def forward(self, x: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        self.check_scale(scale)
        return self.shuffle(self.subpixel(torch.tanh(self.middle(torch.tanh(self.feature(x))))))


def detect_espcn(state_dict: StateDict, scale_hint: int | None) -> dict[str, Any] | None:
    if "subpixel.weight" not in state_dict or "feature.weight" not in state_dict:
        return None
    num_feat = shape(state_dict, "feature.weight", 4, "ESPCN")[0]
    upscale = square_root(shape(state_dict, "subpixel.weight", 4, "ESPCN")[0] // 3)
    if upscale not in ESPCN_SCALES:
        raise CheckpointError(f"ESPCN checkpoint's sub-pixel layer fits no supported scale (×{upscale})")
    return dict(num_feat=num_feat, upscale=upscale)


def small_init(net: SRNet) -> SRNet:
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.normal_(module.weight, std=1e-3)
    return net


ESPCN_ARCHITECTURE = Architecture(name="espcn", network=ESPCN, scale_argument="upscale", scales=ESPCN_SCALES,
                                  detect=detect_espcn, weight_inits={"small": small_init})


@pytest.fixture(autouse=True)
def espcn_registered():
    register(ESPCN_ARCHITECTURE)
    yield
    unregister("espcn")


def _trained_looking(upscale: int = 3) -> ESPCN:
    torch.manual_seed(upscale)
    return ESPCN(num_feat=16, upscale=upscale).eval()


def test_the_registry_lists_it_after_the_built_in_families():
    assert [a.name for a in architectures()] == ["scnet", "span", "lesrcnn", "espcn"]
    assert get_architecture("ESPCN") is ESPCN_ARCHITECTURE
    assert ESPCN_ARCHITECTURE.defaults() == {"num_feat": 16, "upscale": 2}
    assert ArchSpec("espcn", {"upscale": 4}).scales == (4,)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_load_detects_it_from_a_saved_checkpoint(tmp_path, suffix):
    net = _trained_looking(3)
    path = tmp_path / f"espcn{suffix}"
    if suffix == ".pth":
        torch.save({"params_ema": net.state_dict()}, path)  # a BasicSR-style file, no metadata
    else:
        litesr.SRModel(net, ArchSpec("espcn", {"num_feat": 16, "upscale": 3})).save(path)
    model = litesr.load(path)
    assert model.arch == "espcn" and model.scale == 3
    assert dict(model.spec.kwargs) == {"num_feat": 16, "upscale": 3}
    image = np.random.default_rng(0).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    out = model.upscale(image)
    with torch.inference_mode():
        expected = net(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255)
    reference = (expected.clamp(0, 1) * 255).round().byte()[0].permute(1, 2, 0).numpy()
    assert out.shape == (30, 36, 3)
    assert np.abs(out.astype(int) - reference.astype(int)).max() <= 1


def test_detection_and_its_errors_go_through_the_registry():
    spec = detect_architecture(_trained_looking(2).state_dict())
    assert spec == ArchSpec("espcn", {"num_feat": 16, "upscale": 2})
    broken = {"feature.weight": torch.zeros(16, 3, 5, 5), "subpixel.weight": torch.zeros(5, 8, 3, 3)}
    with pytest.raises(CheckpointError, match="ESPCN checkpoint's sub-pixel layer"):
        detect_architecture(broken)
    with pytest.raises(CheckpointError, match="match none of SCNet, SPAN, LESRCNN, ESPCN"):
        detect_architecture({"encoder.weight": torch.zeros(1)})
    unregister("espcn")
    with pytest.raises(CheckpointError, match="match none of SCNet, SPAN, LESRCNN$"):
        detect_architecture(_trained_looking(2).state_dict())


def _image_folder(folder, count: int, size: int):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(count)
    for index in range(count):
        small = rng.integers(0, 255, (size // 8, size // 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((size, size), Image.BICUBIC).save(folder / f"{index}.png")
    return folder


def test_a_training_config_naming_it_trains(tmp_path):
    from litesr.train.config import parse_config
    from litesr.train.trainer import Trainer

    raw = {
        "name": "espcn-tiny", "scale": 2, "manual_seed": 1,
        "network_g": {"type": "ESPCN", "num_feat": 8},
        "datasets": {"train": {"name": "toy", "type": "HRImageDataset", "dataroot_gt": str(_image_folder(
            tmp_path / "hr", 3, 48)), "gt_size": 24, "batch_size_per_gpu": 2, "num_worker_per_gpu": 0}},
        "path": {"experiments_root": str(tmp_path / "exp")},
        "train": {"optim_g": {"type": "Adam", "lr": 1e-3}, "total_iter": 3, "weight_init": "small",
                  "pixel_opt": {"type": "L1Loss"}},
        "logger": {"print_freq": 1, "save_checkpoint_freq": 3, "use_tb_logger": False},
    }
    config, warnings = parse_config(raw)
    assert config.network_g.kwargs == {"num_feat": 8, "upscale": 2} and not warnings
    exported = Trainer(config, resume=False, device="cpu", progress=False).run()
    assert litesr.load(exported).spec == ArchSpec("espcn", {"num_feat": 8, "upscale": 2})

    with pytest.raises(LiteSRError, match=r"unknown ESPCN argument; valid ones are num_feat, upscale"):
        parse_config({**raw, "network_g": {"type": "ESPCN", "width": 8}})
    with pytest.raises(LiteSRError, match=r"ESPCN supports scale 2, 3, 4, got 8"):
        parse_config({**raw, "scale": 8})
    with pytest.raises(LiteSRError, match=r"'residual' is not implemented for ESPCN; use official or small"):
        parse_config({**raw, "train": {**raw["train"], "weight_init": "residual"}})


def test_profile_and_onnx_export_work_unchanged(tmp_path):
    pytest.importorskip("onnxruntime")
    from litesr.export import check_onnx, export_onnx
    from litesr.profile import profile_model

    model = litesr.SRModel(_trained_looking(2), ArchSpec("espcn", {"num_feat": 16, "upscale": 2}))
    result = profile_model(model.deploy(), (24, 24), runs=1, warmup=0)
    assert result.arch == "espcn" and result.conv_layers == 3
    assert result.macs == 24 * 24 * (16 * 3 * 25 + 8 * 16 * 9 + 12 * 8 * 9)
    data = export_onnx(model, tmp_path / "espcn.onnx", size=(24, 24))
    assert check_onnx(data, model, [(24, 24)]) < 1e-4
