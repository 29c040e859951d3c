"""Upscaling decoded frames: one at a time by default, several per forward on request.

Each frame goes through :meth:`SRModel.upscale`, which tiles it exactly as it tiles an
image. ``VideoOptions.batch`` > 1 stacks that many frames into one untiled forward.
Batching is not the default because it did not measure faster: on a quiet 2-core AVX-512 CPU (320×180 ×4, 2026-12-01) SPAN ran 0.26–0.29 s/frame either way, and SCNet-T
0.78–0.80 s/frame one at a time against 0.46–1.69 s/frame in batches of 4 (its untiled
HR-resolution activations leave the cache that tiling keeps it in).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ..imaging.io import from_float_tensor, to_float_tensor
from ..imaging.resize import imresize
from ..model import SRModel
from ..precision import resolve_precision, warn_once
from .options import VideoOptions

#: Frames per forward when ``VideoOptions.batch`` is not set (see the module docstring).
AUTO_BATCH = 1


class FrameUpscaler:
    """Turns lists of H×W×3 uint8/uint16 frames of one size into their upscaled frames."""

    def __init__(self, model: SRModel, options: VideoOptions, height: int, width: int) -> None:
        self.model = model
        self.scale = model.check_scale(options.scale)
        choice = resolve_precision(options.precision, model.runner, self.scale)  # ``auto`` measured once
        warn_once(choice)
        self.options = dataclasses.replace(options, precision=choice.precision)
        self.height, self.width = height, width
        self.batch = options.batch or AUTO_BATCH

    @property
    def output_size(self) -> tuple[int, int]:
        """(height, width) of every upscaled frame."""
        factor = self.options.outscale or self.scale
        return round(self.height * factor), round(self.width * factor)

    def __call__(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        if len(frames) == 1 or self.batch == 1:
            options = self.options
            return [self.model.upscale(frame, self.scale, tile=options.tile, tile_pad=options.tile_pad,
                                       precision=options.precision, outscale=options.outscale) for frame in frames]
        runner = self.model.runner
        batch = torch.cat([to_float_tensor(frame) for frame in frames]).to(runner.device)
        with torch.inference_mode():
            results = runner(batch, self.scale, self.options.precision).cpu()
        return [self._resized(from_float_tensor(result, frames[0].dtype)) for result in results]

    def _resized(self, frame: np.ndarray) -> np.ndarray:
        """A network result brought to ``outscale`` (as :meth:`SRModel.upscale` does for one image)."""
        if self.options.outscale is None or self.options.outscale == self.scale:
            return frame
        return imresize(frame, output_shape=self.output_size)
