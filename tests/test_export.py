"""ONNX export, ONNX Runtime as a backend, and the `litesr export` / `upscale --backend` commands."""
import sys

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("onnx", reason="needs the onnx package: pip install 'litesr[onnx]'")
pytest.importorskip("onnxruntime", reason="needs onnxruntime: pip install 'litesr[onnx]'")

from litesr import SRModel  # noqa: E402
from litesr.errors import LiteSRError, ScaleError  # noqa: E402
from litesr.profile import profile_model  # noqa: E402
from litesr.cli import main  # noqa: E402
from litesr.export import OnnxError, OrtNet, check_onnx, export_onnx, load_onnx, onnxruntime_model  # noqa: E402
from litesr.inference import upscale_tensor  # noqa: E402
from litesr.spec import ArchSpec  # noqa: E402

SPECS = {
    "scnet": ArchSpec("scnet", dict(num_feat=16, num_block=2, upscale=4, use_pixelshuffle=True)),
    "span": ArchSpec("span", dict(feature_channels=8, upscale=2)),
    "lesrcnn": ArchSpec("lesrcnn", dict(scale=3, num_feat=8)),
}


def _model(name):
    torch.manual_seed(0)
    spec = SPECS[name]
    net = spec.build().eval()
    with torch.no_grad():
        for p in net.parameters():
            if p.requires_grad:
                p.add_(0.3 * torch.randn_like(p) / p[0].numel() ** 0.5)
    return SRModel(net, spec, name=f"tiny-{name}")


@pytest.mark.parametrize("name", SPECS)
def test_onnxruntime_matches_pytorch_and_tiles_the_same(name):
    model = _model(name)
    ort_model = onnxruntime_model(model)
    assert ort_model.net is None and isinstance(ort_model.runner, OrtNet)
    assert ort_model.scale == model.scale and ort_model.runner.receptive_radius == model.net.receptive_radius
    image = torch.rand(1, 3, 21, 17)
    with torch.no_grad():
        expected = model.net(image)
    assert (ort_model.run(image) - expected).abs().max().item() <= 1e-4
    tiled = upscale_tensor(ort_model.runner, image, model.scale, tile=8)
    assert (tiled - expected).abs().max().item() <= 1e-4
    assert not any(p is None for p in [ort_model.spec, ort_model.device])


def test_export_file_metadata_and_static_shape(tmp_path):
    model = _model("span")
    path = tmp_path / "span.onnx"
    data = export_onnx(model, path, size=(12, 10), opset=13)
    assert path.read_bytes() == data
    loaded = load_onnx(path)
    assert loaded.arch == "span" and loaded.scale == 2 and loaded.spec.kwargs["deploy"] is True
    assert loaded.num_params() == sum(p.numel() for p in model.net.fuse().parameters())
    assert check_onnx(data, model, [(12, 10)]) <= 1e-4
    with pytest.raises(OnnxError, match="--dynamic-shape"):
        loaded.run(torch.rand(1, 3, 8, 8))
    with pytest.raises(OnnxError, match="precision it was exported in"):
        loaded.runner(torch.rand(1, 3, 12, 10), 2, "bf16")
    with pytest.raises(Exception, match="no PyTorch weights"):
        loaded.save(tmp_path / "x.safetensors")


def test_an_onnx_model_is_a_runner_without_a_network(tmp_path):
    model = _model("lesrcnn")
    ort_model = onnxruntime_model(model)
    assert ort_model.net is None and ort_model.scales == (3,) and ort_model.spec.arch == "lesrcnn"
    assert ort_model.num_params() == sum(p.numel() for p in model.net.parameters())
    with pytest.raises(ScaleError, match="this ONNX model serves ×3, not ×2"):
        ort_model.upscale(np.zeros((4, 4, 3), np.uint8), 2)
    with pytest.raises(LiteSRError, match="no PyTorch weights"):
        ort_model.save(tmp_path / "x.safetensors")
    with pytest.raises(OnnxError, match="ONNX model already"):
        export_onnx(ort_model)
    with pytest.raises(LiteSRError, match="no PyTorch graph"):
        profile_model(ort_model, (8, 8))
    image = np.random.default_rng(0).integers(0, 255, (13, 11, 4), dtype=np.uint8)
    assert np.abs(ort_model.upscale(image, tile=8).astype(int) - model.upscale(image)).max() <= 1


def test_fp16_export_runs_in_onnxruntime():
    model = _model("scnet")
    data = export_onnx(model, size=(16, 16), dynamic_shape=True, fp16=True)
    assert OrtNet(data).precision == "fp16"
    assert check_onnx(data, model, [(16, 16)]) < 0.05


def test_foreign_onnx_and_missing_package_are_clear_errors(tmp_path, monkeypatch):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph), foreign)
    with pytest.raises(OnnxError, match="not exported by LiteSR"):
        OrtNet(foreign)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    with pytest.raises(OnnxError, match=r"pip install 'litesr\[onnx\]'"):
        OrtNet(foreign)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return _model("lesrcnn").save(tmp_path_factory.mktemp("w") / "tiny_x3.safetensors")


def test_export_command_prints_the_check(weights, tmp_path, capsys):
    target = tmp_path / "m.onnx"
    code = main(["export", "-w", str(weights), "-o", str(target), "--dynamic-shape", "--size", "16x16"])
    out = capsys.readouterr().out
    assert code == 0 and target.exists() and "any size" in out and "max abs diff" in out
    assert float(out.rsplit("max abs diff", 1)[1].split()[0]) <= 1e-4
    assert main(["export", "-w", str(weights), "-o", str(tmp_path / "bad.onnx"), "--opset", "1"]) == 1
    assert "error: opset 1 is not supported" in capsys.readouterr().err and not (tmp_path / "bad.onnx").exists()


def test_upscale_backend_onnxruntime_equals_torch(weights, tmp_path, capsys):
    rgb = np.random.default_rng(0).integers(0, 255, (10, 12, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    onnx_file = tmp_path / "m.onnx"
    assert main(["export", "-w", str(weights), "-o", str(onnx_file), "--dynamic-shape", "--size", "16x16"]) == 0
    runs = {
        "torch": ["-w", str(weights)],
        "ort-export": ["-w", str(weights), "--backend", "onnxruntime"],
        "ort-file": ["-w", str(onnx_file), "--backend", "onnxruntime", "--tile", "8"],
    }
    outputs = {}
    for name, source in runs.items():
        assert main(["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / f"{name}.png"), "-q", *source]) == 0
        outputs[name] = np.asarray(Image.open(tmp_path / f"{name}.png")).astype(int)
    assert outputs["torch"].shape == (30, 36, 3)
    assert np.abs(outputs["ort-export"] - outputs["torch"]).max() <= 1
    assert np.abs(outputs["ort-file"] - outputs["torch"]).max() <= 1
    capsys.readouterr()
    assert main(["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / "x.png"), "-w", str(onnx_file)]) == 1
    assert "add --backend onnxruntime" in capsys.readouterr().err
