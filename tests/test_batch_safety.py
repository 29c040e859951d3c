"""Batch output safety: no two inputs into one output, no clobbering another run's file,
no silent skipping of broken links, and SIGTERM cleaned up like Ctrl-C."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from litesr import ArchSpec, SRModel
from litesr.archs import SCNet
from litesr.batch import Job, OutputCollisionError, collect_inputs, distinct_jobs, is_case_insensitive
from litesr.checkpoints import save_safetensors
from litesr.cli import EXIT_TERMINATED, main
from litesr.manifest import MANIFEST_FOLDER


def entries(folder):
    """What a run left in ``folder``, less the run manifest (the record a re-run resumes from)."""
    return sorted(p.name for p in folder.iterdir() if p.name != MANIFEST_FOLDER) if folder.exists() else []



@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A tiny real SCNet ×4 (8 features, one block): milliseconds per small image."""
    torch.manual_seed(0)
    net = SCNet(num_feat=8, num_block=1, upscale=4, use_pixelshuffle=True)
    spec = ArchSpec("scnet", dict(num_feat=8, num_block=1, upscale=4, use_pixelshuffle=True))
    return save_safetensors(tmp_path_factory.mktemp("w") / "tiny_x4.safetensors", net, spec)


def _image(path: Path, size: int = 8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(size).integers(0, 255, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def run(capsys, *args):
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def _no_upscaling(monkeypatch):
    monkeypatch.setattr(SRModel, "upscale", lambda *a, **k: pytest.fail("no image may be processed"))


# --------------------------------------------------------------------------- collisions


def test_two_inputs_into_one_output_is_refused_before_any_work(weights, tmp_path, capsys, monkeypatch):
    _image(tmp_path / "colA" / "pic.png")
    _image(tmp_path / "colB" / "pic.png")
    _no_upscaling(monkeypatch)
    code, err = run(capsys, "upscale", "-w", weights, "-q", tmp_path / "colA", tmp_path / "colB",
                    "-o", tmp_path / "out", "--overwrite", "--format", "png")
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith(f"error: {tmp_path / 'colA' / 'pic.png'} and {tmp_path / 'colB' / 'pic.png'} "
                          f"would both be written to {tmp_path / 'out' / 'pic_x4.png'}")
    assert not (tmp_path / "out").exists()


def test_same_name_with_another_suffix_collides_under_one_format(weights, tmp_path, capsys, monkeypatch):
    _image(tmp_path / "in" / "same.png")
    _image(tmp_path / "in" / "same.jpg")
    _image(tmp_path / "in" / "other.png")
    _no_upscaling(monkeypatch)
    code, err = run(capsys, "upscale", "-w", weights, "-q", tmp_path / "in", "-o", tmp_path / "out", "--format", "png")
    assert code == 1 and "same.jpg and" in err and "same.png would both be written to" in err
    assert str(tmp_path / "out" / "same_x4.png") in err and not (tmp_path / "out").exists()


def test_several_clashes_are_counted_in_the_one_line(tmp_path):
    jobs = [Job(tmp_path / f"{folder}/{name}.png", tmp_path / f"out/{name}.png") for name in "ab" for folder in "xy"]
    with pytest.raises(OutputCollisionError, match=r"\(and 1 more clash\(es\)\)"):
        distinct_jobs(jobs, case_insensitive=False)


def test_one_file_named_twice_is_upscaled_once(tmp_path):
    source = _image(tmp_path / "a.png")
    jobs = [Job(source, tmp_path / "out/a_x4.png"), Job(tmp_path / "." / ".." / tmp_path.name / "a.png",
                                                         tmp_path / "out/a_x4.png")]
    assert distinct_jobs(jobs, case_insensitive=False) == jobs[:1]


def test_names_differing_in_case_collide_only_where_case_is_ignored(tmp_path):
    jobs = [Job(_image(tmp_path / "x" / "A.png"), tmp_path / "out/A.png"),
            Job(_image(tmp_path / "y" / "a.png"), tmp_path / "out/a.png")]
    assert distinct_jobs(jobs, case_insensitive=False) == jobs
    with pytest.raises(OutputCollisionError, match="one file on this case-insensitive file system"):
        distinct_jobs(jobs, case_insensitive=True)


@pytest.mark.skipif(sys.platform != "linux", reason="Linux file systems are case-sensitive")
def test_case_sensitivity_is_probed_without_writing(tmp_path):
    (tmp_path / "Probe.txt").write_text("x")
    before = sorted(tmp_path.iterdir())
    assert not is_case_insensitive(tmp_path / "new" / "folder")
    assert sorted(tmp_path.iterdir()) == before


# --------------------------------------------------------------------------- another run's file


def _another_run_writes_first(monkeypatch, target: Path):
    """The other run publishes ``target`` while this one is still upscaling."""
    original = SRModel.upscale

    def upscale(self, *args, **kwargs):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"the other run's result")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SRModel, "upscale", upscale)


