"""LiteSR on a CUDA GPU: deploy path vs the straightforward forward, and what each precision costs.

    python benchmarks/gpu.py --out DIR          # needs a CUDA GPU; ~1-2 min
    python benchmarks/gpu.py --out DIR --device cpu --size 32 --rounds 1 --precisions fp32,bf16  # dry run

The GPU counterpart of ``speed.py``, in one run: for each model at ×4 on a 256×256 LR
input (batch 1) the straightforward forward (training form, NCHW fp32, SPAN re-fused on
every call, SCNet's zero-fill + slice shift) against LiteSR's deploy path in fp32, bf16
and fp16 (channels-last, cuDNN; "fp32" convolutions use TF32 tensor cores, PyTorch's
default for cuDNN), each timed with a device synchronisation, rounds interleaved; the
Set5 ×4 PSNR-Y of each precision with the released (or this project's) weights, and
whether the per-model fp32 fallback fired; and the peak GPU memory of a 960×540 → ×4
upscale with automatic tiling.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline import straightforward  # noqa: E402
from common import SHARED, interleaved, markdown_table, set5_psnr  # noqa: E402
from speed import LABELS, MODEL_KEYS, SCALE, speed_model  # noqa: E402

import litesr  # noqa: E402
from litesr.inference import DeployedNet, PrecisionFallbackWarning  # noqa: E402
from litesr.model import SRModel  # noqa: E402
from litesr.profile import trace_layers  # noqa: E402

PRECISIONS = ["fp32", "bf16", "fp16"]
DEVICE = torch.device("cuda")
QUALITY_WEIGHTS = {
    "span": ("span-x4 official ch48", SHARED / "weights" / "span" / "official_via_ncnn" / "spanx4_ch48_eval_from_ncnn.pth"),
    "scnet": ("scnet-t-x4.litesr", "scnet-t-x4.litesr"),
    "lesrcnn": ("lesrcnn ×4 official", SHARED / "weights" / "lesrcnn" / "lesrcnn_x4.pth"),
}


def synchronised(step: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        out = step()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        return out
    return run


def time_model(key: str, size: int, rounds: int) -> dict:
    model = speed_model(key).to(DEVICE)
    baseline = straightforward(model.net)
    deployed = DeployedNet(model.deploy().net)
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(DEVICE)
    steps = {"straightforward": lambda: baseline(x, SCALE)}
    steps |= {f"deploy {p}": (lambda p=p: deployed(x, SCALE, p)) for p in PRECISIONS}
    with torch.no_grad():
        reference = baseline(x, SCALE)
        timing = interleaved({name: synchronised(step) for name, step in steps.items()}, rounds, warmup=3)
    differences = {p: (deployed(x, SCALE, p) - reference).abs().max().item() for p in PRECISIONS}
    macs = sum(r.macs for r in trace_layers(model.net, x, SCALE))
    return {"model": LABELS[key], "macs": macs, "rounds": rounds, "input": f"{size}×{size}",
            "median_seconds": {name: timing.median(name) for name in steps},
            "speedup": {name: timing.speedup(name, "straightforward") for name in steps},
            "max_abs_diff_vs_straightforward": differences}


def quality(key: str) -> dict:
    label, source = QUALITY_WEIGHTS[key]
    deployed = DeployedNet(litesr.load(source).to(DEVICE).deploy().net)
    psnr, fell_back = {}, {}
    for precision in PRECISIONS:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PrecisionFallbackWarning)
            psnr[precision] = set5_psnr(lambda x, p=precision: deployed(x.to(DEVICE), SCALE, p).cpu(), SCALE)
        fell_back[precision] = any(issubclass(w.category, PrecisionFallbackWarning) for w in caught)
    return {"model": label, "psnr": psnr, "loss_db": {p: psnr["fp32"] - v for p, v in psnr.items()},
            "fell_back_to_fp32": fell_back}


def tiled_memory(key: str, precision: str) -> dict:
    model: SRModel = speed_model(key).to(DEVICE).deploy()
    image = np.random.default_rng(0).integers(0, 256, size=(540, 960, 3), dtype=np.uint8)
    model.upscale(image[:64, :64], precision=precision)  # cuDNN autotuning and lazy set-up, untimed
    on_gpu = DEVICE.type == "cuda"
    if on_gpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    out = model.upscale(image, tile=0, precision=precision)
    if on_gpu:
        torch.cuda.synchronize()
    return {"model": LABELS[key], "precision": precision, "output": list(out.shape),
            "seconds": time.perf_counter() - start,
            "peak_gpu_bytes": torch.cuda.max_memory_allocated() if on_gpu else 0}


def report(results: dict) -> str:
    parts = [f"GPU: {results['gpu']}, torch {results['torch']}, cuDNN {results['cudnn']}, {results['date']}."]
    for timing in results["timing"]:
        rows = [[name, f"{seconds * 1e3:.2f}", f"{timing['speedup'][name]:.2f}×",
                 f"{2 * timing['macs'] / seconds / 1e12:.1f}",
                 f"{timing['max_abs_diff_vs_straightforward'].get(name.removeprefix('deploy '), 0):.1e}"
                 if name != "straightforward" else ""]
                for name, seconds in timing["median_seconds"].items()]
        parts.append(f"\n**{timing['model']}**, {timing['input']} → ×{SCALE}, {timing['macs'] / 1e9:.2f} G MACs, "
                     f"{timing['rounds']} rounds\n")
        parts.append(markdown_table(["variant", "median ms", "speed-up", "TFLOP/s", "max |Δ| vs straightforward"],
                                    rows))
    for entry in results["quality"]:
        rows = [[p, f"{entry['psnr'][p]:.4f}", f"{entry['loss_db'][p]:+.4f}",
                 "yes" if entry["fell_back_to_fp32"][p] else "no"] for p in PRECISIONS]
        parts.append(f"\n**Set5 ×{SCALE} PSNR-Y on the GPU, {entry['model']}**\n")
        parts.append(markdown_table(["precision", "PSNR (dB)", "loss vs fp32 (dB)", "fp32 fallback"], rows))
    rows = [[r["model"], r["precision"], f"{r['peak_gpu_bytes'] / 2**20:.0f}", f"{r['seconds']:.2f}"]
            for r in results["tiled"]]
    parts.append("\n**960×540 → 3840×2160, automatic tiling**\n")
    parts.append(markdown_table(["model", "precision", "peak GPU memory (MiB)", "seconds"], rows))
    return "\n".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODEL_KEYS))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda", help="cuda (default); cpu only to dry-run this script")
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    args = parser.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    PRECISIONS[:] = args.precisions.split(",")
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA GPU visible to PyTorch", file=sys.stderr)
        return 1
    torch.backends.cudnn.benchmark = True
    keys = args.models.split(",")
    results = {"gpu": torch.cuda.get_device_name() if DEVICE.type == "cuda" else "none (dry run)", "torch": torch.__version__,
               "cudnn": torch.backends.cudnn.version(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "timing": [], "quality": [], "tiled": []}
    for key in keys:
        print(f"{key}…", flush=True)
        results["timing"].append(time_model(key, args.size, args.rounds))
        print(json.dumps(results["timing"][-1]["speedup"]), flush=True)
        results["quality"].append(quality(key))
        print(json.dumps(results["quality"][-1]["psnr"]), flush=True)
        for precision in PRECISIONS:
            results["tiled"].append(tiled_memory(key, precision))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu.json").write_text(json.dumps(results, indent=1))
    text = report(results)
    (args.out / "gpu.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
