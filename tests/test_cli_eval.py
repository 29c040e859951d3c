"""``litesr eval``: exit codes, the printed table, JSON/CSV outputs, one-line errors."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import shared_path
from PIL import Image

from litesr.cli import main
from litesr.imaging.resize import make_lr


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _usage_error(capsys, *argv):
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    _, err = capsys.readouterr()
    assert info.value.code == 2
    return err


def _tiny_set(root, scale=2):
    rng = np.random.default_rng(0)
    for name in ("p", "q"):
        hr = rng.integers(0, 256, size=(24, 28, 3), dtype=np.uint8)
        (root / "HR").mkdir(parents=True, exist_ok=True)
        (root / "LR_bicubic" / f"X{scale}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(hr).save(root / "HR" / f"{name}.png")
        Image.fromarray(make_lr(hr, scale)).save(root / "LR_bicubic" / f"X{scale}" / f"{name}x{scale}.png")
    return root


def _one_error_line(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_bicubic_set5_table_json_csv(capsys, tmp_path):
    set5 = shared_path("data", "benchmark", "Set5")
    json_path, csv_path = tmp_path / "r.json", tmp_path / "r.csv"
    code, out, err = _run(capsys, "eval", "--bicubic", "--data", str(set5), "--scale", "4",
                          "--json", str(json_path), "--csv", str(csv_path))
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("| Model") and "PSNR (dB)" in lines[0] and set(lines[1]) <= set("|- ")
    assert "| Set5 " in lines[2] and "28.429" in lines[2] and "0.8111" in lines[2]
    assert "border 4" in err  # the protocol summary goes to stderr
    report = json.loads(json_path.read_text())
    assert report["protocol"]["scale"] == 4 and report["protocol"]["quantization"] == "round"
    assert report["protocol"]["y_channel"] is True and report["protocol"]["crop_border"] == 4
    (entry,) = report["sets"]
    assert entry["set"] == "Set5" and entry["lr"] == "given" and len(entry["images"]) == 5
    assert entry["psnr"] == pytest.approx(28.429, abs=0.005)
    assert entry["psnr"] == pytest.approx(np.mean([i["psnr"] for i in entry["images"]]))
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["image"] for r in rows] == ["baby", "bird", "butterfly", "head", "woman"]
    assert float(rows[0]["psnr"]) == pytest.approx(entry["images"][0]["psnr"], abs=1e-5)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # atomic writes leave nothing


def test_several_sets_options_and_saved_images(capsys, tmp_path):
    one, two = _tiny_set(tmp_path / "One"), _tiny_set(tmp_path / "Two")
    code, out, err = _run(capsys, "eval", "--bicubic", "--data", str(one), "--data", str(two), "--scale", "2",
                          "--rgb", "--crop-border", "0", "--make-lr", "--quiet",
                          "--save-images", str(tmp_path / "sr"))
    assert code == 0 and err == ""
    assert "| One " in out and "| Two " in out and "made" in out
    assert sorted(p.name for p in (tmp_path / "sr" / "One").iterdir()) == ["p.png", "q.png"]


def test_model_by_weights_file(capsys):
    weights = shared_path("weights", "span", "official_via_ncnn", "spanx4_ch48_eval_from_ncnn.pth")
    set5 = shared_path("data", "benchmark", "Set5")
    code, out, _ = _run(capsys, "eval", "-w", str(weights), "--data", str(set5), "-q")  # scale from the model
    assert code == 0 and "×4" in out
    psnr = float(out.strip().splitlines()[2].split("|")[6])
    assert psnr == pytest.approx(32.203, abs=0.02)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["eval", "--data", "X", "--scale", "2"], "one of the arguments -m/--model -w/--weights --bicubic is required"),
        (["eval", "--bicubic", "--data", "X"], "--bicubic needs --scale"),
        (["eval", "--bicubic", "--scale", "2"], "--data"),
        (["eval", "--bicubic", "-m", "span-x4", "--data", "X", "--scale", "2"], "not allowed with"),
        (["eval", "--bicubic", "--data", "X", "--data", "Y", "--lr", "Z", "--scale", "2"], "single --data"),
        (["eval", "--bicubic", "--data", "X", "--scale", "2", "--rgb", "--y-round"], "--y-round"),
        (["eval", "--bicubic", "--data", "X", "--scale", "0"], "positive integer"),
        (["eval", "--bicubic", "--data", "X", "--scale", "2", "--quantize", "floor"], "invalid choice"),
        (["eval", "--bicubic", "--data", "X", "--scale", "2", "--lr", "Y", "--make-lr"], "not allowed with"),
    ],
)
def test_usage_errors_exit_2(capsys, argv, message):
    assert message in _usage_error(capsys, *argv)


def test_user_mistakes_are_one_error_line(capsys, tmp_path):
    root = _tiny_set(tmp_path / "S")
    (tmp_path / "empty").mkdir()
    bad_lr = tmp_path / "badlr"
    bad_lr.mkdir()
    for name in ("p", "q"):
        Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(bad_lr / f"{name}x2.png")
    cases = [
        (["--data", str(tmp_path / "missing")], "does not exist"),
        (["--data", str(tmp_path / "empty")], "no HR images"),
        (["--data", str(root), "--lr", str(bad_lr)], "size mismatch"),
        (["--data", str(root), "--lr", str(tmp_path / "empty")], "no LR images"),
        (["--data", str(root), "--json", str(tmp_path / "no" / "such" / "dir.json")], "does not exist"),
        (["--data", str(root), "--csv", str(tmp_path)], "is a folder"),
    ]
    for extra, message in cases:
        code, out, err = _run(capsys, "eval", "--bicubic", "--scale", "2", "-q", *extra)
        assert code == 1, (extra, err)
        assert message in _one_error_line(err)
        assert out == ""


def test_model_errors_are_one_error_line(capsys, tmp_path):
    root = _tiny_set(tmp_path / "S")
    code, _, err = _run(capsys, "eval", "-w", str(tmp_path / "nope.pth"), "--data", str(root), "--scale", "2")
    assert code == 1 and "nope.pth: no such file" in _one_error_line(err)
    code, _, err = _run(capsys, "eval", "-m", "no-such-model", "--data", str(root), "--scale", "2")
    assert code == 1 and "no-such-model" in _one_error_line(err)
    weights = shared_path("weights", "lesrcnn", "lesrcnn_x4.pth")
    code, _, err = _run(capsys, "eval", "-w", str(weights), "--data", str(root), "--scale", "2")
    line = _one_error_line(err)
    assert code == 1 and "lesrcnn_x4.pth" in line and "serves ×4" in line and "×2" in line


def test_python_m_litesr_error_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "litesr", "eval", "--bicubic", "--data", str(tmp_path / "missing"), "--scale", "2"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert _one_error_line(proc.stderr).endswith("does not exist")