def test_a_file_created_meanwhile_is_not_clobbered(weights, tmp_path, capsys, monkeypatch):
    source = _image(tmp_path / "a.png")
    target = tmp_path / "out" / "a_x4.png"
    _another_run_writes_first(monkeypatch, target)
    code, err = run(capsys, "upscale", "-w", weights, "-q", source, "-o", tmp_path / "out")
    assert code == 1 and f"error: {source}: cannot write {target}: it was created meanwhile" in err, err
    assert target.read_bytes() == b"the other run's result"
    assert entries(target.parent) == ["a_x4.png"]  # no temp file left


def test_a_file_created_meanwhile_is_skipped_with_skip_existing(weights, tmp_path, capsys, monkeypatch):
    source = _image(tmp_path / "a.png")
    target = tmp_path / "out" / "a_x4.png"
    _another_run_writes_first(monkeypatch, target)
    code, err = run(capsys, "upscale", "-w", weights, source, "-o", tmp_path / "out", "--skip-existing")
    assert code == 0 and f"warning: {target}: created meanwhile" in err and "1 skipped" in err, err
    assert target.read_bytes() == b"the other run's result"


def test_overwrite_replaces_a_file_created_meanwhile(weights, tmp_path, capsys, monkeypatch):
    target = tmp_path / "out" / "a_x4.png"
    _another_run_writes_first(monkeypatch, target)
    code, err = run(capsys, "upscale", "-w", weights, "-q", _image(tmp_path / "a.png"), "-o", tmp_path / "out",
                    "--overwrite")
    assert code == 0, err
    assert Image.open(target).size == (32, 32)


# --------------------------------------------------------------------------- links in input folders


@pytest.fixture
def linked_folder(tmp_path):
    """in/ with an image, a dangling link, a link loop, a link to its parent and a link to a sibling."""
    root = tmp_path / "in"
    _image(root / "a.png")
    _image(root / "sub" / "b.png")
    (root / "dangling.png").symlink_to(root / "missing.png")
    (root / "loop1.png").symlink_to(root / "loop2.png")
    (root / "loop2.png").symlink_to(root / "loop1.png")
    (root / "sub" / "up").symlink_to(root)
    (root / "alias").symlink_to(root / "sub")
    (root / "notes.txt").symlink_to(root / "gone.txt")  # not an image: ignored like any text file
    return root


def test_broken_links_are_problems_and_a_folder_is_walked_once(linked_folder):
    files, problems, warnings = collect_inputs([str(linked_folder)])
    assert [relative for _, relative in files] == [Path("a.png"), Path("sub/b.png")]
    assert sorted((path.name, reason) for path, reason in problems) == [
        ("dangling.png", "dangling symbolic link"), ("loop1.png", "symbolic link loop"),
        ("loop2.png", "symbolic link loop")]
    repeat = "symbolic link to {}, a folder already searched; not searched again"
    assert {path.name: note for path, note in warnings} == {"alias": repeat.format(linked_folder / "sub"),
                                                            "up": repeat.format(linked_folder)}


