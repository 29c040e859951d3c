"""Fuzzing the checkpoint readers: crafted files (issue 12) and mutated valid files.

The contract under test: ``litesr.load`` (``.pth``/``.safetensors``) and the ncnn reader
either give a working model or raise a :class:`~litesr.errors.LiteSRError` whose
one-line message names the file; they never execute code from a file, never let a
library's own exception out, and never build a network the file does not hold the weights
of. Memory use of the heavy cases is measured in a subprocess by test_fuzz_cli.py.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings

import litesr
from conftest import SHARED_DIR
from corpus import (
    EXPECT_OK,
    MARKER_NAME,
    checkpoint_cases,
    mutated,
    ncnn_cases,
    ncnn_conv_model,
    seed_checkpoints,
    tiny_network,
    write_fake_ncnn_package,
)
from litesr.errors import LiteSRError
from litesr.ncnn import load_ncnn_span
from litesr.zoo import ncnn_package

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
#: The official SPAN ×2 ncnn model in ../shared, a realistic seed when it is there.
OFFICIAL_SPAN = SHARED_DIR / "weights" / "span" / "official_via_ncnn" / "ncnn_original" / "spanx2_ch48.param"
LIGHT_CASES = list(checkpoint_cases(Path("."), heavy=False))  # names only: files are written per test
NCNN_CASES = list(ncnn_cases())
PROBE = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)


def load_or_refuse(path: Path | str) -> litesr.SRModel | LiteSRError:
    """The model, or the LiteSRError it was refused with; any other exception escapes (a bug)."""
    try:
        return litesr.load(path)
    except LiteSRError as error:
        return error


def assert_refusal_names(error: object, *paths: Path) -> None:
    assert isinstance(error, LiteSRError), f"{paths[0].name} was accepted, but must be refused"
    message = str(error)
    assert any(str(path) in message for path in paths) and "\n" not in message, message


# --------------------------------------------------------------------------- crafted files


@pytest.mark.parametrize(("name", "expect", "why", "make"), LIGHT_CASES, ids=[case[0] for case in LIGHT_CASES])
def test_crafted_checkpoint_loads_or_is_refused_with_one_line(tmp_path: Path, name: str, expect: str, why: str,
                                                              make) -> None:
    cases = {case[0]: case for case in checkpoint_cases(tmp_path, heavy=False)}  # payloads aim at tmp_path
    path = tmp_path / name
    path.write_bytes(cases[name][3]())
    result = load_or_refuse(path)
    if expect == EXPECT_OK:
        assert isinstance(result, litesr.SRModel), f"{why}: refused with {result}"
        assert result.upscale(PROBE).shape == (8, 10, 3)
    else:
        assert_refusal_names(result, path)
    assert not (tmp_path / MARKER_NAME).exists()


@pytest.mark.parametrize("name", sorted(seed_checkpoints()))
def test_seed_checkpoints_load_and_match_the_network(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(seed_checkpoints()[name])
    model = litesr.load(path)
    expected = tiny_network()(torch.from_numpy(PROBE).permute(2, 0, 1)[None].float() / 255)
    result = model.upscale(PROBE)
    assert result.shape == (8, 10, 3)
    reference = (expected[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    assert np.abs(result.astype(int) - reference.astype(int)).max() <= 1


def test_pickle_payload_is_live_but_never_runs(tmp_path: Path) -> None:
    """The payload really creates its marker when unpickled; LiteSR never lets it."""
    cases = {case[0]: case for case in checkpoint_cases(tmp_path, heavy=False)}
    marker = tmp_path / MARKER_NAME
    raw = cases["reduce_payload_raw.pth"][3]()
    pickle.loads(raw)  # noqa: S301 - proving the payload works, on our own file
    assert marker.exists()
    marker.unlink()
    for name in ("reduce_payload.pth", "reduce_payload_legacy.pth", "reduce_payload_raw.pth"):
        path = tmp_path / name
        path.write_bytes(cases[name][3]())
        for reader in (litesr.load, litesr.checkpoints.read_checkpoint):
            with pytest.raises(LiteSRError):
                reader(path)
    assert not marker.exists()


# --------------------------------------------------------------------------- ncnn


def write_ncnn(folder: Path, stem: str, text: str | bytes, weights: bytes) -> Path:
    param = folder / f"{stem}.param"
    param.write_bytes(text.encode("latin-1") if isinstance(text, str) else text)
    param.with_suffix(".bin").write_bytes(weights)
    return param


@pytest.mark.parametrize(("stem", "why", "make"), NCNN_CASES, ids=[case[0] for case in NCNN_CASES])
def test_crafted_ncnn_model_is_refused_with_one_line(tmp_path: Path, stem: str, why: str, make) -> None:
    param = write_ncnn(tmp_path, stem, *make())
    with pytest.raises(LiteSRError) as refused:
        load_ncnn_span(param)
    assert_refusal_names(refused.value, param, param.with_suffix(".bin"))


def _corrupt_package_bins() -> dict[str, tuple[str, bytes]]:
    """(param text, corrupt bin) pairs for the installed-package case: real SPAN when ../shared has it."""
    if OFFICIAL_SPAN.exists():
        text, weights = OFFICIAL_SPAN.read_text(), OFFICIAL_SPAN.with_suffix(".bin").read_bytes()
    else:
        text, weights = ncnn_conv_model()
    nan_fp16 = bytearray(weights)
    nan_fp16[4:68] = np.full(32, np.nan, "<f2").tobytes()  # the first weights, right after the fp16 tag
    return {"truncated": (text, weights[: len(weights) // 2]), "trailing": (text, weights + bytes(4)),
            "garbage": (text, np.random.default_rng(1).bytes(len(weights))), "nan": (text, bytes(nan_fp16))}


@pytest.mark.parametrize("damage", sorted(_corrupt_package_bins()))
def test_corrupt_bin_in_installed_package_is_one_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       damage: str) -> None:
    text, weights = _corrupt_package_bins()[damage]
    package = write_fake_ncnn_package(tmp_path, "spanx2_ch48", text, weights)
    monkeypatch.setattr(ncnn_package, "package_dir", lambda: package)
    error = load_or_refuse("span-x2.official")
    models = package / "models"
    assert_refusal_names(error, models / "spanx2_ch48.param", models / "spanx2_ch48.bin")


# --------------------------------------------------------------------------- mutation fuzz


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz_checkpoints")


@FUZZ
@given(sample=mutated(seed_checkpoints()))
def test_mutated_checkpoints_load_or_are_refused(scratch: Path, sample: tuple[str, bytes]) -> None:
    name, data = sample
    path = scratch / f"mutated{Path(name).suffix}"
    path.write_bytes(data)
    result = load_or_refuse(path)
    if isinstance(result, LiteSRError):
        assert_refusal_names(result, path)
        return
    assert result.upscale(PROBE).shape == (8, 10, 3)  # what loads must run


def _ncnn_seeds() -> dict[str, bytes]:
    text, weights = ncnn_conv_model()
    seeds = {"conv.param": text.encode(), "conv.bin": weights}
    if OFFICIAL_SPAN.exists():
        seeds |= {"span.param": OFFICIAL_SPAN.read_bytes(), "span.bin": OFFICIAL_SPAN.with_suffix(".bin").read_bytes()}
    return seeds


NCNN_SEEDS = _ncnn_seeds()


@settings(FUZZ, max_examples=100)
@given(sample=mutated(NCNN_SEEDS))
def test_mutated_ncnn_models_convert_or_are_refused(scratch: Path, sample: tuple[str, bytes]) -> None:
    name, data = sample
    stem, suffix = name.split(".")
    partner = NCNN_SEEDS[f"{stem}.{'bin' if suffix == 'param' else 'param'}"]
    param_bytes, weights = (data, partner) if suffix == "param" else (partner, data)
    param = write_ncnn(scratch, "mutated", param_bytes, weights)
    try:
        state_dict, info = load_ncnn_span(param)
    except LiteSRError as error:
        assert_refusal_names(error, param, param.with_suffix(".bin"))
        return
    assert all(torch.isfinite(tensor).all() for tensor in state_dict.values())
    assert info["upscale"] >= 1
