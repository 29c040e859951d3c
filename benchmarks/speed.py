"""LiteSR's deploy path against the straightforward forward, in one run, as ratios.

    python benchmarks/speed.py                    # full run (~15-25 min on 2 cores), writes benchmarks/results/
    python benchmarks/speed.py --quick            # smoke test: small input, one round, no RSS

For each model at ×4 on a 256×256 LR input with 2 threads: the straightforward forward
(:mod:`baseline`: training form, SPAN fused on every call, SCNet's zero-fill + slice
shift, NCHW fp32) against LiteSR's deploy path in fp32 and bf16 (eager and compiled) and
ONNX Runtime (fp32, and int8 calibrated on T91 crops); Set5 PSNR of each precision (models with released weights only); achieved
FLOP/s as a fraction of what the CPU reaches on a large 3×3 convolution; and the peak RSS
of a 960×540 → ×4 upscale with automatic tiling, each in its own subprocess.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline import straightforward  # noqa: E402
from common import SHARED, glibc_allocator, interleaved, machine, markdown_table, save_results, set5_psnr  # noqa: E402

import litesr  # noqa: E402
from litesr.export import onnxruntime_model  # noqa: E402
from litesr.inference import DeployedNet, Runner, auto_tile_size  # noqa: E402
from litesr.model import SRModel  # noqa: E402
from litesr.profile import current_rss, peak_rss, trace_layers  # noqa: E402
from litesr.quantize import int8_model  # noqa: E402
from litesr.spec import ArchSpec  # noqa: E402

SCALE = 4
MODEL_KEYS = ("span", "scnet", "lesrcnn")
LABELS = {
    "span": "SPAN ch48 ×4 (span-x4.official)",
    "scnet": "SCNet-T ×4 PS (random init)",
    "lesrcnn": "LESRCNN ×4 (official weights)",
}
BASELINE = "straightforward"
#: Training images the int8 variant calibrates on (never the benchmark images).
CALIBRATION = SHARED / "data" / "train" / "T91"


def speed_model(key: str) -> SRModel:
    """The network timed for ``key``, in training form so that the baseline can run it.

    Speed does not depend on weight values, so SPAN (released fused-only) and SCNet (no
    released weights) are timed with random weights of the exact published shapes.
    """
    torch.manual_seed(0)
    if key == "span":
        spec = ArchSpec("span", dict(num_in_ch=3, num_out_ch=3, feature_channels=48, upscale=SCALE, norm=True))
        return SRModel(spec.build(), spec, name="span-x4 (random, training form)")
    if key == "scnet":
        spec = ArchSpec("scnet", dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=16, upscale=SCALE,
                                      use_pixelshuffle=True))
        return SRModel(spec.build(), spec, name="SCNet-T-x4 (random)")
    return litesr.load(SHARED / "weights" / "lesrcnn" / f"lesrcnn_x{SCALE}.pth")


def quality_model(key: str) -> SRModel | None:
    """The released-weights model whose Set5 PSNR is reported (none for SCNet)."""
    if key == "span":
        return litesr.load("span-x4.official")
    if key == "lesrcnn":
        return litesr.load(SHARED / "weights" / "lesrcnn" / f"lesrcnn_x{SCALE}.pth")
    return None


def runners(model: SRModel, with_onnx: bool) -> dict[str, Runner]:
    """LiteSR's deploy-path variants, all sharing one fused network."""
    model.deploy()
    found: dict[str, Runner] = {"deploy": model.runner, "deploy + compile": DeployedNet(model.net, compile=True)}
    if with_onnx:
        found["onnxruntime"] = onnxruntime_model(model).runner
        if CALIBRATION.is_dir():  # int8 needs training images to calibrate on
            found["onnxruntime int8"] = int8_model(model, CALIBRATION, scale=SCALE).runner
    return found


REFERENCE_CHANNELS = 128


def reference_throughput(side: int, rounds: int) -> dict[str, float]:
    """GFLOP/s of a large 128→128 3×3 convolution (channels-last): what this CPU can do.

    The best round, not the median: it estimates the machine's capability, which other
    jobs on a shared machine only ever lower.
    """
    channels = REFERENCE_CHANNELS
    weight = torch.randn(channels, channels, 3, 3)
    result = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        x = torch.randn(1, channels, side, side, dtype=dtype).contiguous(memory_format=torch.channels_last)
        w = weight.to(dtype)
        with torch.inference_mode():
            timing = interleaved({name: lambda x=x, w=w: torch.nn.functional.conv2d(x, w, padding=1)}, rounds, warmup=2)
        result[name] = 2 * channels * channels * 9 * side * side / min(timing.seconds[name]) / 1e9
    return result


