"""Set5 PSNR-Y of each installed LiteSR-trained model in fp32 and reduced precision (deploy path, eager).

    python benchmarks/precision.py                          # the *.litesr models, bf16 on the CPU
    python benchmarks/precision.py --models span-x4.official --precision bf16 --threads 2

Prints a Markdown table (the "bf16 on CPU for LiteSR's own weights" table of BENCHMARKS.md):
the loss is fp32 − reduced, per scale a model serves.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import markdown_table, set5_psnr  # noqa: E402

import litesr  # noqa: E402
from litesr.zoo import packaged_cards  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(card.name for card in packaged_cards()))
    parser.add_argument("--precision", default="bf16", choices=["bf16", "fp16"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.models.split(","):
        model = litesr.load(name, device=args.device).deploy()
        for scale in model.scales:
            full = set5_psnr(lambda x, s=scale: model.runner(x.to(model.device), s, "fp32").cpu(), scale)
            reduced = set5_psnr(lambda x, s=scale: model.runner(x.to(model.device), s, args.precision).cpu(), scale)
            rows.append([f"`{name}`", f"×{scale}", f"{full:.4f}", f"{reduced:.4f} ({full - reduced:+.4f})"])
    print(markdown_table(["model", "scale", "fp32", f"{args.precision} (loss)"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
