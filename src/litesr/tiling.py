"""Seamless tiling: which window of the input each piece of the output is computed from.

Tiles are cut with a margin of ``pad`` input pixels on every side (shifted inward at the
image border, see :func:`tile_window`), run separately, and only their centre is kept.
Once the margin covers the receptive radius of what runs (a network, a bicubic resize),
each kept pixel saw exactly what it would have seen in a whole-image pass, so the tiled
result equals the untiled one up to float rounding — no blending needed — while memory
stays bounded by the tile size.

This module knows nothing about networks or pixel types: :func:`run_tiles` is the one tile
loop, and its callers say how a window is computed and where its kept part goes (a float
tensor in :func:`litesr.inference.upscale_tensor`, an integer image array in
:mod:`litesr.image_upscale`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .errors import LiteSRError

#: Smallest tile side accepted: below it the margins would be most of every window.
MIN_TILE = 8


class TilingError(LiteSRError, ValueError):
    """A tile size or tile margin that cannot be used (a ``ValueError`` too, as before)."""


def check_tiling(tile: int | None, tile_pad: int | None) -> None:
    """Refuse a tile side below :data:`MIN_TILE` (``0`` means automatic) or a negative margin."""
    if tile is not None and (tile < 0 or 0 < tile < MIN_TILE):
        raise TilingError(f"tile size {tile} is too small (use 0 for automatic, or at least {MIN_TILE})")
    if tile_pad is not None and tile_pad < 0:
        raise TilingError(f"tile_pad must be 0 or more input pixels, got {tile_pad}")


def tile_grid(height: int, width: int, tile: int) -> list[tuple[int, int, int, int]]:
    """(top, left, bottom, right) of the kept regions of each tile, row by row."""
    return [(top, left, min(top + tile, height), min(left + tile, width))
            for top in range(0, height, tile) for left in range(0, width, tile)]


def tile_window(start: int, stop: int, length: int, tile: int, pad: int) -> tuple[int, int]:
    """Input span run for the kept span ``[start, stop)`` along an axis of ``length`` pixels.

    Every window has the same size, ``min(tile + 2·pad, length)``: at the image border it
    slides inward (more context on the inner side) instead of being clipped. The kept span
    stays ``pad`` pixels away from every window edge that is not the image border, so the
    result is exact either way; equal windows mean one input shape per image, so memory
    freed by one tile is reused as is by the next (no fragmentation creep of the process's
    memory) and a compiled network compiles once.
    """
    window = min(tile + 2 * pad, length)
    first = max(0, min(start - pad, length - window))
    return first, first + window


@dataclass(frozen=True)
class Tile:
    """One piece of the work, in input pixels: the region kept and the window run for it."""

    top: int
    left: int
    bottom: int
    right: int
    window_top: int
    window_left: int
    window_bottom: int
    window_right: int

    @property
    def window(self) -> tuple[slice, slice]:
        """Rows and columns of the input to run."""
        return slice(self.window_top, self.window_bottom), slice(self.window_left, self.window_right)

    def kept_in_window(self, scale: int) -> tuple[slice, slice]:
        """Rows and columns of the window's output that are kept."""
        return (slice((self.top - self.window_top) * scale, (self.bottom - self.window_top) * scale),
                slice((self.left - self.window_left) * scale, (self.right - self.window_left) * scale))

    def in_output(self, scale: int) -> tuple[slice, slice]:
        """Rows and columns of the whole output that the kept part fills."""
        return slice(self.top * scale, self.bottom * scale), slice(self.left * scale, self.right * scale)


def plan_tiles(height: int, width: int, tile: int | None, pad: int) -> list[Tile]:
    """The tiles of an image, row by row; ``tile=None`` is one window over the whole image."""
    if tile is None or (tile >= height and tile >= width):
        return [Tile(0, 0, height, width, 0, 0, height, width)]
    tiles = []
    for top, left, bottom, right in tile_grid(height, width, tile):
        window_top, window_bottom = tile_window(top, bottom, height, tile, pad)
        window_left, window_right = tile_window(left, right, width, tile, pad)
        tiles.append(Tile(top, left, bottom, right, window_top, window_left, window_bottom, window_right))
    return tiles


def run_tiles(tiles: list[Tile], scale: int, compute: Callable[[Tile], torch.Tensor],
              write: Callable[[Tile, torch.Tensor], None],
              on_tile: Callable[[int, int], None] | None = None) -> None:
    """Compute each tile's window (an N×C×h×w tensor) and hand its kept part to ``write``.

    One tile at a time, so at most one window's result is alive: the caller's ``write``
    decides what the output is. ``on_tile(done, total)`` reports progress.
    """
    for index, tile in enumerate(tiles, start=1):
        rows, columns = tile.kept_in_window(scale)
        write(tile, compute(tile)[..., rows, columns])
        if on_tile:
            on_tile(index, len(tiles))