def time_model(key: str, size: int, rounds: int, with_onnx: bool) -> dict:
    model = speed_model(key)
    baseline = straightforward(model.net)
    variants = runners(model, with_onnx)
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))

    compile_seconds = {}
    for precision in ("fp32", "bf16"):  # compile outside the timed rounds, and say how long it took
        start = time.perf_counter()
        variants["deploy + compile"](x, SCALE, precision)
        compile_seconds[precision] = time.perf_counter() - start
    with torch.no_grad():
        reference = baseline(x, SCALE)
    exactness = {name: (runner(x, SCALE, getattr(runner, "precision", "fp32")) - reference).abs().max().item()
                 for name, runner in variants.items()}

    def call(runner: Runner, precision: str) -> Callable[[], object]:
        return lambda: runner(x, SCALE, precision)

    steps: dict[str, Callable[[], object]] = {BASELINE: lambda: baseline(x, SCALE)}
    steps["deploy fp32"] = call(variants["deploy"], "fp32")
    steps["deploy fp32, stock allocator"] = call(variants["deploy"], "fp32")
    steps["deploy fp32 + compile"] = call(variants["deploy + compile"], "fp32")
    steps["deploy bf16"] = call(variants["deploy"], "bf16")
    steps["deploy bf16 + compile"] = call(variants["deploy + compile"], "bf16")
    if with_onnx:
        steps["onnxruntime fp32"] = call(variants["onnxruntime"], "fp32")
    if "onnxruntime int8" in variants:
        steps["onnxruntime int8"] = call(variants["onnxruntime int8"], "int8")
    stock = {BASELINE, "deploy fp32, stock allocator"}
    before = {name: (lambda reuse=name not in stock: glibc_allocator(reuse)) for name in steps}
    with torch.no_grad():
        timing = interleaved(steps, rounds, warmup=1, before=before)
    glibc_allocator(True)
    macs = sum(r.macs for r in trace_layers(model.net, x, SCALE))
    return {
        "model": LABELS[key], "input": f"{size}×{size}", "macs": macs, "rounds": rounds,
        "max_abs_diff_vs_baseline": exactness, "compile_seconds": compile_seconds,
        "median_seconds": {name: timing.median(name) for name in steps},
        "speedup": {name: timing.speedup(name, BASELINE) for name in steps},
        "seconds": timing.seconds,
    }


def quality(key: str, with_onnx: bool) -> dict | None:
    model = quality_model(key)
    if model is None:
        return None
    variants = runners(model, with_onnx)
    rows = {
        "deploy fp32": (variants["deploy"], "fp32"), "deploy bf16": (variants["deploy"], "bf16"),
        "deploy bf16 + compile": (variants["deploy + compile"], "bf16"),
    }
    if with_onnx:
        rows["onnxruntime fp32"] = (variants["onnxruntime"], "fp32")
    psnr = {name: set5_psnr(lambda x, r=runner, p=precision: r(x, SCALE, p), SCALE)
            for name, (runner, precision) in rows.items()}
    return {"model": model.name or str(model.source), "psnr": psnr,
            "loss_db": {name: psnr["deploy fp32"] - value for name, value in psnr.items()}}


def tiled_rss_child(key: str, precision: str) -> None:
    """Subprocess body: one 960×540 → ×4 upscale with automatic tiling; prints its peak RSS."""
    torch.set_num_threads(2)
    model = speed_model(key).deploy()
    image = np.random.default_rng(0).integers(0, 256, size=(540, 960, 3), dtype=np.uint8)
    before = current_rss()
    tile = auto_tile_size(model.runner, SCALE, model.device, 540, 960)
    start = time.perf_counter()
    out = model.upscale(image, tile=0, precision=precision)
    seconds = time.perf_counter() - start
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the (large) parent through fork + exec.
    peak = peak_rss()
    print(json.dumps({"model": LABELS[key], "precision": precision, "tile": tile, "output": list(out.shape),
                      "rss_before_upscale": before, "peak_rss": peak, "seconds": seconds}))


