"""Fuzzing the ``litesr`` command (and the API options behind it) with the issue-12 corpus.

The CLI's contract: a user's mistake or a hostile file is one ``error:`` line (exit 1) or
a usage message (exit 2), never a traceback; a failed input leaves no output file and no
temp file; and no file, however crafted, makes the process grow past a fixed memory bound.
The bound is measured on a real subprocess (peak RSS of a child, via ``getrusage``), the
only place an allocation shows no matter which library made it.
"""
from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import litesr
from litesr.manifest import MANIFEST_FOLDER
from corpus import (
    CORPUS_MAX_PIXELS,
    Case,
    checkpoint_cases,
    write_checkpoint_cases,
    write_image_cases,
    write_tiny_safetensors,
)
from litesr.cli import main
from litesr.errors import LiteSRError

#: Peak RSS allowed to one ``litesr`` process fed a hostile file. Importing torch and
#: LiteSR alone costs about 230 MB on CPU; a bypassed limit costs gigabytes.
RSS_LIMIT_MB = 400
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
LIGHT_CHECKPOINTS = [case for case in checkpoint_cases(Path("."), heavy=False) if case[1] == "error"]
#: Stderr lines the CLI may print with -q; anything else (a traceback line) is a failure.
ALLOWED_PREFIXES = ("error: ", "warning: ")


@dataclass
class Outcome:
    code: int
    stderr: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def assert_no_traceback(self) -> None:
        assert "Traceback" not in self.stderr and "internal error" not in self.stderr, self.stderr


