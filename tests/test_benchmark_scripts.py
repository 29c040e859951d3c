"""The benchmark scripts still run (smallest settings): they are how BENCHMARKS.md is reproduced."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import shared_path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _run(script: str, *args: str) -> None:
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_speed_quick_run_writes_its_results(tmp_path):
    _run("speed.py", "--quick", "--models", "scnet", "--no-onnx", "--out", str(tmp_path))
    results = json.loads(next(tmp_path.glob("speed-*.json")).read_text())
    timing = results["timing"][0]
    assert timing["max_abs_diff_vs_baseline"]["deploy"] <= 1e-4  # the deploy path is the same function
    assert set(timing["speedup"]) >= {"straightforward", "deploy fp32", "deploy bf16"}


@pytest.mark.slow
def test_gpu_benchmark_dry_runs_on_cpu(tmp_path):
    shared_path("data", "benchmark", "Set5")  # its PSNR part reads Set5
    _run("gpu.py", "--device", "cpu", "--size", "16", "--rounds", "1", "--precisions", "fp32",
         "--models", "scnet", "--out", str(tmp_path))
    results = json.loads((tmp_path / "gpu.json").read_text())
    assert results["quality"][0]["psnr"]["fp32"] > 31.0  # scnet-t-x4.litesr on Set5 ×4
    assert results["timing"][0]["max_abs_diff_vs_straightforward"]["fp32"] <= 1e-4
