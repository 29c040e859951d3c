"""Upscaling integer image arrays tile by tile, straight into the integer result.

A float32 copy of a whole output costs 12 bytes per RGB pixel and converting it to
integers several more; at ×4 that is gigabytes for a photo, whatever the tile size. So
here the result is allocated once, as the uint8/uint16 array returned, and each tile's
float output is rounded into it (:func:`litesr.imaging.io.from_float_tensor`, the one
float → integer conversion) and dropped. Input windows are converted to float one at a
time too. Peak memory is then the integer output plus one tile's working memory, which
automatic tiling bounds (:func:`litesr.inference.auto_tile_size`); an output that cannot
fit in memory is refused before any work.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.nn import functional as F

from .errors import LiteSRError
from .imaging.io import from_float_tensor, to_float_tensor
from .devices import check_precision
from .precision import resolve_precision, warn_once
from .inference import Runner, auto_tile_size, available_memory
from .tiling import Tile, check_tiling, plan_tiles, run_tiles

#: How the alpha channel is upscaled: bicubic interpolation, or through the network.
ALPHA_MODES = ("bicubic", "model")
#: Input pixels a bicubic output pixel reads beyond its own (4 taps): the tile margin that
#: makes tiled bicubic alpha seamless.
BICUBIC_RADIUS = 2
GIB = 1 << 30


class ImageInputError(LiteSRError, ValueError):
    """What was handed to ``upscale`` is not an image it can upscale, or an option is invalid.

    A ``ValueError`` too, which is what these mistakes raised before they were LiteSR's own.
    """


class OutputTooLargeError(LiteSRError):
    """The upscaled image would not fit in the memory available."""


def check_image(image: object) -> np.ndarray:
    """``image`` if it is an H×W, H×W×1, H×W×2, H×W×3 or H×W×4 uint8/uint16 array with pixels."""
    if not isinstance(image, np.ndarray):
        raise ImageInputError(f"expected a numpy array or a PIL image, got {type(image).__name__}")
    if image.dtype not in (np.uint8, np.uint16) or image.ndim not in (2, 3) or (
            image.ndim == 3 and image.shape[2] not in (1, 2, 3, 4)):
        raise ImageInputError(f"expected an H×W, H×W×3 or H×W×4 uint8/uint16 image, got {image.dtype} {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageInputError(f"the image is empty ({image.shape[0]}×{image.shape[1]} pixels)")
    return image


def check_alpha_mode(alpha: str) -> None:
    if alpha not in ALPHA_MODES:
        raise ImageInputError(f"alpha must be one of {ALPHA_MODES}, got {alpha!r}")


def allocate_output(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised result array, refused up front when it could not fit in memory.

    Its pages are touched only as tiles are written, so without this check a too-large
    output would fail after minutes of work, or with an allocator's message.
    """
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    available = available_memory(torch.device("cpu"))
    if size > available:
        layout = "×".join(str(n) for n in (shape[1], shape[0], *shape[2:]))
        raise OutputTooLargeError(f"output would be {layout} ({dtype.name}), {size / GIB:.1f} GiB; "
                                  f"available {available / GIB:.1f} GiB (upscale a smaller image or crop it)")
    return np.empty(shape, dtype)


def upscale_image(runner: Runner, image: np.ndarray, scale: int, *, tile: int | None = None,
                  tile_pad: int | None = None, precision: str = "fp32", alpha: str = "bicubic",
                  on_tile: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Super-resolve an integer image array (checked by :func:`check_image`) with ``runner``.

    Gray runs as three equal channels and comes back gray (the mean of the three); alpha
    is resized with bicubic interpolation or, with ``alpha="model"``, with the network as
    gray. ``tile``/``tile_pad``/``precision`` are those of
    :func:`litesr.inference.upscale_tensor` (``tile=0``: automatic, bounded memory).
    """
    check_image(image)
    check_alpha_mode(alpha)
    check_tiling(tile, tile_pad)
    choice = resolve_precision(precision, runner, scale)
    warn_once(choice)
    precision = choice.precision
    check_precision(precision, runner.device)
    height, width = image.shape[:2]
    channels = () if image.ndim == 2 or image.shape[2] == 1 else image.shape[2:]
    output = allocate_output((height * scale, width * scale, *channels), image.dtype)
    if tile == 0:
        tile = auto_tile_size(runner, scale, runner.device, height, width, reserved_host=output.nbytes)
    (colour, transparency), (colour_out, transparency_out) = _planes(image), _planes(output)
    network = _network(runner, scale, precision)
    pad = runner.receptive_radius if tile_pad is None else tile_pad
    tiles = plan_tiles(height, width, tile, pad)
    _fill(colour, colour_out, scale, tiles, network, on_tile)
    if transparency is not None and transparency_out is not None:
        if alpha == "model":
            _fill(transparency, transparency_out, scale, tiles, network, on_tile)
        else:
            _fill(transparency, transparency_out, scale, plan_tiles(height, width, tile, BICUBIC_RADIUS),
                  _bicubic(scale), None)
    return output


def _planes(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The colour part (H×W gray or H×W×3) of an image array and its alpha plane (or None)."""
    if image.ndim == 2:
        return image, None
    channels = image.shape[2]
    if channels in (2, 4):
        return (image[..., 0] if channels == 2 else image[..., :3]), image[..., -1]
    return (image[..., 0] if channels == 1 else image), None


def _fill(source: np.ndarray, target: np.ndarray, scale: int, tiles: list[Tile],
          compute: Callable[[torch.Tensor], torch.Tensor], on_tile: Callable[[int, int], None] | None) -> None:
    """Run ``compute`` over each tile's window of ``source`` and round the kept part into ``target``."""

    def window(tile: Tile) -> torch.Tensor:
        return compute(to_float_tensor(source[tile.window]))

    def write(tile: Tile, kept: torch.Tensor) -> None:
        target[tile.in_output(scale)] = from_float_tensor(kept, target.dtype)

    run_tiles(tiles, scale, window, write, on_tile)


def _network(runner: Runner, scale: int, precision: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The network on a float window; a gray window runs as three equal channels, comes back as their mean."""
    device = runner.device

    def compute(window: torch.Tensor) -> torch.Tensor:
        gray = window.shape[1] == 1
        output = runner((window.expand(-1, 3, -1, -1) if gray else window).to(device), scale, precision).cpu()
        return output.mean(dim=1, keepdim=True) if gray else output

    return compute


def _bicubic(scale: int) -> Callable[[torch.Tensor], torch.Tensor]:
    def compute(window: torch.Tensor) -> torch.Tensor:
        return F.interpolate(window, scale_factor=scale, mode="bicubic", align_corners=False)

    return compute
