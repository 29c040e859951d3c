"""SCNet's deploy forms against the straightforward forward, in one run, as ratios.

    python benchmarks/scnet_speed.py                      # SCNet-T ×4 PS, 256×256, 2 threads, 5 rounds
    python benchmarks/scnet_speed.py --models x2,x3,x4 --rounds 3
    python benchmarks/scnet_speed.py --bands 4096,16384,65536   # band sizes of the streamed form
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/scnet_speed.py   # an AVX2-only CPU

SCNet is all 1×1 convolutions, so layer by layer it is bound by memory traffic (the issue:
~43 % of the conv reference). Each round times, once each and in the same order:

* ``straightforward`` — :mod:`baseline` (training form, the official zero-fill + slices
  shift, NCHW fp32, glibc's default allocator): what the official inference code does;
* ``layered`` — the previous deploy path: channels-last, depthwise one-hot shift, one
  layer at a time over the whole image;
* ``shift folded into 3×3`` — layered, with each shift folded into the following 1×1 conv
  as a sparse 3×3 conv (one oneDNN pass instead of two, 9× the multiply-adds);
* ``streamed (N px)`` — :mod:`litesr.archs.scnet_stream` with N output pixels per band;
  ``deploy`` is the same at its default band size, through ``SRModel.deploy()``;
* ``deploy + compile`` — ``torch.compile`` (inductor C++ backend, freezing) of the deploy
  form, which compiles the layered forward;
* ``onnxruntime`` — the exported deploy graph in ONNX Runtime (all graph optimisations).

GFLOP/s are 2 × the network's multiply-adds per second, as a share of a 128→128 3×3
channels-last convolution measured in the same run (best round, as in ``speed.py``).
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline import straightforward  # noqa: E402
from common import glibc_allocator, interleaved, machine, markdown_table, save_results  # noqa: E402
from shift8 import fused_kernel  # noqa: E402
from speed import reference_throughput  # noqa: E402

from litesr.archs.scnet import SCNet  # noqa: E402
from litesr.archs.scnet_stream import DEFAULT_BAND_PIXELS, streamed_forward  # noqa: E402
from litesr.export import onnxruntime_model  # noqa: E402
from litesr.inference import DeployedNet  # noqa: E402
from litesr.model import SRModel  # noqa: E402
from litesr.spec import ArchSpec  # noqa: E402
from litesr.tracing import trace_layers  # noqa: E402

BASELINE = "straightforward"


def scnet_t(scale: int) -> SRModel:
    """SCNet-T with the pixel-shuffle upsampler (the registry's shipped shape), random weights."""
    torch.manual_seed(0)
    spec = ArchSpec("scnet", dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=16, upscale=scale,
                                  use_pixelshuffle=True))
    return SRModel(spec.build(), spec, name=f"SCNet-T ×{scale} PS (random init)")


def folded_forward(net: SCNet) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """The layered forward with every block's shift folded into its ``conv2`` as a sparse 3×3 conv.

    ``conv2(relu(shift(t))) = conv3x3(relu(t))`` with each input channel's 1×1 weight at the
    tap its group reads; the upsamplers keep their shift (their conv is wider).
    """
    kernels = [fused_kernel(block.conv2.weight.detach()) for block in net.body]

    def forward(x: torch.Tensor, scale: int) -> torch.Tensor:
        features = F.leaky_relu(net.conv_first(x), 0.1)
        for block, kernel in zip(net.body, kernels, strict=True):
            inner = F.relu(block.conv1(features))
            features = features + F.conv2d(inner, kernel, block.conv2.bias, padding=1)
        for index in range(1, net.num_stages + 1):
            features = F.leaky_relu(getattr(net, f"upconv{index}")(features), 0.1)
        residual = net.conv_last(F.leaky_relu(net.conv_hr(features), 0.1))
        return residual + F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
    return forward