def run_cli(*argv: str | Path) -> Outcome:
    """``litesr.cli.main`` in this process; argparse's exit (usage errors) becomes code 2."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main([str(arg) for arg in argv])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return Outcome(code, stderr.getvalue())


#: Runs a command as its child and reports the child's exit status and peak RSS (KiB),
#: so the figure is that one process's, not the maximum over everything pytest started.
_MEASURE = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)\n"
    "sys.stderr.write(done.stderr)\n"
    "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


@dataclass
class Measured(Outcome):
    peak_mb: float


def run_litesr_measured(*argv: str | Path, cwd: Path) -> Measured:
    """``python -m litesr ARGV`` in a fresh process, with its peak resident memory."""
    command = [sys.executable, "-c", _MEASURE, sys.executable, "-m", "litesr", *map(str, argv)]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    code, peak_kib = map(int, done.stdout.split())
    return Measured(code, done.stderr, peak_kib / 1024)


def leftovers(folder: Path) -> list[str]:
    """Temp files an interrupted or failed write might leave (hidden or ``*.tmp``), not the run manifest."""
    return [p.name for p in folder.rglob("*") if (p.name.startswith(".") or p.suffix == ".tmp")
            and MANIFEST_FOLDER not in p.relative_to(folder).parts]


def outputs_of(folder: Path, source: Path) -> list[Path]:
    return sorted(folder.rglob(f"{source.stem}_x2.*")) if folder.exists() else []


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_safetensors(tmp_path_factory.mktemp("weights") / "tiny-x2.safetensors")


@pytest.fixture(scope="module")
def small_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("input") / "small.png"
    Image.fromarray(np.arange(6 * 7 * 3, dtype=np.uint8).reshape(6, 7, 3)).save(path)
    return path


@pytest.fixture(scope="module")
def light_images(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    return write_image_cases(tmp_path_factory.mktemp("corpus") / "images", heavy=False)


@pytest.fixture(scope="module")
def full_images(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    return write_image_cases(tmp_path_factory.mktemp("corpus_full") / "images", heavy=True)


@pytest.fixture(scope="module")
def heavy_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    cases = write_checkpoint_cases(tmp_path_factory.mktemp("corpus_heavy") / "checkpoints", heavy=True)
    return {case.path.name: case.path for case in cases}


def assert_batch_report(outcome: Outcome, cases: list[Case], output: Path) -> None:
    """Each refused image is one error line naming it and has no output; each good one has its output."""
    outcome.assert_no_traceback()
    assert all(line.startswith(ALLOWED_PREFIXES) for line in outcome.lines), outcome.stderr
    assert not any("ICC profile (None)" in line for line in outcome.lines), outcome.stderr
    errors = [line for line in outcome.lines if line.startswith("error: ")]
    for case in cases:
        named = [line for line in errors if str(case.path) in line]
        if case.must_fail:
            assert len(named) == 1, f"{case.path.name} ({case.why}): {named or 'no error line'}"
            assert outputs_of(output, case.path) == [], f"{case.path.name} left an output"
        else:
            assert named == [], f"{case.path.name} must be upscaled: {named}"
            assert len(outputs_of(output, case.path)) == 1, f"{case.path.name} has no output"
    assert leftovers(output) == []
    assert outcome.code == (1 if any(case.must_fail for case in cases) else 0)


# --------------------------------------------------------------------------- in-process


def test_image_corpus_through_the_cli(tmp_path: Path, tiny_weights: Path, light_images: list[Case]) -> None:
    output = tmp_path / "out"
    outcome = run_cli("upscale", light_images[0].path.parent, "-o", output, "-w", tiny_weights,
                      "--max-pixels", CORPUS_MAX_PIXELS, "-q")
    assert_batch_report(outcome, light_images, output)


@pytest.mark.parametrize(("name", "expect", "why", "make"), LIGHT_CHECKPOINTS,
                         ids=[case[0] for case in LIGHT_CHECKPOINTS])
def test_bad_checkpoint_is_one_error_line(tmp_path: Path, small_image: Path, name: str, expect: str, why: str,
                                          make) -> None:
    weights = tmp_path / name
    weights.write_bytes(make())
    output = tmp_path / "out"
    outcome = run_cli("upscale", small_image, "-o", output, "-w", weights, "-q")
    outcome.assert_no_traceback()
    assert outcome.code == 1
    assert len(outcome.lines) == 1 and outcome.lines[0].startswith("error: ") and str(weights) in outcome.lines[0], \
        outcome.stderr
    assert not output.exists() or list(output.iterdir()) == []


@pytest.mark.parametrize("option", [
    ("--tile-pad", "-5"), ("--max-pixels", "0"), ("--max-pixels", "-3"), ("--tile", "-1"), ("--quality", "0"),
    ("--outscale", "0"), ("--outscale", "nan"), ("--scale", "0"), ("--max-pixels", "lots"), ("--threads", "0"),
])
def test_bad_option_values_are_usage_errors(tmp_path: Path, tiny_weights: Path, small_image: Path,
                                            option: tuple[str, str]) -> None:
    outcome = run_cli("upscale", small_image, "-o", tmp_path / "out", "-w", tiny_weights, "-q", *option)
    outcome.assert_no_traceback()
    assert outcome.code == 2 and "usage:" in outcome.stderr and option[0] in outcome.stderr, outcome.stderr
    assert not (tmp_path / "out").exists()


def _option_value(low: int, high: int) -> st.SearchStrategy[str]:
    """Mostly integers in range (so most runs get past the parser), sometimes text argparse must refuse."""
    number = st.integers(low, high).map(str)
    return st.one_of(number, number, number, st.sampled_from(["", "x", "1e3", "0x10", "-0", "3.5", " 2"]))


@pytest.fixture(scope="module")
def fuzz_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz_cli")


@FUZZ
@given(tile=_option_value(-2, 12), tile_pad=_option_value(-2, 12), max_pixels=_option_value(-1, 60),
       quality=_option_value(-1, 101), outscale=st.sampled_from(["", "0.5", "1", "3", "16", "17", "-1", "inf"]))
def test_fuzzed_option_values_never_crash(fuzz_output: Path, tiny_weights: Path, small_image: Path, tile: str,
                                          tile_pad: str, max_pixels: str, quality: str, outscale: str) -> None:
    output = fuzz_output / "out"
    shutil.rmtree(output, ignore_errors=True)
    argv = ["upscale", small_image, "-o", output, "-w", tiny_weights, "-q", "--format", "jpg",
            "--tile", tile, "--tile-pad", tile_pad, "--max-pixels", max_pixels, "--quality", quality]
    outcome = run_cli(*argv, *(["--outscale", outscale] if outscale else []))
    outcome.assert_no_traceback()
    if outcome.code == 2:
        assert "usage:" in outcome.stderr
    elif outcome.code == 1:
        assert outcome.lines and all(line.startswith(ALLOWED_PREFIXES) for line in outcome.lines), outcome.stderr
        assert outputs_of(output, small_image) == []
    else:
        assert outcome.code == 0, outcome.stderr
        assert len(outputs_of(output, small_image)) == 1
    assert not output.exists() or leftovers(output) == []


# --------------------------------------------------------------------------- the same mistakes through the API


@pytest.mark.parametrize(("image", "options"), [
    (np.zeros((0, 0, 3), np.uint8), {}),
    (np.zeros((0, 5, 3), np.uint8), {}),
    ([[1, 2], [3, 4]], {}),
    (np.zeros((4, 4, 3), np.float32), {}),
    (np.zeros((4, 4, 7), np.uint8), {}),
    (np.zeros((4, 4, 3), np.uint8), {"tile_pad": -5}),
    (np.zeros((4, 4, 3), np.uint8), {"tile": -1}),
    (np.zeros((4, 4, 3), np.uint8), {"scale": 3}),
    (np.zeros((4, 4, 3), np.uint8), {"outscale": 0}),
    (np.zeros((4, 4, 3), np.uint8), {"precision": "fp8"}),
    (np.zeros((4, 4, 3), np.uint8), {"alpha": "magic"}),
], ids=["0x0", "0x5", "list", "float32", "7-channels", "tile_pad-5", "tile-1", "scale3", "outscale0",
        "precision", "alpha"])
def test_api_mistakes_are_litesr_errors(tiny_weights: Path, image: object, options: dict[str, object]) -> None:
    model = litesr.load(tiny_weights)
    with pytest.raises(LiteSRError) as refused:
        model.upscale(image, **options)
    assert "\n" not in str(refused.value)


# --------------------------------------------------------------------------- subprocesses: end to end, memory


def test_subprocess_over_whole_image_corpus(tmp_path: Path, tiny_weights: Path, full_images: list[Case]) -> None:
    """One real ``python -m litesr upscale`` over every image, heavy ones included: no traceback."""
    output = tmp_path / "out"
    measured = run_litesr_measured("upscale", full_images[0].path.parent, "-o", output, "-w", tiny_weights,
                                   "--max-pixels", CORPUS_MAX_PIXELS, "-q", cwd=tmp_path)
    assert_batch_report(measured, full_images, output)
    assert measured.peak_mb < RSS_LIMIT_MB, f"peak RSS {measured.peak_mb:.0f} MB"
    print(f"\nwhole image corpus ({len(full_images)} files): peak RSS {measured.peak_mb:.0f} MB")


@pytest.mark.slow
def test_second_ihdr_bomb_stays_within_memory_bound(tmp_path: Path, tiny_weights: Path,
                                                    full_images: list[Case]) -> None:
    bomb = next(case.path for case in full_images if case.path.name.startswith("ihdr_bypass_8000"))
    measured = run_litesr_measured("upscale", bomb, "-o", tmp_path / "out", "-w", tiny_weights,
                                   "--max-pixels", 100, "-q", cwd=tmp_path)
    measured.assert_no_traceback()
    assert measured.code == 1 and len(measured.lines) == 1 and str(bomb) in measured.lines[0], measured.stderr
    assert measured.peak_mb < RSS_LIMIT_MB, f"peak RSS {measured.peak_mb:.0f} MB"
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    print(f"\n{bomb.name} --max-pixels 100: peak RSS {measured.peak_mb:.0f} MB")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["views_num_feat_6000.pth", "metadata_num_feat_3000.safetensors",
                                  "deflated_1gib_storage.pth"])
def test_tiny_checkpoint_declaring_a_huge_network_stays_within_memory_bound(
        tmp_path: Path, small_image: Path, heavy_checkpoints: dict[str, Path], name: str) -> None:
    weights = heavy_checkpoints[name]
    measured = run_litesr_measured("upscale", small_image, "-o", tmp_path / "out", "-w", weights, "-q",
                                   cwd=tmp_path)
    measured.assert_no_traceback()
    assert measured.code == 1 and len(measured.lines) == 1 and str(weights) in measured.lines[0], measured.stderr
    assert measured.peak_mb < RSS_LIMIT_MB, f"peak RSS {measured.peak_mb:.0f} MB"
    print(f"\n{name}: peak RSS {measured.peak_mb:.0f} MB")


@pytest.mark.slow
def test_baseline_memory_of_a_valid_run(tmp_path: Path, small_image: Path, tiny_weights: Path) -> None:
    """The reference point for the bound: a valid upscale with the tiny model."""
    measured = run_litesr_measured("upscale", small_image, "-o", tmp_path / "out", "-w", tiny_weights, "-q",
                                   cwd=tmp_path)
    assert measured.code == 0, measured.stderr
    assert measured.peak_mb < RSS_LIMIT_MB
    print(f"\nvalid tiny upscale: peak RSS {measured.peak_mb:.0f} MB")
