"""Input discovery and output planning of batch upscaling."""
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from litesr import ArchSpec, SRModel
from litesr.batch import UpscaleOptions, collect_inputs, output_is_file, plan_jobs, run_batch


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_collect_files_folders_globs_and_problems(tmp_path):
    a = _touch(tmp_path / "in" / "a.PNG")
    b = _touch(tmp_path / "in" / "sub" / "b.jpg")
    _touch(tmp_path / "in" / "readme.txt")
    (tmp_path / "empty").mkdir()
    found, problems, warnings = collect_inputs([str(tmp_path / "in"), str(a), str(tmp_path / "in" / "**" / "*.jpg"),
                                      str(tmp_path / "empty"), str(tmp_path / "missing.png"), str(tmp_path / "*.bmp")])
    assert (a, Path("a.PNG")) in found and (b, Path("sub/b.jpg")) in found and (b, Path("b.jpg")) in found
    assert (a, Path("a.PNG")) == found[0] and len(found) == 3  # the duplicate a.PNG is listed once
    assert [reason for _, reason in problems] == ["folder holds no images", "no such file or folder",
                                                  "pattern matches no files"]
    assert warnings == []


def test_plan_names_formats_and_single_named_output(tmp_path):
    inputs = [(tmp_path / "x.gif", Path("x.gif")), (tmp_path / "s" / "y.jpg", Path("s/y.jpg"))]
    jobs = plan_jobs(inputs, tmp_path / "out", UpscaleOptions(), "x4")
    assert [j.target for j in jobs] == [tmp_path / "out" / "x_x4.png", tmp_path / "out" / "s" / "y_x4.jpg"]
    jobs = plan_jobs(inputs, tmp_path / "out", UpscaleOptions(format="webp", suffix="-big"), "x4")
    assert [j.target.name for j in jobs] == ["x-big.webp", "y-big.webp"]
    single = plan_jobs(inputs[:1], tmp_path / "result.png", UpscaleOptions(), "x4")
    assert single[0].target == tmp_path / "result.png"


def test_output_is_a_file_only_for_one_input_named_like_an_image(tmp_path):
    (tmp_path / "dir.png").mkdir()
    assert output_is_file(tmp_path / "x.png", 1) and output_is_file(tmp_path / "x.WEBP", 1)
    assert not output_is_file(tmp_path / "x.png", 2)  # several inputs: a folder named x.png
    assert not output_is_file(tmp_path / "x.txt", 1) and not output_is_file(tmp_path / "dir.png", 1)


def test_run_batch_reports_every_tile_of_every_image(tmp_path):
    spec = ArchSpec("scnet", dict(num_feat=8, num_block=1, upscale=2))
    torch.manual_seed(0)
    model = SRModel(spec.build(), spec).deploy()
    pixels = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    for name in ("a", "b"):
        Image.fromarray(pixels).save(tmp_path / f"{name}.png")
    (tmp_path / "bad.png").write_text("not an image")
    inputs = [(tmp_path / f"{name}.png", Path(f"{name}.png")) for name in ("a", "bad", "b")]
    jobs = plan_jobs(inputs, tmp_path / "out", UpscaleOptions(), "x2")
    tiles, done = [], []
    report = run_batch(model, jobs, UpscaleOptions(tile=8), on_done=done.append,
                       on_tile=lambda job, index, total: tiles.append((job.source.name, index, total)))
    assert len(report.written) == 2 and len(report.failed) == 1
    assert done == jobs  # every job, failed ones included
    per_image = [(name, index, total) for name, index, total in tiles if name == "a.png"]
    assert [index for _, index, _ in per_image] == list(range(1, 13)) and {t for *_, t in per_image} == {12}
    assert [name for name, *_ in tiles] == ["a.png"] * 12 + ["b.png"] * 12  # 3×4 tiles of 8 px; none for bad.png