def tiled_rss(key: str, precision: str) -> dict:
    command = [sys.executable, __file__, "--tiled-rss", key, "--precision", precision]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(results: dict) -> str:
    env, ref = results["machine"], results["reference_gflops"]
    parts = [f"CPU class: **{env.get('capability', '?')}** ({env.get('cpu_class', '')}). "
             f"Machine: {env['cpu']} ({env['cores']} cores, avx512_bf16: {env['avx512_bf16']}), "
             f"torch {env['torch']}, onnxruntime {env['onnxruntime']}, {env['threads']} threads; "
             f"{env['date']}; load average at start {env['load_average']}.",
             f"Reference: {REFERENCE_CHANNELS}→{REFERENCE_CHANNELS} 3×3 conv on 1×{REFERENCE_CHANNELS}×256×256, "
             f"channels-last, best of the rounds: {ref['fp32']:.0f} GFLOP/s fp32, {ref['bf16']:.0f} GFLOP/s bf16."]
    for timing in results["timing"]:
        rows = []
        for name, seconds in timing["median_seconds"].items():
            flops = 2 * timing["macs"] / seconds / 1e9
            peak = ref["bf16" if "bf16" in name else "fp32"]
            diff = timing["max_abs_diff_vs_baseline"].get(name.replace(" fp32", "").replace(" bf16", ""))
            exact = f"{diff:.1e}" if diff is not None and "bf16" not in name and "int8" not in name else ""
            rows.append([name, f"{seconds * 1e3:.0f}", f"{timing['speedup'][name]:.2f}×",
                         f"{flops:.1f} ({100 * flops / peak:.0f}%)", exact])
        parts.append(f"\n**{timing['model']}**, {timing['input']} → ×{SCALE}, {timing['macs'] / 1e9:.2f} G MACs, "
                     f"{timing['rounds']} rounds (compile: {timing['compile_seconds']['fp32']:.0f} s fp32, "
                     f"{timing['compile_seconds']['bf16']:.0f} s bf16)\n")
        parts.append(markdown_table(["variant", "median ms", "speed-up (median of per-round ratios)",
                                     "GFLOP/s (% of reference)", "max |Δ| vs straightforward"], rows))
    for entry in results["quality"]:
        rows = [[name, f"{value:.4f}", f"{entry['loss_db'][name]:+.4f}"] for name, value in entry["psnr"].items()]
        parts.append(f"\n**Set5 ×{SCALE} PSNR-Y, {entry['model']}**\n")
        parts.append(markdown_table(["variant", "PSNR (dB)", "loss vs fp32 (dB)"], rows))
    if results["tiled_rss"]:
        rows = [[r["model"], r["precision"], r["tile"] or "whole image", f"{r['rss_before_upscale'] / 2**20:.0f}",
                 f"{r['peak_rss'] / 2**20:.0f}", f"{r['seconds']:.1f}"] for r in results["tiled_rss"]]
        parts.append("\n**960×540 → 3840×2160, automatic tiling, separate process each**\n")
        parts.append(markdown_table(["model", "precision", "tile", "RSS before (MiB)", "peak RSS (MiB)", "seconds"],
                                    rows))
    return "\n".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODEL_KEYS), help="comma-separated subset of span,scnet,lesrcnn")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="64×64, one round, no RSS: a smoke test")
    parser.add_argument("--no-onnx", action="store_true")
    parser.add_argument("--no-rss", action="store_true")
    parser.add_argument("--no-psnr", action="store_true")
    parser.add_argument("--only-rss", action="store_true", help="only the tiled-upscale peak-RSS measurement")
    parser.add_argument("--out", type=Path, help="where the JSON/Markdown results go (default benchmarks/results; "
                                                 "a --quick run writes only where --out says)")
    parser.add_argument("--tiled-rss", choices=MODEL_KEYS, help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tiled_rss:
        tiled_rss_child(args.tiled_rss, args.precision)
        return 0
    torch.set_num_threads(args.threads)
    if args.quick:
        args.size, args.rounds, args.no_rss = 64, 1, True
    keys = [key for key in args.models.split(",") if key]
    results: dict = {"machine": machine(), "command": " ".join(sys.argv), "timing": [], "quality": []}
    results["reference_gflops"] = reference_throughput(256 if not args.quick else 64, args.rounds + 2)
    for key in keys if not args.only_rss else []:
        print(f"timing {key} …", file=sys.stderr, flush=True)
        results["timing"].append(time_model(key, args.size, args.rounds, not args.no_onnx))
    if not args.no_psnr and not args.only_rss:
        for key in keys:
            print(f"Set5 PSNR {key} …", file=sys.stderr, flush=True)
            entry = quality(key, not args.no_onnx)
            if entry is not None:
                results["quality"].append(entry)
    results["tiled_rss"] = [] if args.no_rss else [tiled_rss(key, "fp32") for key in keys]
    text = report(results)
    print(text)
    if args.out is not None or not args.quick:
        save_results("speed", results, text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