def time_model(scale: int, size: int, rounds: int, bands: list[int], with_extras: bool) -> dict:
    model = scnet_t(scale)
    baseline = straightforward(model.net)
    macs = sum(r.macs for r in trace_layers(baseline, torch.zeros(1, 3, size, size), scale))
    layered = copy.deepcopy(model.net).fuse()
    model.deploy()
    net = model.net
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    x_last = x.contiguous(memory_format=torch.channels_last)

    steps: dict[str, Callable[[], torch.Tensor]] = {
        BASELINE: lambda: baseline(x, scale),
        "layered (previous deploy)": lambda: layered.layered_forward(x_last, scale),
    }
    if with_extras:
        folded = folded_forward(layered)
        steps["shift folded into 3×3"] = lambda: folded(x_last, scale)
    for pixels in bands:
        steps[f"streamed ({pixels} px)"] = lambda p=pixels: streamed_forward(net, x_last, scale, p)
    steps[f"deploy (streamed, {DEFAULT_BAND_PIXELS} px)"] = lambda: model.runner(x, scale)
    compile_seconds = None
    if with_extras:
        compiled = DeployedNet(net, compile=True)
        start = time.perf_counter()
        compiled(x, scale)
        compile_seconds = time.perf_counter() - start
        steps["deploy + compile"] = lambda: compiled(x, scale)
        ort = onnxruntime_model(model).runner
        steps["onnxruntime"] = lambda: ort(x, scale)

    with torch.inference_mode():
        reference = baseline(x, scale)
        exactness = {name: (step() - reference).abs().max().item() for name, step in steps.items()}
        before = {name: (lambda reuse=name != BASELINE: glibc_allocator(reuse)) for name in steps}
        timing = interleaved(steps, rounds, warmup=1, before=before)
    glibc_allocator(True)
    return {"model": model.name, "input": f"{size}×{size}", "scale": scale, "macs": macs, "rounds": rounds,
            "compile_seconds": compile_seconds, "max_abs_diff_vs_baseline": exactness,
            "median_seconds": {name: timing.median(name) for name in steps},
            "speedup": {name: timing.speedup(name, BASELINE) for name in steps}, "seconds": timing.seconds}


def report(results: dict) -> str:
    env, ref = results["machine"], results["reference_gflops"]["fp32"]
    parts = [f"{env['cpu']}, capability {env['capability']}, torch {env['torch']}, {env['threads']} threads, "
             f"{env['date']}, load average at start {env['load_average']}; reference 128→128 3×3 conv "
             f"(channels-last, best round): {ref:.0f} GFLOP/s fp32.\n`{results['command']}`"]
    for timing in results["timing"]:
        rows = []
        for name, seconds in timing["median_seconds"].items():
            flops = 2 * timing["macs"] / seconds / 1e9
            rows.append([name, f"{seconds * 1e3:.0f}", f"{timing['speedup'][name]:.2f}×",
                         f"{flops:.1f} ({100 * flops / ref:.0f}%)", f"{timing['max_abs_diff_vs_baseline'][name]:.1e}"])
        compiled = f", compile {timing['compile_seconds']:.0f} s" if timing["compile_seconds"] else ""
        parts.append(f"\n**{timing['model']}**, {timing['input']} → ×{timing['scale']}, "
                     f"{timing['macs'] / 1e9:.2f} G MACs, {timing['rounds']} rounds{compiled}\n")
        parts.append(markdown_table(["variant", "median ms", "speed-up (median of per-round ratios)",
                                     "GFLOP/s (% of reference)", "max |Δ| vs straightforward"], rows))
    return "\n".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="x4", help="comma-separated scales of SCNet-T PS: x2,x3,x4")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bands", default="", help="comma-separated band sizes (output pixels) to time besides "
                                                    "the default")
    parser.add_argument("--no-extras", action="store_true", help="skip the folded, compiled and ONNX Runtime forms")
    parser.add_argument("--out", type=Path, help="write JSON and Markdown results into this folder")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    glibc_allocator(True)
    bands = [int(b) for b in args.bands.split(",") if b]
    results: dict = {"machine": machine(), "command": " ".join(sys.argv), "timing": []}
    results["reference_gflops"] = reference_throughput(256, args.rounds + 2)
    for key in args.models.split(","):
        print(f"timing SCNet-T {key} …", file=sys.stderr, flush=True)
        results["timing"].append(time_model(int(key.lstrip("x")), args.size, args.rounds, bands,
                                            not args.no_extras))
    text = report(results)
    print(text)
    if args.out is not None:
        save_results("scnet-speed", results, text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
