"""Running a network over an image of any size: device, precision and seamless tiling.

Tiles are cut with a margin of ``tile_pad`` input pixels on every side (clipped at the
image border), run separately, and only their centre is kept. Once the margin covers the
network's receptive radius each kept pixel saw exactly what it would have seen in a
whole-image pass, so the tiled result equals the untiled one up to float rounding — no
blending needed — while memory stays bounded by the tile size.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from contextlib import nullcontext

import torch

from .archs import SRNet
from .errors import LiteSRError

PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
#: Candidate tile sides (input pixels) for automatic tiling, largest first.
AUTO_TILE_SIDES: tuple[int, ...] = (1024, 768, 512, 384, 256, 192, 128, 96, 64)
#: Share of the free memory one tile's activations may take, and a hard cap, so automatic
#: tiling leaves room for the image buffers and for other programs.
AUTO_TILE_MEMORY_SHARE = 0.25
AUTO_TILE_MEMORY_CAP = 1 << 30


class PrecisionFallbackWarning(UserWarning):
    """A reduced-precision pass produced NaN/inf and was redone in fp32."""


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without it is a clear error."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LiteSRError("--device cuda was requested but PyTorch sees no CUDA GPU (use --device cpu)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise LiteSRError(f"unknown device {name!r} (use auto, cpu or cuda)") from None


def check_precision(precision: str, device: torch.device) -> torch.dtype:
    if precision not in PRECISIONS:
        raise LiteSRError(f"unknown precision {precision!r} (use {', '.join(PRECISIONS)})")
    if precision == "fp16" and device.type == "cpu":
        raise LiteSRError("fp16 is for CUDA GPUs; on a CPU use bf16 (or fp32)")
    return PRECISIONS[precision]


def available_memory(device: torch.device) -> int:
    """Bytes free for activations on ``device`` (physical memory available on a CPU)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def activation_bytes_per_pixel(net: SRNet, scale: int) -> int:
    """A deliberately generous estimate of peak activation bytes per input pixel.

    The widest layer of every LiteSR network holds at most about 16 feature maps' worth of
    channels at the input resolution (SPAN's concatenation is 4C, Conv3XC's inner width 2C,
    several live at once) plus the output-resolution tensors.
    """
    first_conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    width = first_conv.out_channels
    return 4 * (16 * width + 8 * 3 * scale * scale)


def auto_tile_size(net: SRNet, scale: int, device: torch.device, height: int, width: int) -> int | None:
    """Largest tile whose activations fit the memory budget; ``None`` when the image fits whole."""
    budget = min(AUTO_TILE_MEMORY_SHARE * available_memory(device), AUTO_TILE_MEMORY_CAP)
    per_pixel = activation_bytes_per_pixel(net, scale)
    if height * width * per_pixel <= budget:
        return None
    return next((side for side in AUTO_TILE_SIDES if (side + 2 * net.receptive_radius) ** 2 * per_pixel <= budget),
                AUTO_TILE_SIDES[-1])


def _forward(net: SRNet, tile: torch.Tensor, scale: int, dtype: torch.dtype) -> torch.Tensor:
    """One pass in ``dtype``; redone in fp32 (with a warning) if reduced precision overflows."""
    autocast = (torch.autocast(tile.device.type, dtype=dtype) if dtype != torch.float32 else nullcontext())
    with autocast:
        out = net(tile, scale)
    if dtype != torch.float32 and not torch.isfinite(out).all():
        warnings.warn(f"{dtype} overflowed (NaN/inf) in this model; redoing the pass in fp32", PrecisionFallbackWarning)
        out = net(tile, scale)
    return out.float()


def tile_grid(height: int, width: int, tile: int) -> list[tuple[int, int, int, int]]:
    """(top, left, bottom, right) of the kept regions of each tile, row by row."""
    return [(top, left, min(top + tile, height), min(left + tile, width))
            for top in range(0, height, tile) for left in range(0, width, tile)]


@torch.inference_mode()
def upscale_tensor(
    net: SRNet,
    image: torch.Tensor,
    scale: int,
    *,
    tile: int | None = None,
    tile_pad: int | None = None,
    precision: str = "fp32",
    on_tile: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Super-resolve a 1×C×H×W float tensor in [0, 1] with ``net``; the result is float32 on the CPU.

    ``tile=None`` runs the whole image at once, ``tile=0`` picks a tile size from the free
    memory, ``tile=N`` uses N×N input-pixel tiles. ``tile_pad`` defaults to the network's
    receptive radius, which makes tiling exact. ``on_tile(done, total)`` reports progress.
    """
    device = next(net.parameters()).device
    dtype = check_precision(precision, device)
    height, width = image.shape[-2:]
    if tile == 0:
        tile = auto_tile_size(net, scale, device, height, width)
    if tile is None or (tile >= height and tile >= width):
        result = _forward(net, image.to(device), scale, dtype).cpu()
        if on_tile:
            on_tile(1, 1)
        return result
    if tile < 8:
        raise LiteSRError(f"tile size {tile} is too small (use 0 for automatic, or at least 8)")
    pad = net.receptive_radius if tile_pad is None else tile_pad
    output = torch.empty(image.shape[0], image.shape[1], height * scale, width * scale, dtype=torch.float32)
    grid = tile_grid(height, width, tile)
    for index, (top, left, bottom, right) in enumerate(grid, start=1):
        y0, x0 = max(top - pad, 0), max(left - pad, 0)
        y1, x1 = min(bottom + pad, height), min(right + pad, width)
        result = _forward(net, image[..., y0:y1, x0:x1].to(device), scale, dtype).cpu()
        output[..., top * scale:bottom * scale, left * scale:right * scale] = result[
            ..., (top - y0) * scale:(bottom - y0) * scale, (left - x0) * scale:(right - x0) * scale]
        if on_tile:
            on_tile(index, len(grid))
    return output

