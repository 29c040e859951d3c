"""INT8 (ONNX Runtime static quantization) against fp32: Set5 PSNR-Y loss and speed-up, per model and scale.

    python benchmarks/int8.py --threads 2
    python benchmarks/int8.py --models span-x4.official,scnet-t-x4.litesr --rounds 5

For each model and scale: PyTorch fp32 (deploy form), ONNX Runtime fp32 and ONNX Runtime
int8 (:func:`litesr.quantize.quantize_int8`, calibrated on T91 crops, never on Set5) are
evaluated on Set5 (MATLAB LR files, Y-channel PSNR, border = scale) and timed interleaved,
round after round, on the Set5 images and on one 256×256 LR input (Set5's images are
small). Speed-ups are medians of per-round ratios. Writes benchmarks/results/int8-<date-time>.{json,md}.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import onnx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED, interleaved, machine, markdown_table, save_results, set5_pairs, set5_psnr  # noqa: E402

import litesr  # noqa: E402
from litesr.devices import INT8  # noqa: E402
from litesr.export import OrtNet, export_onnx  # noqa: E402
from litesr.quantize import Calibration, quantize_int8  # noqa: E402
from litesr.zoo import ZOO  # noqa: E402

DEFAULT_MODELS = ("span-x4.official,span-x2.official,scnet-t-x2.litesr,scnet-t-x3.litesr,scnet-t-x4.litesr,"
                  "span-x3.litesr,lesrcnn-ms.litesr")
LESRCNN_OFFICIAL = SHARED / "weights" / "lesrcnn"


def model_sources(names: str) -> list[tuple[str, object]]:
    """(label, what litesr.load takes): installed zoo models, then the official LESRCNN files if present."""
    sources: list[tuple[str, object]] = [(name, name) for name in names.split(",")
                                         if name and (name not in ZOO or ZOO[name].installed())]
    sources += [(f"lesrcnn-x{s}.official (file)", path) for s in (2, 3, 4)
                if (path := LESRCNN_OFFICIAL / f"lesrcnn_x{s}.pth").is_file()]
    return sources


def measure(model: litesr.SRModel, scale: int, calibration: Calibration, threads: int, rounds: int,
            side: int) -> dict[str, object]:
    """PSNR and timings of the three variants of one model at one scale."""
    fp32_ort = OrtNet(export_onnx(model, size=(64, 64), scale=scale, dynamic_shape=True), threads=threads)
    int8_data = quantize_int8(model, calibration, scale=scale)
    int8_ort = OrtNet(int8_data, threads=threads)
    runs = {"torch fp32": lambda x: model.runner(x, scale, "fp32"), "ort fp32": lambda x: fp32_ort(x, scale),
            "ort int8": lambda x: int8_ort(x, scale, INT8)}
    psnrs = {name: set5_psnr(run, scale) for name, run in runs.items()}
    images = [torch.from_numpy(lr.copy()).permute(2, 0, 1)[None].float() / 255 for _, lr, _ in set5_pairs(scale)]
    large = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0))

    def on_set5(run):
        return lambda: [run(x) for x in images]

    with torch.inference_mode():
        set5 = interleaved({name: on_set5(run) for name, run in runs.items()}, rounds)
        big = interleaved({name: (lambda run=run: run(large)) for name, run in runs.items()}, rounds)
    return {
        "psnr": psnrs, "loss_db": psnrs["torch fp32"] - psnrs["ort int8"],
        "set5_ms_per_image": {name: 1000 * set5.median(name) / len(images) for name in runs},
        f"ms_{side}": {name: 1000 * big.median(name) for name in runs},
        "set5_speedup_vs_torch": set5.speedup("ort int8", "torch fp32"),
        "set5_speedup_vs_ort": set5.speedup("ort int8", "ort fp32"),
        f"speedup_{side}_vs_torch": big.speedup("ort int8", "torch fp32"),
        f"speedup_{side}_vs_ort": big.speedup("ort int8", "ort fp32"),
        "fp32_nodes": int8_ort.metadata["fp32_nodes"],
        "conv_nodes": sum(node.op_type == "Conv" for node in onnx.load_from_string(int8_data).graph.node
                          if not node.name.endswith("_quant")),
        "calibration_loss_db": int8_ort.metadata.get("calibration_loss_db"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--calibration", default=str(SHARED / "data" / "train" / "T91"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--side", type=int, default=256, help="LR side of the fixed-size timing")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    calibration = Calibration(args.calibration)
    results = []
    for label, source in model_sources(args.models):
        model = litesr.load(source).deploy()
        for scale in model.scales:
            result = measure(model, scale, calibration, args.threads, args.rounds, args.side)
            results.append({"model": label, "scale": scale, **result})
            print(f"{label} ×{scale}: loss {result['loss_db']:+.3f} dB, "
                  f"{result[f'speedup_{args.side}_vs_torch']:.2f}× vs torch fp32", file=sys.stderr, flush=True)
    facts = {**machine(), "calibration": calibration.describe(),
             "rounds": args.rounds, "side": args.side}
    side = args.side
    rows = [[f"`{r['model']}`", f"×{r['scale']}", f"{r['psnr']['torch fp32']:.3f}", f"{r['psnr']['ort int8']:.3f}",
             f"{r['loss_db']:+.3f}", f"{r['set5_ms_per_image']['torch fp32']:.1f} / {r['set5_ms_per_image']['ort fp32']:.1f}"
             f" / {r['set5_ms_per_image']['ort int8']:.1f}", f"{r['set5_speedup_vs_torch']:.2f}×",
             f"{r[f'ms_{side}']['torch fp32']:.0f} / {r[f'ms_{side}']['ort fp32']:.0f} / {r[f'ms_{side}']['ort int8']:.0f}",
             f"{r[f'speedup_{side}_vs_torch']:.2f}× / {r[f'speedup_{side}_vs_ort']:.2f}×",
             f"{len(r['fp32_nodes'])} of {r['conv_nodes']}: "
             + ", ".join(n.strip("/").split("/", 1)[-1].rsplit("/", 1)[0].replace("/", ".") for n in r["fp32_nodes"])]
            for r in results]
    table = markdown_table(["model", "scale", "PSNR fp32", "PSNR int8", "loss dB",
                            "Set5 ms/img torch/ORT/int8", "Set5 int8 vs torch",
                            f"{side}² ms torch/ORT/int8", f"{side}² int8 vs torch / vs ORT fp32", "kept fp32"], rows)
    header = (f"CPU: {facts['cpu']} ({facts['capability']}), threads {args.threads}, {facts['date']}, "
              f"torch {facts['torch']}, onnxruntime {facts['onnxruntime']}, load {facts['load_average']}; "
              f"calibration: {facts['calibration']}")
    print(header + "\n\n" + table)
    save_results("int8", {"machine": facts, "results": results}, header + "\n\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
