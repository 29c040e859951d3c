"""Which exact formulation of SCNet's Shift8 is cheapest? Measured, not assumed.

    python benchmarks/shift8.py [--size 256] [--channels 64] [--rounds 15] [--threads 2]

On a 1×C×S×S activation (SCNet-T's body: C=64 at the LR size), in NCHW and channels-last,
fp32 and bf16, each round times every formulation once; the table gives medians and the
per-round ratio to the reference (zero-filled output + eight slice writes):

* ``pad + cat``     — one zero-padded copy, eight views concatenated;
* ``empty + slices``— eight slice copies into an uninitialised output, borders zeroed
  (what ``Shift8`` does for NCHW input);
* ``roll + mask``   — ``torch.roll`` per group and a multiply by a border mask;
* ``depthwise conv``— a 3×3 depthwise conv with one-hot kernels (what ``Shift8`` does for
  channels-last input);
* ``Shift8``        — LiteSR's module, which picks one of the two by memory layout;
* ``Shift8 → 1×1 conv`` vs ``3×3 fused``: LiteSR's shift then SCNet's next 1×1 conv, against one
  3×3 conv whose kernel puts each input channel's 1×1 weight at its group's tap — the
  "fuse the shift into the following conv" idea (exact, but 9× the MACs).

Every formulation is checked equal to the reference before timing.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline import official_shift8  # noqa: E402
from common import interleaved, machine, markdown_table  # noqa: E402

from litesr.archs.blocks import SHIFT8_OFFSETS, Shift8, _shift8_slices, shift8_kernel  # noqa: E402

Shift = Callable[[torch.Tensor], torch.Tensor]


def pad_cat(x: torch.Tensor) -> torch.Tensor:
    group = x.shape[1] // 8
    height, width = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1))
    return torch.cat([padded[:, k * group:(k + 1) * group, 1 + dy:1 + dy + height, 1 + dx:1 + dx + width]
                      for k, (dy, dx) in enumerate(SHIFT8_OFFSETS)], dim=1)


def roll_mask(x: torch.Tensor) -> torch.Tensor:
    group = x.shape[1] // 8
    height, width = x.shape[-2:]
    parts = []
    for k, (dy, dx) in enumerate(SHIFT8_OFFSETS):
        rows = torch.ones(height, 1, dtype=x.dtype)
        cols = torch.ones(1, width, dtype=x.dtype)
        if dy:
            rows[height - 1 if dy > 0 else 0] = 0
        if dx:
            cols[:, width - 1 if dx > 0 else 0] = 0
        parts.append(torch.roll(x[:, k * group:(k + 1) * group], shifts=(-dy, -dx), dims=(2, 3)) * (rows * cols))
    return torch.cat(parts, dim=1)


def depthwise(x: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, shift8_kernel(x.shape[1], x.dtype), padding=1, groups=x.shape[1])


def fused_kernel(weight: torch.Tensor) -> torch.Tensor:
    """3×3 kernel equal to ``conv1x1(weight) ∘ Shift8``: each input channel's weight at its tap."""
    out_channels, channels = weight.shape[:2]
    kernel = torch.zeros(out_channels, channels, 3, 3, dtype=weight.dtype)
    group = channels // 8
    for k, (dy, dx) in enumerate(SHIFT8_OFFSETS):
        kernel[:, k * group:(k + 1) * group, 1 + dy, 1 + dx] = weight[:, k * group:(k + 1) * group, 0, 0]
    return kernel


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    env = machine()
    print(f"{env['cpu']}, torch {env['torch']}, {env['threads']} threads, {env['date']}, load {env['load_average']}\n")
    rows = []
    generator = torch.Generator().manual_seed(0)
    for layout in ("NCHW", "channels-last"):
        for dtype in (torch.float32, torch.bfloat16):
            x = torch.randn(1, args.channels, args.size, args.size, generator=generator).to(dtype)
            weight = (torch.randn(args.channels, args.channels, 1, 1, generator=generator) / 8).to(dtype)
            bias = torch.zeros(args.channels, dtype=dtype)
            if layout == "channels-last":
                x = x.contiguous(memory_format=torch.channels_last)
            kernel = fused_kernel(weight)
            shifts: dict[str, Shift] = {
                "zero + 8 slice writes (reference)": official_shift8, "pad + cat": pad_cat,
                "empty + slices": _shift8_slices, "roll + mask": roll_mask, "depthwise conv": depthwise,
                "Shift8 (LiteSR)": Shift8(),
            }
            reference = official_shift8(x)
            for name, shift in shifts.items():
                assert torch.equal(shift(x), reference), name
            steps = {name: (lambda s=shift, x=x: s(x)) for name, shift in shifts.items()}
            steps["Shift8 → 1×1 conv"] = lambda x=x, w=weight, b=bias: F.conv2d(Shift8()(x), w, b)
            steps["3×3 fused (shift folded into the 1×1)"] = lambda x=x, k=kernel, b=bias: F.conv2d(x, k, b, padding=1)
            fused_error = (F.conv2d(x, kernel, bias, padding=1).float()
                           - F.conv2d(reference, weight, bias).float()).abs().max().item()
            with torch.inference_mode():
                timing = interleaved(steps, args.rounds, warmup=2)
            base = "zero + 8 slice writes (reference)"
            for name in steps:
                speedup = f"{timing.speedup(name, base):.2f}×" if name in shifts else ""
                rows.append([layout, str(dtype).removeprefix("torch."), name, f"{timing.median(name) * 1e3:.2f}",
                             speedup, f"{fused_error:.1e}" if name.startswith("3×3") else ""])
    print(f"1×{args.channels}×{args.size}×{args.size}, {args.rounds} rounds\n")
    print(markdown_table(["layout", "dtype", "formulation", "median ms", "speed-up vs reference", "max |Δ|"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
