"""Batch upscaling throughput on many small images: one process vs torchrun, overlap on/off.

Generates ``--count`` random-texture ``--size``² PNGs and upscales the folder ×4 with
``litesr upscale`` in fresh processes, each variant into its own output folder:

* ``plain``      one process, ``--io-workers 0 --batch 1`` (decode, network, encode in turn)
* ``overlap``    one process, ``--io-workers 2 --batch 1`` (decode/encode on threads)
* ``overlap+batch`` one process, the defaults (``--io-workers 2 --batch 8``)
* ``torchrun×2`` ``torchrun --standalone --nproc_per_node=2``, the defaults

Timings on a shared machine drift, so the variants run interleaved, once per round, and
the table gives each variant's median images/s and its median per-round ratio to
``plain``. Wall time includes process start and model loading, as a user sees it.

    python benchmarks/batch_throughput.py [--count 1000] [--size 128] [--rounds 1] [--model scnet-t]
"""
from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from litesr.archs import SCNet
from litesr.checkpoints import save_safetensors
from litesr.spec import ArchSpec

#: The network timed: SCNet-T ×4 (64 features, 16 blocks), LiteSR's lightest full model.
MODELS = {"scnet-t": dict(num_feat=64, num_block=16, upscale=4, use_pixelshuffle=True),
          "scnet-tiny": dict(num_feat=8, num_block=1, upscale=4, use_pixelshuffle=True)}


def make_images(folder: Path, count: int, size: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        coarse = rng.integers(0, 255, (size // 8, size // 8, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((size, size), Image.BICUBIC).save(folder / f"{index:05d}.png")


def variants(weights: Path, source: Path) -> dict[str, list[str]]:
    upscale = ["-m", "litesr", "upscale", "-w", str(weights), str(source), "-q"]
    return {
        "plain": [sys.executable, *upscale, "--io-workers", "0", "--batch", "1"],
        "overlap": [sys.executable, *upscale, "--io-workers", "2", "--batch", "1"],
        "overlap+batch": [sys.executable, *upscale],
        "torchrun×2": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *upscale],
    }


def timed(command: list[str], output: Path) -> float:
    shutil.rmtree(output, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([*command, "-o", str(output)], check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--model", choices=sorted(MODELS), default="scnet-t")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        kwargs = MODELS[args.model]
        torch.manual_seed(0)
        weights = save_safetensors(root / "model.safetensors", SCNet(**kwargs), ArchSpec("scnet", kwargs))
        make_images(root / "in", args.count, args.size)
        commands = variants(weights, root / "in")
        seconds: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, command in commands.items():
                seconds[name].append(timed(command, root / "out"))
        print(f"{datetime.date.today()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
              f"cpu capability {torch.backends.cpu.get_cpu_capability()}; {args.count} images "
              f"{args.size}×{args.size} ×4, {args.model}, {args.rounds} round(s)\n")
        print("| variant | images/s | vs plain |\n|---|---|---|")
        for name, times in seconds.items():
            ratio = statistics.median(base / time for base, time in zip(seconds["plain"], times))
            print(f"| {name} | {args.count / statistics.median(times):.1f} | {ratio:.2f}× |")


if __name__ == "__main__":
    main()
