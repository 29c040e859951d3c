"""INT8 through ONNX Runtime static quantization: calibration sources, the graph, the cache and the CLI."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional as F

pytest.importorskip("onnx", reason="needs the onnx package: pip install 'litesr[onnx]'")
pytest.importorskip("onnxruntime", reason="needs onnxruntime: pip install 'litesr[onnx]'")

from litesr import SRModel, quantize  # noqa: E402
from litesr.cache import CACHE_ENV  # noqa: E402
from litesr.cli import main  # noqa: E402
from litesr.export import OnnxError, OrtNet, export_onnx, load_onnx  # noqa: E402
from litesr.inference import head_and_tail  # noqa: E402
from litesr.quantize import Calibration, CalibrationError, int8_fidelity, int8_model, quantize_int8  # noqa: E402
from litesr.spec import ArchSpec  # noqa: E402

SPECS = {
    "scnet": ArchSpec("scnet", dict(num_feat=16, num_block=2, upscale=2, use_pixelshuffle=True)),
    "span": ArchSpec("span", dict(feature_channels=8, upscale=2)),
    "lesrcnn": ArchSpec("lesrcnn", dict(scale=2, multi_scale=False, num_feat=8)),
}


def _model(name):
    torch.manual_seed(0)
    spec = SPECS[name]
    return SRModel(spec.build().eval(), spec, name=f"tiny-{name}")


def _smooth(height, width, seed):
    """An image-like RGB array: a coarse random field, bicubic-enlarged (networks stay in range on it)."""
    coarse = torch.rand(1, 3, height // 8 + 2, width // 8 + 2, generator=torch.Generator().manual_seed(seed))
    field = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)
    return (field[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def training_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    for index in range(4):
        Image.fromarray(_smooth(48, 56, index)).save(folder / f"img{index}.png")
    return folder


@pytest.fixture
def calibration(training_folder):
    return Calibration(training_folder, crops=6, size=16)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Every test quantizes into its own cache folder, never the user's."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


def _psnr_vs_fp32(model, runner, image):
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        expected = model.net(x).clamp(0, 1)
        got = runner(x, model.scale, "int8").clamp(0, 1)
    return 10 * torch.log10(1 / ((expected - got) ** 2).mean()).item()


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "span" else n for n in SPECS])
def test_each_family_quantizes_with_its_image_facing_convs_in_fp32(name, calibration):
    model = _model(name)
    data = quantize_int8(model, calibration)
    runner = OrtNet(data)
    meta = runner.metadata
    assert meta["precision"] == "int8" and runner.precision == "int8"
    assert meta["scale"] == 2 and meta["dynamic_shape"] and "6 LR crops of 16×16" in meta["calibration"]
    net = model.net.fuse()
    head, tail = head_and_tail(net, 2)
    assert len(meta["fp32_nodes"]) >= len(head) + len(tail) >= 2
    names = {id(module): name for name, module in net.named_modules()}
    for layer in net.precision_sensitive_layers():  # SPAN's conv_cat
        assert any(f"/{names[id(layer)]}/" in node for node in meta["fp32_nodes"])
    graph = __import__("onnx").load_from_string(data).graph
    ops = {node.name: node.op_type for node in graph.node}
    assert all(ops[node] == "Conv" for node in meta["fp32_nodes"])
    quantized = [n for n in graph.node if n.op_type == "DequantizeLinear"]
    assert quantized, "nothing was quantized"
    # A kept conv reads no int8 weight: its weight input is a float initializer, not a DequantizeLinear output.
    dequantized = {out for n in quantized for out in n.output}
    kept = [n for n in graph.node if n.name in meta["fp32_nodes"]]
    assert all(node.input[1] not in dequantized for node in kept)
    assert _psnr_vs_fp32(model, runner, _smooth(40, 36, 9)) > 30
    assert int8_fidelity(data, model) > 30


def test_int8_model_is_cached_and_not_quantized_twice(calibration, cache, monkeypatch):
    model = _model("scnet")
    first = int8_model(model, calibration)
    assert [p.suffix for p in (cache / "int8").iterdir()] == [".onnx"]

    def fail(*args, **kwargs):
        raise AssertionError("quantized again despite the cache")

    monkeypatch.setattr(quantize, "quantize_int8", fail)
    second = int8_model(model, calibration)
    image = _smooth(20, 24, 3)
    assert np.array_equal(first.upscale(image, precision="int8"), second.upscale(image, precision="int8"))
    # Another calibration is another graph.
    with pytest.raises(AssertionError, match="quantized again"):
        int8_model(model, Calibration(calibration.source, crops=5, size=16))


def test_int8_runner_refuses_to_claim_fp32(calibration):
    model = int8_model(_model("lesrcnn"), calibration)
    x = torch.rand(1, 3, 8, 8)
    assert model.runner(x, 2).shape == (1, 3, 16, 16)
    with pytest.raises(OnnxError, match=r"exported in \(int8\), not fp32"):
        model.runner(x, 2, "fp32")


@pytest.mark.parametrize("name", ["Set5", "set14", "B100", "BSD100", "urban100", "Manga109"])
def test_benchmark_sets_are_refused(name, tmp_path):
    folder = tmp_path / name
    folder.mkdir()
    Image.fromarray(_smooth(32, 32, 0)).save(folder / "a.png")
    with pytest.raises(CalibrationError, match="benchmark set"):
        quantize_int8(_model("scnet"), folder)
    (folder / "HR").mkdir()
    Image.fromarray(_smooth(32, 32, 0)).save(folder / "HR" / "a.png")
    with pytest.raises(CalibrationError, match="benchmark set"):
        Calibration(folder / "HR").images()


def test_empty_and_missing_folders_are_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images")
    with pytest.raises(CalibrationError, match="no calibration images"):
        quantize_int8(_model("scnet"), tmp_path / "empty")
    with pytest.raises(CalibrationError, match="does not exist"):
        Calibration(tmp_path / "missing").images()


def test_crops_are_deterministic_same_sized_and_bicubic_downscaled(calibration, training_folder):
    crops = calibration.lr_crops(2)
    assert len(crops) == 6 and {c.shape for c in crops} == {(1, 3, 16, 16)}
    assert all(np.array_equal(a, b) for a, b in zip(crops, calibration.lr_crops(2)))
    assert not np.array_equal(crops[0], Calibration(training_folder, crops=6, size=16, seed=1).lr_crops(2)[0])
    # Images too small for the crop size: the crops shrink to the smallest LR side there is.
    assert {c.shape for c in Calibration(training_folder, crops=3, size=96).lr_crops(2)} == {(1, 3, 24, 24)}


# --------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return _model("lesrcnn").save(tmp_path_factory.mktemp("w") / "tiny_x2.safetensors")


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_cli_export_int8_then_upscale_with_it(weights, training_folder, tmp_path, capsys):
    path = tmp_path / "tiny.int8.onnx"
    code, out, err = run(capsys, "export", "-w", weights, "--int8", "--calibration", training_folder, "-o", path)
    assert code == 0, err
    assert "kept in fp32: /net/" in out and "PSNR" in out and "int8" in out
    assert json.loads(__import__("onnx").load(str(path)).metadata_props[0].value)["precision"] == "int8"
    assert load_onnx(path).runner.precision == "int8"
    Image.fromarray(_smooth(20, 18, 1)).save(tmp_path / "in.png")
    code, _, err = run(capsys, "upscale", "-w", path, "--backend", "onnxruntime", "--precision", "int8", "-q",
                       tmp_path / "in.png", "-o", tmp_path / "out.png")
    assert code == 0, err
    assert Image.open(tmp_path / "out.png").size == (36, 40)
    # auto resolves to the file's own precision; fp32 is refused.
    code, _, err = run(capsys, "upscale", "-w", path, "--backend", "onnxruntime", "-q", "--overwrite",
                       tmp_path / "in.png", "-o", tmp_path / "out.png")
    assert code == 0, err
    code, _, err = run(capsys, "upscale", "-w", path, "--backend", "onnxruntime", "--precision", "fp32",
                       tmp_path / "in.png", "-o", tmp_path / "o2.png")
    assert code == 1 and "is an int8 ONNX model: use --precision int8" in err


def test_cli_upscale_int8_quantizes_once_and_matches_the_api(weights, training_folder, tmp_path, capsys, cache):
    Image.fromarray(_smooth(20, 18, 1)).save(tmp_path / "in.png")
    for out in ("a.png", "b.png"):
        code, _, err = run(capsys, "upscale", "-w", weights, "--precision", "int8", "--calibration", training_folder,
                           tmp_path / "in.png", "-o", tmp_path / out)
        assert code == 0, err
        assert "int8 via onnxruntime" in err
    assert len(list((cache / "int8").iterdir())) == 1
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png")))


def test_cli_int8_usage_errors(weights, training_folder, tmp_path, capsys):
    Image.fromarray(_smooth(20, 18, 1)).save(tmp_path / "in.png")
    source = ["-w", weights, tmp_path / "in.png", "-o", tmp_path / "o.png"]
    with pytest.raises(SystemExit) as exited:
        run(capsys, "upscale", *source, "--precision", "int8", "--backend", "torch")
    assert exited.value.code == 2 and "runs on ONNX Runtime" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(capsys, "upscale", *source, "--precision", "fp32", "--calibration", training_folder)
    assert "--calibration applies to --precision int8" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(capsys, "export", "-w", weights, "--int8", "--fp16", "-o", tmp_path / "x.onnx")
    fp32 = tmp_path / "fp32.onnx"
    export_onnx(_model("lesrcnn"), fp32, dynamic_shape=True)
    code, _, err = run(capsys, "upscale", "-w", fp32, "--backend", "onnxruntime", "--precision", "int8",
                       tmp_path / "in.png", "-o", tmp_path / "o.png")
    assert code == 1 and "is a fp32 ONNX model: export an int8 one" in err
    code, _, err = run(capsys, "export", "-w", weights, "--int8", "--calibration", tmp_path / "Set5", "-o",
                       tmp_path / "x.onnx")
    assert code == 1 and err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_sensitivity_keeps_the_layer_whose_input_range_int8_cannot_hold():
    """A convolution fed one outlier channel (≈90 while the rest is ≈0.1) is the one kept in fp32."""
    from torch import nn

    from litesr.quant_sensitivity import sensitive_layers

    class Toy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.widen, self.mix, self.back = nn.Conv2d(3, 8, 1), nn.Conv2d(8, 8, 1), nn.Conv2d(8, 3, 1)
            with torch.no_grad():
                self.widen.bias[0] = 90.0  # channel 0 is huge ...
                self.mix.weight[:, 0] = 0.0  # ... and ignored by the next layer
                self.widen.weight.mul_(0.1)

        def forward(self, x: torch.Tensor, scale: int) -> torch.Tensor:
            return x + self.back(torch.relu(self.mix(self.widen(x)))) * 0.1

    generator = np.random.default_rng(0)
    pairs = []
    for _ in range(4):
        hr = generator.random((1, 3, 16, 16), dtype=np.float32)
        pairs.append((hr, hr))
    net = Toy()
    kept, report = sensitive_layers(net, pairs, 1)
    assert report.ranked()[0] == "mix" and net.mix in kept
    assert report.predicted_loss_db() <= 0.05 + 1e-9
    assert all(p.grad is None for p in net.parameters())


def test_a_graph_that_misses_on_the_calibration_crops_keeps_more_layers(calibration, monkeypatch):
    """With an unreachable loss bound every measured layer ends up fp32, re-quantizing as it goes."""
    import litesr.quantize as quantize

    model = _model("lesrcnn")
    relaxed = OrtNet(quantize_int8(model, calibration)).metadata
    monkeypatch.setattr(quantize, "VALIDATED_LOSS_DB", -1.0)
    strict = OrtNet(quantize_int8(model, calibration)).metadata
    assert len(strict["fp32_nodes"]) > len(relaxed["fp32_nodes"])
    assert len(strict["measured_fp32_layers"]) > len(relaxed["measured_fp32_layers"])
    assert isinstance(strict["calibration_loss_db"], float) and "predicted_loss_db" in strict
