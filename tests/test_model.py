"""SRModel.upscale: the image types users hand it, and what comes back."""
import numpy as np
import pytest
import torch
from PIL import Image

from litesr import SRModel
from litesr.errors import LiteSRError, ScaleError
from litesr.inference import DeployedNet
from litesr.spec import ArchSpec


@pytest.fixture(scope="module")
def model():
    spec = ArchSpec("lesrcnn", dict(scale=2, multi_scale=False, num_feat=8))
    torch.manual_seed(0)
    return SRModel(spec.build(), spec)


def _image(shape, dtype=np.uint8):
    rng = np.random.default_rng(0)
    return rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype)


def test_rgb_uint8_round_trip_matches_run(model):
    image = _image((10, 12, 3))
    out = model.upscale(image)
    assert out.shape == (20, 24, 3) and out.dtype == np.uint8
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    expected = (model.run(tensor).clamp(0, 1) * 255).round()[0].permute(1, 2, 0).numpy()
    assert np.abs(out.astype(float) - expected).max() <= 1


def test_gray_stays_gray_and_16_bit_stays_16_bit(model):
    gray = model.upscale(_image((9, 7)))
    assert gray.shape == (18, 14) and gray.dtype == np.uint8
    deep = model.upscale(_image((9, 7, 3), np.uint16))
    assert deep.dtype == np.uint16 and deep.shape == (18, 14, 3)
    assert len(np.unique(deep)) > 256  # really 16-bit values, not 8-bit ones scaled


def test_alpha_is_kept_bicubic_or_through_model(model):
    rgba = _image((8, 8, 4))
    rgba[..., 3] = 200
    out = model.upscale(rgba)
    assert out.shape == (16, 16, 4) and (out[..., 3] == 200).all()
    through_model = model.upscale(rgba, alpha="model")
    assert through_model.shape == (16, 16, 4)
    gray_alpha = model.upscale(_image((8, 8, 2)))
    assert gray_alpha.shape == (16, 16, 2)


def test_pil_in_pil_out(model):
    for mode in ("RGB", "L", "RGBA"):
        image = Image.new(mode, (6, 5), 128 if mode == "L" else (128,) * len(mode))
        out = model.upscale(image)
        assert isinstance(out, Image.Image) and out.mode == mode and out.size == (12, 10)
    assert model.upscale(Image.new("P", (6, 5))).mode == "RGB"


def test_outscale_and_bad_input(model):
    assert model.upscale(_image((10, 10, 3)), outscale=1.5).shape == (15, 15, 3)
    with pytest.raises(ValueError, match="uint8/uint16"):
        model.upscale(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="alpha"):
        model.upscale(_image((4, 4, 3)), alpha="magic")
    with pytest.raises(ScaleError, match="×3"):
        model.upscale(_image((4, 4, 3)), scale=3)


def test_repr_and_params(model):
    assert "lesrcnn" in repr(model) and model.num_params() > 0 and model.scales == (2,)


def test_pil_input_is_turned_upright_as_its_exif_says(model, tmp_path):
    pixels = _image((6, 10, 3))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display turns it 90° clockwise
    Image.fromarray(pixels).save(tmp_path / "rotated.png", exif=exif.tobytes())
    with Image.open(tmp_path / "rotated.png") as photo:
        out = model.upscale(photo)
    assert out.size == (12, 20)  # (width, height) of the upright 10×6 image, ×2
    np.testing.assert_array_equal(np.asarray(out), model.upscale(np.ascontiguousarray(np.rot90(pixels, -1))))


def test_runner_and_network_views_agree():
    spec = ArchSpec("lesrcnn", dict(scale=3, num_feat=8))
    net = spec.build()
    model = SRModel(net, spec)
    assert model.net is net and model.scales == (3,) and model.scale == 3 and model.device.type == "cpu"
    assert model.num_params() == sum(p.numel() for p in net.parameters())
    assert model.check_scale(None) == 3 and model.spec == spec
    assert model.deploy(reuse_memory=False).runner is model.runner and isinstance(model.runner, DeployedNet)
    with pytest.raises(ScaleError, match="serves ×3, not ×2"):
        model.runner.check_scale(2)
    with pytest.raises(TypeError, match="network or a runner"):
        SRModel(None, spec)


def test_a_model_without_a_network_runs_but_cannot_be_saved(model, tmp_path):
    runner_only = SRModel(None, model.spec, name="runner", runner=DeployedNet(model.net))
    image = _image((5, 7, 3))
    np.testing.assert_array_equal(runner_only.upscale(image), model.upscale(image))
    assert runner_only.net is None and runner_only.scale == 2 and runner_only.num_params() == model.num_params()
    assert runner_only.deploy(reuse_memory=False).to("cpu") is runner_only
    with pytest.raises(LiteSRError, match="no PyTorch weights"):
        runner_only.save(tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()
    with pytest.raises(LiteSRError, match="load it again"):
        runner_only.to("meta")
