"""Training throughput: LiteSR's training step vs a naive eager fp32 NCHW loop, in one run.

SCNet-T ×4 (64 features, 16 blocks, pixel-shuffle), batch 16, 64×64 LR patches (256×256
HR), Adam + L1 — the paper's setting. Both loops consume the same batches. The naive loop
is what a straightforward PyTorch script does; LiteSR's step is ``Trainer.step`` with the
options the CPU recipes use (bf16 autocast, channels_last, EMA, scheduler), optionally
with ``torch.compile``. Timings are medians over interleaved repeats, reported as ratios.

    python benchmarks/train_throughput.py [--steps 6] [--repeats 3] [--no-compile]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

from litesr.archs import SCNet
from litesr.train.config import load_config
from litesr.train.trainer import Trainer

BATCH, LR_PATCH, SCALE = 16, 64, 4


def make_images(folder: Path, count: int = 8, size: int = 320) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        small = rng.integers(0, 255, (size // 8, size // 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((size, size), Image.BICUBIC).save(folder / f"{index}.png")
    return folder


def litesr_trainer(root: Path, compile_model: bool) -> Trainer:
    raw = {
        "name": f"bench-{compile_model}", "scale": SCALE, "manual_seed": 0,
        "datasets": {"train": {"name": "bench", "type": "HRImageDataset", "dataroot_gt": str(root / "images"),
                               "gt_size": LR_PATCH * SCALE, "use_hflip": True, "use_rot": True,
                               "batch_size_per_gpu": BATCH, "num_worker_per_gpu": 0,
                               "dataset_enlarge_ratio": 8}},
        "network_g": {"type": "SCNet", "num_feat": 64, "num_block": 16, "upscale": SCALE, "use_pixelshuffle": True},
        "path": {"experiments_root": str(root / f"exp-{compile_model}")},
        "train": {"ema_decay": 0.999, "optim_g": {"type": "Adam", "lr": 2e-4, "betas": [0.9, 0.99]},
                  "total_iter": 1000, "pixel_opt": {"type": "L1Loss"}, "precision": "bf16",
                  "channels_last": True, "compile": compile_model},
        "logger": {"print_freq": 1000, "save_checkpoint_freq": 1000},
    }
    path = root / f"bench-{compile_model}.yml"
    path.write_text(yaml.safe_dump(raw))
    config, _ = load_config(path)
    return Trainer(config, progress=False)


def naive_step_factory():
    torch.manual_seed(0)
    net = SCNet(num_feat=64, num_block=16, upscale=SCALE, use_pixelshuffle=True).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.9, 0.99))
    loss_fn = torch.nn.L1Loss()

    def step(batch: dict) -> None:
        loss = loss_fn(net(batch["lq"]), batch["gt"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def seconds_per_step(step, batches, steps: int) -> float:
    step(batches[0])  # warm-up (and compilation)
    start = time.perf_counter()
    for index in range(steps):
        step(batches[index % len(batches)])
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        make_images(root / "images")
        contenders = {"naive fp32 NCHW eager": naive_step_factory()}
        eager = litesr_trainer(root, compile_model=False)
        contenders["LiteSR bf16 channels_last"] = eager.step
        if not args.no_compile:
            contenders["LiteSR bf16 channels_last + compile"] = litesr_trainer(root, compile_model=True).step
        loader = iter(eager.loader)
        batches = [next(loader) for _ in range(3)]
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(args.repeats):
            for name, step in contenders.items():
                times[name].append(seconds_per_step(step, batches, args.steps))
    base = statistics.median(times["naive fp32 NCHW eager"])
    print(f"# SCNet-T ×4 training step, batch {BATCH}, LR {LR_PATCH}×{LR_PATCH}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, {platform.processor() or platform.machine()}")
    print("| loop | s/step | samples/s | speed-up |")
    print("|---|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.3f} | {BATCH / median:.1f} | {base / median:.2f}× |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
