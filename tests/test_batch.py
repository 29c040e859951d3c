"""Input discovery and output planning of batch upscaling."""
from pathlib import Path

from litesr.batch import UpscaleOptions, collect_inputs, plan_jobs


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_collect_files_folders_globs_and_problems(tmp_path):
    a = _touch(tmp_path / "in" / "a.PNG")
    b = _touch(tmp_path / "in" / "sub" / "b.jpg")
    _touch(tmp_path / "in" / "readme.txt")
    (tmp_path / "empty").mkdir()
    found, problems = collect_inputs([str(tmp_path / "in"), str(a), str(tmp_path / "in" / "**" / "*.jpg"),
                                      str(tmp_path / "empty"), str(tmp_path / "missing.png"), str(tmp_path / "*.bmp")])
    assert (a, Path("a.PNG")) in found and (b, Path("sub/b.jpg")) in found and (b, Path("b.jpg")) in found
    assert (a, Path("a.PNG")) == found[0] and len(found) == 3  # the duplicate a.PNG is listed once
    assert [reason for _, reason in problems] == ["folder holds no images", "no such file or folder",
                                                  "pattern matches no files"]


def test_plan_names_formats_and_single_named_output(tmp_path):
    inputs = [(tmp_path / "x.gif", Path("x.gif")), (tmp_path / "s" / "y.jpg", Path("s/y.jpg"))]
    jobs = plan_jobs(inputs, tmp_path / "out", UpscaleOptions(), "x4")
    assert [j.target for j in jobs] == [tmp_path / "out" / "x_x4.png", tmp_path / "out" / "s" / "y_x4.jpg"]
    jobs = plan_jobs(inputs, tmp_path / "out", UpscaleOptions(format="webp", suffix="-big"), "x4")
    assert [j.target.name for j in jobs] == ["x-big.webp", "y-big.webp"]
    single = plan_jobs(inputs[:1], tmp_path / "result.png", UpscaleOptions(), "x4")
    assert single[0].target == tmp_path / "result.png"