def test_a_recursive_glob_does_not_enter_link_loops(linked_folder):
    files, problems, _ = collect_inputs([str(linked_folder / "**" / "*.png")])
    assert sorted(path.relative_to(linked_folder).as_posix() for path, _ in files) == ["a.png", "sub/b.png"]
    assert sorted(path.name for path, _ in problems) == ["dangling.png", "loop1.png", "loop2.png"]


def test_a_dangling_link_argument_says_so(tmp_path):
    (tmp_path / "gone.png").symlink_to(tmp_path / "nowhere.png")
    assert collect_inputs([str(tmp_path / "gone.png")]).problems == [(tmp_path / "gone.png", "dangling symbolic link")]


def test_an_invalid_glob_is_a_problem_not_a_traceback(tmp_path):
    [(path, reason)] = collect_inputs([str(tmp_path / "**x" / "*.png")]).problems
    assert path == tmp_path / "**x" / "*.png" and reason.startswith("invalid pattern")


def test_cli_reports_links_and_fails(weights, tmp_path, capsys, linked_folder):
    code, err = run(capsys, "upscale", "-w", weights, linked_folder, "-o", tmp_path / "out")
    assert code == 1
    assert f"error: {linked_folder / 'dangling.png'}: dangling symbolic link" in err.splitlines()
    assert f"error: {linked_folder / 'loop1.png'}: symbolic link loop" in err.splitlines()
    assert f"warning: {linked_folder / 'sub' / 'up'}: symbolic link to {linked_folder}" in err
    assert "upscaled 2 file(s), 3 failed" in err
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png")) == [
        "a_x4.png", "sub/b_x4.png"]


# --------------------------------------------------------------------------- SIGTERM


def test_sigterm_in_process_exits_143_and_restores_the_handler(weights, tmp_path, capsys, monkeypatch):
    def terminate(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler interrupts this at once
        pytest.fail("SIGTERM did not interrupt")

    def previous(signum, frame):
        pytest.fail("the CLI's handler must be in place while it runs")

    monkeypatch.setattr(SRModel, "upscale", terminate)
    old = signal.signal(signal.SIGTERM, previous)
    try:
        code, err = run(capsys, "upscale", "-w", weights, "-q", _image(tmp_path / "a.png"), "-o", tmp_path / "out")
        assert signal.getsignal(signal.SIGTERM) is previous
    finally:
        signal.signal(signal.SIGTERM, old)
    assert code == EXIT_TERMINATED == 143 and err == "terminated\n"
    assert entries(tmp_path / "out") == []


def _read_stderr_until(process: subprocess.Popen, wanted, deadline: float) -> str:
    """Read the child's stderr (tqdm redraws with \\r, no newline) until ``wanted(text)``."""
    text = ""
    os.set_blocking(process.stderr.fileno(), False)
    while time.monotonic() < deadline and process.poll() is None:
        chunk = process.stderr.read()
        if chunk:
            text += chunk.decode(errors="replace")
            if wanted(text):
                return text
        time.sleep(0.02)
    pytest.fail(f"the run ended or stalled before the expected moment:\n{text}")


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["tiling", "writing"])
def test_sigterm_mid_run_leaves_no_output_and_no_temp_file(weights, tmp_path, moment):
    source = tmp_path / "big.png"
    pixels = np.random.default_rng(0).integers(0, 255, (1500, 1500, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(source, compress_level=1)
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "litesr", "upscale", "-w", str(weights), str(source),
                                "-o", str(out), "--tile", "64", "--threads", "1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        _read_stderr_until(process, lambda text: re.search(r"[1-9]\d?%\|", text) is not None, deadline)  # tiling
        if moment == "writing":
            while not list(out.glob(".big_x4.png.*.tmp")):
                assert process.poll() is None and time.monotonic() < deadline, "the write never started"
                time.sleep(0.005)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == EXIT_TERMINATED, err
    assert b"terminated" in err and b"Traceback" not in err
    assert entries(out) == []
