"""SRModel: a network plus what it is (its ArchSpec), with the operations users call."""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image

from .archs import SRNet
from .checkpoints import save_safetensors
from .imaging.io import from_float_tensor, to_float_tensor
from .spec import ArchSpec

ImageLike = TypeVar("ImageLike", np.ndarray, Image.Image)


class SRModel:
    """A super-resolution network ready to use.

    ``net`` is the plain ``torch.nn.Module``; ``spec`` says how to rebuild it. ``scale`` is
    the default factor and ``scales`` every factor served (the multi-scale LESRCNN serves
    ×2, ×3 and ×4 from one network).
    """

    def __init__(self, net: SRNet, spec: ArchSpec, name: str | None = None, source: str | None = None) -> None:
        self.net = net.eval()
        self._spec = spec
        self.name = name
        self.source = source

    def __repr__(self) -> str:
        label = self.name or self.source or self.arch
        return f"SRModel({label!r}, {self.spec.describe()}, device={self.device})"

    @property
    def arch(self) -> str:
        return self._spec.arch

    @property
    def spec(self) -> ArchSpec:
        """The spec of the network *as it is now* (a fused SPAN rebuilds in deploy form)."""
        if self.arch == "span" and self.net.deployed:
            return replace(self._spec, kwargs={**self._spec.kwargs, "deploy": True})
        return self._spec

    @property
    def scale(self) -> int:
        return self.net.scale

    @property
    def scales(self) -> tuple[int, ...]:
        return self.net.scales

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def num_params(self) -> int:
        """Trainable and frozen parameters of the network in its current form."""
        return sum(p.numel() for p in self.net.parameters())

    def to(self, device: str | torch.device) -> "SRModel":
        self.net.to(device)
        return self

    def deploy(self) -> "SRModel":
        """Switch once to the inference form (SPAN's Conv3XC fused into single 3×3 convs)."""
        self.net.fuse()
        return self

    @torch.inference_mode()
    def run(self, tensor: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        """Forward a float NCHW tensor in [0, 1]; the output is not clamped."""
        return self.net(tensor.to(self.device), self.net.check_scale(scale))

    def upscale(self, image: ImageLike, scale: int | None = None) -> ImageLike:
        """Super-resolve a whole image: numpy H×W×3 uint8 or PIL RGB in, the same type out."""
        if isinstance(image, Image.Image):
            return Image.fromarray(self.upscale(np.asarray(image.convert("RGB")), scale))
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 RGB image, got an array of shape {image.shape}")
        output = self.run(to_float_tensor(image), scale)
        return from_float_tensor(output.cpu(), image.dtype)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the weights as safetensors, with the spec, so ``litesr.load`` needs nothing else."""
        return save_safetensors(path, self.net, self.spec)
