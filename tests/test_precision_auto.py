"""``--precision auto``: bf16/fp16 only where the hardware runs it natively and it measures faster."""
from __future__ import annotations

import os
import subprocess
import sys
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from litesr import SRModel, precision
from litesr.devices import AUTO, PRECISION_CHOICES, CpuInfo, check_precision, cpu_info, reduced_precision_candidate
from litesr.errors import LiteSRError
from litesr.precision import (
    AUTO_MIN_SPEEDUP,
    PrecisionWarning,
    choose_precision,
    choose_training_precision,
    forget_measurements,
    measure_speedup,
    resolve_precision,
)
from litesr.spec import ArchSpec

#: Caps PyTorch's dispatch and oneDNN at AVX2, where bf16 is emulated: an AVX2-class CPU.
AVX2_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def _cpu(native: bool) -> CpuInfo:
    return replace(cpu_info(), native_bf16=native, capability="AVX512" if native else "AVX2",
                   avx512_bf16=native, amx=False, onednn_isa_cap=None)


@pytest.fixture
def tiny_model() -> SRModel:
    spec = ArchSpec("span", dict(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2))
    torch.manual_seed(0)
    return SRModel(spec.build(), spec).deploy(reuse_memory=False)


@pytest.fixture(autouse=True)
def fresh_measurements(tmp_path, monkeypatch):
    """Each test starts with no measurement in memory or on disk."""
    monkeypatch.setenv("LITESR_CACHE_DIR", str(tmp_path / "cache"))
    forget_measurements()
    yield
    forget_measurements()


def _fake_speedup(monkeypatch, value: float) -> list[int]:
    calls: list[int] = []

    def fake(runner, scale, name, **kwargs):
        calls.append(scale)
        return value

    monkeypatch.setattr(precision, "measure_speedup", fake)
    return calls


def test_choices_and_int8_device_rule():
    assert PRECISION_CHOICES[0] == AUTO and {"fp32", "bf16", "fp16", "int8"} <= set(PRECISION_CHOICES)
    assert check_precision("int8", torch.device("cpu")) == torch.float32
    with pytest.raises(LiteSRError, match="int8 runs on the CPU"):
        check_precision("int8", torch.device("cuda"))
    with pytest.raises(LiteSRError, match="unknown precision"):
        check_precision("auto", torch.device("cpu"))  # auto must be resolved before it runs


def test_no_native_bf16_means_fp32_without_measuring(monkeypatch, tiny_model):
    monkeypatch.setattr("litesr.devices.cpu_info", lambda: _cpu(False))
    calls = _fake_speedup(monkeypatch, 5.0)
    choice = choose_precision(tiny_model.runner, 2)
    assert choice.precision == "fp32" and "emulated" in choice.reason and calls == []
    assert choice.describe().startswith("auto → fp32")


@pytest.mark.parametrize("speedup, expected", [(1.6, "bf16"), (AUTO_MIN_SPEEDUP, "bf16"), (1.05, "fp32"),
                                               (0.5, "fp32")])
def test_native_bf16_is_picked_only_when_it_measures_faster(monkeypatch, tiny_model, speedup, expected):
    monkeypatch.setattr("litesr.devices.cpu_info", lambda: _cpu(True))
    _fake_speedup(monkeypatch, speedup)
    choice = choose_precision(tiny_model.runner, 2)
    assert choice.precision == expected
    assert f"{speedup:.2f}×" in choice.reason


def test_measurement_is_cached_in_memory_and_on_disk(monkeypatch, tiny_model, tmp_path):
    monkeypatch.setattr("litesr.devices.cpu_info", lambda: _cpu(True))
    calls = _fake_speedup(monkeypatch, 1.5)
    assert choose_precision(tiny_model.runner, 2).precision == "bf16"
    assert choose_precision(tiny_model.runner, 2).precision == "bf16"
    assert len(calls) == 1
    forget_measurements()  # a new process: only the disk cache remains
    assert choose_precision(tiny_model.runner, 2).precision == "bf16"
    assert len(calls) == 1 and (tmp_path / "cache" / precision.CACHE_FILE).is_file()
    (tmp_path / "cache" / precision.CACHE_FILE).write_text("not json")  # a damaged cache is re-measured
    forget_measurements()
    assert choose_precision(tiny_model.runner, 2).precision == "bf16" and len(calls) == 2


def test_cuda_candidate_is_fp16_and_cpu_candidate_follows_native_bf16(monkeypatch):
    assert reduced_precision_candidate(torch.device("cuda")) == "fp16"
    monkeypatch.setattr("litesr.devices.cpu_info", lambda: _cpu(True))
    assert reduced_precision_candidate(torch.device("cpu")) == "bf16"
    monkeypatch.setattr("litesr.devices.cpu_info", lambda: _cpu(False))
    assert reduced_precision_candidate(torch.device("cpu")) is None


