"""PSNR against cost for every zoo model with real weights, drawn the way SR papers draw it.

    python benchmarks/chart.py                      # → docs/psnr_vs_cost.png and docs/psnr_vs_cost.json
    python benchmarks/chart.py --weights-dir DIR    # where user-supplied weights live (searched recursively)
    python benchmarks/chart.py --from-json docs/psnr_vs_cost.json   # redraw only

For each installed zoo model (plus user-supplied weights found under ``--weights-dir``,
by default ``../shared/weights``): Set5 PSNR-Y at its own scale (MATLAB-bicubic LR, HR
modcropped, border = scale), MACs of the deploy graph and the median latency of LiteSR's
deploy path (fp32, eager) — both for a 1280×720 output, the usual convention of the
lightweight-SR literature — one row of panels per scale. Community models trained for
other degradations are drawn hollow: a bicubic benchmark is not what they are for.
Needs matplotlib (``pip install 'litesr[plot]'``).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, SHARED, machine, set5_psnr  # noqa: E402

import litesr  # noqa: E402
from litesr.profile import measure_latency, trace_shapes  # noqa: E402
from litesr.zoo import ZOO, WeightsLocation  # noqa: E402

OUTPUT_SIZE = (720, 1280)
ARCH_COLOURS = {"span": "tab:blue", "lesrcnn": "tab:orange", "scnet": "tab:green"}


def locate(card_weights: WeightsLocation, search: Path) -> Path | None:
    """The card's weights: installed, or a file of the same name anywhere under ``search``."""
    found = card_weights.locate()
    if found is None and card_weights.kind == "user" and search.is_dir():
        found = next(iter(sorted(search.rglob(card_weights.filename))), None)
    return found


def measure(name: str, path: Path, runs: int) -> list[dict]:
    """One point per scale the model serves (a multi-scale network appears in each panel)."""
    card = ZOO[name]
    model = litesr.load(path) if card.weights.kind == "user" else litesr.load(name)
    model.deploy()
    points = []
    for scale in model.scales:
        lr_size = (OUTPUT_SIZE[0] // scale, OUTPUT_SIZE[1] // scale)
        macs = sum(r.macs for r in trace_shapes(model.net, lr_size, scale))
        x = torch.rand(1, 3, *lr_size)
        latency = statistics.median(measure_latency(lambda: model.runner(x, scale), runs=runs, warmup=1))
        psnr = set5_psnr(lambda lr: model.runner(lr, scale), scale)
        points.append({"model": name, "arch": model.arch, "scale": scale, "params": model.num_params(),
                       "macs": macs, "latency_s": latency, "lr_size": list(lr_size), "set5_psnr": psnr,
                       "community": card.tag == "community"})
    return points


def draw(points: list[dict], info: dict, target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    scales = sorted({p["scale"] for p in points})
    figure, axes = plt.subplots(len(scales), 2, figsize=(12, 4.2 * len(scales)), squeeze=False)
    for row, scale in enumerate(scales):
        subset = [p for p in points if p["scale"] == scale]
        for column, (key, label, factor) in enumerate((("macs", "MACs (G)", 1e-9),
                                                        ("latency_s", "latency (ms)", 1e3))):
            ax = axes[row][column]
            placed: list[float] = []  # PSNRs labelled so far, left to right: stagger labels of close points
            for point in sorted(subset, key=lambda p: p[key]):
                neighbours = sum(abs(psnr - point["set5_psnr"]) < 1.0 for psnr in placed)
                placed.append(point["set5_psnr"])
                colour = ARCH_COLOURS.get(point["arch"], "tab:gray")
                size = 40 + point["params"] / 4000
                ax.scatter(point[key] * factor, point["set5_psnr"], s=size, color=colour if not point["community"]
                           else "none", edgecolors=colour, linewidths=1.5, alpha=0.85, zorder=3)
                ax.annotate(point["model"], (point[key] * factor, point["set5_psnr"]), fontsize=7,
                            xytext=(6, (6, -10, 16)[neighbours % 3]), textcoords="offset points")
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # 2×10¹, 3×10¹… collide
            ax.margins(x=0.25, y=0.12)
            ax.set_xlabel(f"{label} for a 1280×720 output")
            ax.set_ylabel(f"Set5 ×{scale} PSNR-Y (dB)")
            ax.grid(True, which="both", alpha=0.3)
            ax.set_title(f"×{scale}: PSNR vs {label.split(' ')[0]}")
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=c, label=a) for a, c in ARCH_COLOURS.items()
               if any(p["arch"] == a for p in points)]
    handles.append(plt.Line2D([], [], marker="o", linestyle="", markerfacecolor="none", color="gray",
                              label="community (not trained on bicubic)"))
    figure.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    figure.suptitle(f"LiteSR zoo — marker area ∝ parameters; latency: deploy fp32, {info['threads']} thread(s), "
                    f"{info['cpu']}, torch {info['torch']}", fontsize=10)
    figure.tight_layout(rect=(0, 0.04, 1, 0.97))
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=130)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights-dir", type=Path, default=SHARED / "weights")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "psnr_vs_cost.png")
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads for latency (default 1: steadiest on a shared machine)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--from-json", type=Path, help="redraw from a JSON this script wrote, measuring nothing")
    args = parser.parse_args()
    if args.from_json:
        data = json.loads(args.from_json.read_text())
        draw(data["points"], data["machine"], args.out)
        print(f"wrote {args.out}")
        return 0
    torch.set_num_threads(args.threads)
    points = []
    for name, card in ZOO.items():
        path = locate(card.weights, args.weights_dir)
        if path is None:
            print(f"skip {name}: weights not installed", file=sys.stderr)
            continue
        print(f"measuring {name} …", file=sys.stderr, flush=True)
        points.extend(measure(name, path, args.runs))
    if not points:
        print("error: no zoo model has its weights here", file=sys.stderr)
        return 1
    info = machine()
    draw(points, info, args.out)
    args.out.with_suffix(".json").write_text(json.dumps({"machine": info, "output_size": OUTPUT_SIZE,
                                                          "points": points}, indent=1))
    for p in sorted(points, key=lambda p: (p["scale"], p["macs"])):
        print(f"{p['model']:34s} ×{p['scale']}  {p['set5_psnr']:.2f} dB  {p['macs'] / 1e9:7.1f} G MACs  "
              f"{p['latency_s'] * 1e3:8.0f} ms  {p['params']:,} params")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
