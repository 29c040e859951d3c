"""Ship a trained model: copy its weights into the package and write its zoo card.

The card records how the weights were made (recipe, iterations, wall-clock hours,
hardware, training data) and what they measure on Set5, Set14 and B100 under the standard
protocol (PSNR/SSIM on Y, border = scale, MATLAB-made LR), measured here with
``litesr.evaluate`` — so every number in the zoo table can be reproduced with one command.

    python scripts/ship_weights.py train_state/scnet-t-x4 --name scnet-t-x4.litesr \\
        --hours 2.1 --hardware "2 vCPU AMD EPYC (Zen 4), bf16" [--weights best] [--status final]

``--fuse`` ships the deploy form (SPAN: each Conv3XC folded into one 3×3 conv, a quarter
of the size; the output agrees to ~1e-5); ``--recipe``/``--iterations`` describe runs made
of several stages (e.g. a CPU run continued on a GPU), whose last experiment folder is given.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import yaml

import litesr
from litesr.data.dataset import SRTrainDataset
from litesr.data.image_store import TrainingImages
from litesr.evaluate import evaluate

BENCHMARKS = {"Set5": "../shared/data/benchmark/Set5", "Set14": "../shared/data/benchmark/Set14",
              "B100": "../shared/data/benchmark/B100"}
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "src" / "litesr" / "weights"


def last_iteration(experiment: Path) -> int:
    lines = (experiment / "metrics.jsonl").read_text().splitlines()
    return max(json.loads(line)["iter"] for line in lines)


def training_data(train_set: dict, scale: int) -> str:
    """What the run actually trained on: the folders, and how many images were too small to use."""
    roots = train_set["dataroot_gt"] if isinstance(train_set["dataroot_gt"], list) else [train_set["dataroot_gt"]]
    images = TrainingImages(roots, progress=False)
    scales = train_set.get("scales") or [scale]
    usable = SRTrainDataset(images, scales=scales, gt_size=train_set["gt_size"], small_images="skip",
                            precompute_lr=False).num_images
    return (f"{train_set['name']} ({', '.join(roots)}: {len(images)} HR images, LR by MATLAB-exact bicubic; "
            f"{len(images) - usable} smaller than the {train_set['gt_size']}-pixel HR patch skipped)")


def measure(model: litesr.SRModel) -> dict[str, dict[str, float]]:
    """PSNR/SSIM of ``model`` (as shipped) on every benchmark set at every scale it serves."""
    results = {}
    for set_name, folder in BENCHMARKS.items():
        for scale in model.scales:
            result = evaluate(model, folder, scale, progress=True)
            results[f"{set_name}_x{scale}"] = {"psnr": round(result.psnr, 3), "ssim": round(result.ssim, 4)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", type=Path)
    parser.add_argument("--name", required=True, help="zoo name with the .litesr tag")
    parser.add_argument("--weights", choices=["best", "final"], default="best")
    parser.add_argument("--hours", type=float, required=True, help="wall-clock hours of training so far")
    parser.add_argument("--hardware", required=True)
    parser.add_argument("--status", default="final", help="final, or e.g. 'intermediate: 1500 of 6000 iterations'")
    parser.add_argument("--fuse", action="store_true", help="ship the deploy (fused) form")
    parser.add_argument("--recipe", help="the recipe, when more than the experiment's config name (several stages)")
    parser.add_argument("--iterations", type=int, help="iterations of all stages together (default: this experiment's)")
    args = parser.parse_args()

    config = yaml.safe_load((args.experiment / "config.yml").read_text())
    models = args.experiment / "models"
    weights = models / ("best.safetensors" if args.weights == "best" else f"{config['name']}.safetensors")
    stem = args.name.split(".")[0]
    shipped = WEIGHTS_DIR / f"{stem}.safetensors"
    WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    model = litesr.load(weights)
    if args.fuse:
        model.deploy().save(shipped)
    else:
        shutil.copyfile(weights, shipped)
    model = litesr.load(shipped)
    metrics = measure(model)
    main_scale = model.scale if len(model.scales) == 1 else model.scales[0]
    train_set = config["datasets"]["train"]
    card = {
        "name": args.name,
        "arch": model.arch,
        "kwargs": dict(model.spec.kwargs),
        "file": f"{stem}.safetensors",
        "source": "trained by LiteSR (this repository)",
        "license": "Apache-2.0",
        "training_data": training_data(train_set, config["scale"]),
        "set5_psnr": metrics[f"Set5_x{main_scale}"]["psnr"],
        "notes": f"{args.status}; see the card's metrics for Set5/Set14/B100",
        "recipe": args.recipe or config["name"],
        "iterations": args.iterations or last_iteration(args.experiment),
        "total_iter": config["train"]["total_iter"],
        "hours": args.hours,
        "hardware": args.hardware,
        "status": args.status,
        "metrics": metrics,
        "protocol": "PSNR/SSIM on Y (BT.601, float), border = scale, MATLAB-made LR (Set5/Set14 given, B100 made)",
    }
    (WEIGHTS_DIR / f"{stem}.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card["metrics"], indent=2))


if __name__ == "__main__":
    main()