def test_an_onnxruntime_model_runs_in_its_own_precision():
    class Exported:
        backend, precision, compiled = "onnxruntime", "int8", False

    assert choose_precision(Exported(), 4).precision == "int8"  # type: ignore[arg-type]


def test_explicit_bf16_on_an_emulating_cpu_warns_once_with_the_measurement(monkeypatch, tiny_model):
    monkeypatch.setattr("litesr.precision.cpu_info", lambda: _cpu(False))
    _fake_speedup(monkeypatch, 0.1)
    first = resolve_precision("bf16", tiny_model.runner, 2)
    assert first.precision == "bf16" and first.warning is not None
    assert "10.0× slower than fp32" in first.warning and "auto" in first.warning
    assert resolve_precision("bf16", tiny_model.runner, 2).warning is None  # once per model and process
    assert resolve_precision("fp32", tiny_model.runner, 2).warning is None


def test_api_warns_through_python_warnings(monkeypatch, tiny_model):
    monkeypatch.setattr("litesr.precision.cpu_info", lambda: _cpu(False))
    _fake_speedup(monkeypatch, 0.25)
    image = np.full((12, 10, 3), 128, np.uint8)
    with pytest.warns(PrecisionWarning, match="4.0× slower"):
        tiny_model.upscale(image, precision="bf16")


def test_auto_through_the_api_equals_the_precision_it_picked(tiny_model):
    image = (np.random.default_rng(0).random((16, 12, 3)) * 255).astype(np.uint8)
    picked = choose_precision(tiny_model.runner, 2).precision
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(tiny_model.upscale(image, precision="auto"),
                                      tiny_model.upscale(image, precision=picked))


def test_real_measurement_is_a_positive_ratio(tiny_model):
    speedup = measure_speedup(tiny_model.runner, 2, "bf16", side=32, rounds=1)
    assert np.isfinite(speedup) and speedup > 0


def test_training_auto(monkeypatch, tiny_model):
    net = tiny_model.net
    monkeypatch.setattr("litesr.devices.cpu_info", lambda: _cpu(False))
    monkeypatch.setattr("litesr.precision.cpu_info", lambda: _cpu(False))
    assert choose_training_precision(AUTO, net, 2, torch.device("cpu")).precision == "fp32"
    assert choose_training_precision("fp32", net, 2, torch.device("cpu")).precision == "fp32"
    explicit = choose_training_precision("bf16", net, 2, torch.device("cpu"), batch=(1, 16))
    assert explicit.precision == "bf16" and "training step measured" in (explicit.warning or "")
    monkeypatch.setattr("litesr.devices.cpu_info", lambda: _cpu(True))
    monkeypatch.setattr(precision, "_training_speedup", lambda *args, **kwargs: 2.0)
    assert choose_training_precision(AUTO, net, 2, torch.device("cpu")).precision == "bf16"
    assert [p.grad for p in net.parameters()] == [None] * len(list(net.parameters()))


def _litesr(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "litesr", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_info_system_names_the_capability_and_the_rule():
    native = _litesr("info", "--system")
    assert native.returncode == 0, native.stderr
    assert f": {torch.backends.cpu.get_cpu_capability()}" in native.stdout and "auto picks:" in native.stdout
    capped = _litesr("info", "--system", env=AVX2_ENV)
    assert capped.returncode == 0, capped.stderr
    assert "AVX2" in capped.stdout and "bf16 emulated" in capped.stdout
    assert "auto picks:   fp32" in capped.stdout


@pytest.mark.slow
def test_cli_upscale_says_what_auto_picked_and_warns_for_emulated_bf16(tmp_path, tiny_model):
    from PIL import Image

    weights = tiny_model.save(tmp_path / "tiny.safetensors")
    Image.fromarray(np.full((20, 16, 3), 90, np.uint8)).save(tmp_path / "in.png")
    auto = _litesr("upscale", str(tmp_path / "in.png"), "-w", str(weights), "-o", str(tmp_path / "a.png"),
                   env=AVX2_ENV)
    assert auto.returncode == 0, auto.stderr
    assert "auto → fp32 (bf16 would be emulated here" in auto.stderr and "warning" not in auto.stderr
    explicit = _litesr("upscale", str(tmp_path / "in.png"), "-w", str(weights), "-o", str(tmp_path / "b.png"),
                       "--precision", "bf16", env=AVX2_ENV)
    assert explicit.returncode == 0, explicit.stderr
    warning_lines = [line for line in explicit.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning_lines) == 1 and "emulated" in warning_lines[0] and "slower than fp32" in warning_lines[0]
