"""Helpers shared by the benchmark scripts: machine facts, fair timing, Set5 PSNR.

Timings on a shared machine drift by 2× within minutes, so variants are never timed in
separate blocks: every round runs each variant once, in the same order, and speed-ups
are the median over rounds of the per-round ratio to the baseline.
"""
from __future__ import annotations

import ctypes
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from litesr.devices import cpu_info, cpu_name
from litesr.inference import keep_freed_host_memory
from litesr.metrics import psnr, quantize

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LITESR_SHARED", REPO.parent / "shared"))

# glibc mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4


def glibc_allocator(reuse: bool) -> None:
    """Switch glibc between LiteSR's deploy setting and its own default behaviour.

    ``reuse=True`` is :func:`litesr.inference.keep_freed_host_memory`. ``reuse=False``
    restores what glibc converges to by default once a program has freed a tensor over
    32 MiB — mmap for anything above 32 MiB, heap trimmed past 64 MiB — so a baseline
    timed in the same process pays the page faults a stock PyTorch program pays.
    """
    if reuse:
        keep_freed_host_memory()
        return
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(M_MMAP_MAX, 65536)
    libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
    libc.mallopt(M_TRIM_THRESHOLD, 64 << 20)
    libc.malloc_trim(0)


def machine() -> dict[str, str]:
    """Facts BENCHMARKS.md states next to every figure."""
    flags = ""
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags", 1)[1].split("\n", 1)[0]
    except (OSError, IndexError):
        pass
    try:
        import onnxruntime
        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = "not installed"
    return {
        "date": subprocess.run(["date"], capture_output=True, text=True).stdout.strip(),
        "utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_name(), "cores": str(os.cpu_count()), "avx512_bf16": str("avx512_bf16" in flags),
        "torch": torch.__version__, "onnxruntime": ort_version, "python": platform.python_version(),
        "threads": str(torch.get_num_threads()),
        "load_average": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        # What PyTorch dispatches to (ATEN_CPU_CAPABILITY / ONEDNN_MAX_CPU_ISA lower it): the CPU class.
        "capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_class": cpu_info().describe(),
    }


@dataclass
class Timing:
    """Per-round seconds of each variant, in the order they were registered."""

    seconds: dict[str, list[float]] = field(default_factory=dict)

    def median(self, name: str) -> float:
        return statistics.median(self.seconds[name])

    def speedup(self, name: str, baseline: str) -> float:
        """Median over rounds of baseline/variant measured in the same round."""
        return statistics.median(b / v for b, v in zip(self.seconds[baseline], self.seconds[name], strict=True))


def interleaved(variants: Mapping[str, Callable[[], object]], rounds: int, warmup: int = 1,
                before: Mapping[str, Callable[[], None]] | None = None) -> Timing:
    """Time each variant once per round, round after round; ``before[name]()`` runs untimed first."""
    timing = Timing({name: [] for name in variants})
    for index in range(warmup + rounds):
        for name, step in variants.items():
            if before and name in before:
                before[name]()
            start = time.perf_counter()
            step()
            elapsed = time.perf_counter() - start
            if index >= warmup:
                timing.seconds[name].append(elapsed)
    return timing


def set5_pairs(scale: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, LR, HR) of Set5: HR modcropped to the scale, LR the MATLAB-bicubic files."""
    root = SHARED / "data" / "benchmark" / "Set5"
    pairs = []
    for hr_path in sorted((root / "HR").glob("*.png")):
        hr = np.asarray(Image.open(hr_path).convert("RGB"))
        hr = hr[:hr.shape[0] // scale * scale, :hr.shape[1] // scale * scale]
        lr = np.asarray(Image.open(root / "LR_bicubic" / f"X{scale}" / f"{hr_path.stem}x{scale}.png").convert("RGB"))
        pairs.append((hr_path.stem, lr, hr))
    if not pairs:
        raise FileNotFoundError(f"no Set5 images under {root}")
    return pairs


def set5_psnr(run: Callable[[torch.Tensor], torch.Tensor], scale: int) -> float:
    """Mean Set5 PSNR-Y (float Y, border = scale) of ``run`` (NCHW [0,1] in, NCHW out)."""
    values = []
    for _, lr, hr in set5_pairs(scale):
        x = torch.from_numpy(lr.copy()).permute(2, 0, 1)[None].float() / 255
        with torch.inference_mode():
            sr = quantize(run(x)[0].permute(1, 2, 0))
        values.append(psnr(sr, hr, crop_border=scale, y_channel=True))
    return float(np.mean(values))


def save_results(name: str, results: Mapping[str, object], text: str, out: Path | None = None) -> None:
    """``OUT/NAME-<stamp>.json`` (the raw results) and ``.md`` (the printed report); OUT defaults
    to benchmarks/results."""
    out = out or REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"{name}-{stamp}.json").write_text(json.dumps(results, indent=1))
    (out / f"{name}-{stamp}.md").write_text(text + "\n")


def markdown_table(headers: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
