"""SRModel: a network plus what it is (its ArchSpec), with the operations users call."""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from .archs import SRNet
from .checkpoints import save_safetensors
from .errors import LiteSRError
from .imaging.io import from_float_tensor, to_float_tensor
from .imaging.resize import imresize
from .inference import DeployedNet, Runner, keep_freed_host_memory, upscale_tensor
from .profile import network_device
from .spec import ArchSpec

ImageLike = TypeVar("ImageLike", np.ndarray, Image.Image)
ALPHA_MODES = ("bicubic", "model")
#: PIL modes kept as they are by :meth:`SRModel.upscale`; others are converted to RGB(A).
PIL_NATIVE_MODES = {"L", "LA", "RGB", "RGBA", "I;16"}


class SRModel:
    """A super-resolution network ready to use.

    ``net`` is the plain ``torch.nn.Module``; ``spec`` says how to rebuild it. ``scale`` is
    the default factor and ``scales`` every factor served (the multi-scale LESRCNN serves
    ×2, ×3 and ×4 from one network). ``runner`` is what upscaling runs: the network as it
    is until :meth:`deploy`, then its deploy form; an ONNX Runtime model
    (:func:`litesr.export.load_onnx`) has an :class:`~litesr.export.OrtNet` as both.
    """

    def __init__(self, net: SRNet, spec: ArchSpec, name: str | None = None, source: str | None = None) -> None:
        self.net = net.eval()
        self._spec = spec
        self.name = name
        self.source = source
        self._deployed: DeployedNet | None = None

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
        return self.net.device if not isinstance(self.net, torch.nn.Module) else network_device(self.net)

    @property
    def runner(self) -> SRNet | Runner:
        """What :meth:`upscale` runs: the deploy form after :meth:`deploy`, else the network."""
        return self._deployed if self._deployed is not None else self.net

    def num_params(self) -> int:
        """Trainable and frozen parameters of the network in its current form."""
        if not isinstance(self.net, torch.nn.Module):
            return self.net.num_params
        return sum(p.numel() for p in self.net.parameters())

    def to(self, device: str | torch.device) -> "SRModel":
        self.net.to(device)
        if self._deployed is not None:  # compiled graphs and precision copies are per device
            self._deployed = DeployedNet(self.net, channels_last=self._deployed.memory_format == torch.channels_last,
                                         compile=self._deployed.compiled)
        return self

    def deploy(self, *, channels_last: bool = True, compile: bool = False, reuse_memory: bool = True) -> "SRModel":
        """Switch once to the inference form; the output equals the training form's (≤ 1e-4).

        SPAN's Conv3XC branches are fused once into single 3×3 convs. Upscaling then feeds
        the network channels-last tensors (``channels_last``; SCNet's shift becomes one
        depthwise pass) under ``torch.inference_mode``. ``compile=True`` adds
        ``torch.compile``: it pays off for SPAN (its element-wise chain fuses) and not for
        SCNet or LESRCNN (BENCHMARKS.md), and each new input shape compiles first (seconds).
        ``reuse_memory`` keeps freed host memory for reuse (:func:`keep_freed_host_memory`,
        process-wide), which removes the page faults that dominate SCNet on a CPU. The
        weights are unchanged, so :meth:`save` still writes the same file.
        """
        self.net.fuse()
        if isinstance(self.net, torch.nn.Module):
            self._deployed = DeployedNet(self.net, channels_last=channels_last, compile=compile)
        if reuse_memory and self.device.type == "cpu":
            keep_freed_host_memory()
        return self

    @torch.inference_mode()
    def run(self, tensor: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        """Forward a float NCHW tensor in [0, 1] in one pass; the output is not clamped."""
        return self.runner(tensor.to(self.device), self.net.check_scale(scale)).contiguous()

    def upscale(
        self,
        image: ImageLike,
        scale: int | None = None,
        *,
        tile: int | None = None,
        tile_pad: int | None = None,
        precision: str = "fp32",
        alpha: str = "bicubic",
        outscale: float | None = None,
        on_tile: Callable[[int, int], None] | None = None,
    ) -> ImageLike:
        """Super-resolve an image and return the same kind of object.

        Accepts numpy arrays H×W (gray), H×W×3 (RGB) or H×W×4 (RGBA), uint8 or uint16, or a
        PIL image. Gray goes through the network as three equal channels and comes back
        gray; alpha is resized with bicubic interpolation, or with the network
        (``alpha="model"``). ``tile``/``tile_pad``/``precision`` are those of
        :func:`litesr.inference.upscale_tensor`. ``outscale`` resizes the network's result
        (MATLAB-style bicubic) to that overall factor.
        """
        if isinstance(image, Image.Image):
            native = image if image.mode in PIL_NATIVE_MODES else image.convert("RGBA" if "A" in image.getbands() else "RGB")
            return Image.fromarray(self.upscale(np.asarray(native), scale, tile=tile, tile_pad=tile_pad,
                                                precision=precision, alpha=alpha, outscale=outscale, on_tile=on_tile))
        if alpha not in ALPHA_MODES:
            raise ValueError(f"alpha must be one of {ALPHA_MODES}, got {alpha!r}")
        if image.dtype not in (np.uint8, np.uint16) or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 2, 3, 4)):
            raise ValueError(f"expected an H×W, H×W×3 or H×W×4 uint8/uint16 image, got {image.dtype} {image.shape}")
        scale = self.net.check_scale(scale)
        colour, transparency = _split_alpha(image)
        run = lambda pixels: self._upscale_colour(pixels, scale, tile, tile_pad, precision, on_tile)  # noqa: E731
        result = run(colour)
        if transparency is not None:
            resized = run(transparency) if alpha == "model" else _bicubic(transparency, scale)
            result = np.dstack([result if result.ndim == 3 else result[..., None], resized])
        if outscale is not None and outscale != scale:
            target = (round(image.shape[0] * outscale), round(image.shape[1] * outscale))
            result = imresize(result, output_shape=target)
        return result

    def _upscale_colour(self, pixels: np.ndarray, scale: int, tile: int | None, tile_pad: int | None,
                        precision: str, on_tile: Callable[[int, int], None] | None) -> np.ndarray:
        """Gray (H×W) or RGB (H×W×3) through the network; gray runs as three equal channels."""
        tensor = to_float_tensor(pixels)
        gray = tensor.shape[1] == 1
        if gray:
            tensor = tensor.expand(-1, 3, -1, -1)
        output = upscale_tensor(self.runner, tensor, scale, tile=tile, tile_pad=tile_pad,
                                precision=precision, on_tile=on_tile)
        if gray:
            output = output.mean(dim=1, keepdim=True)
        return from_float_tensor(output, pixels.dtype)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the weights as safetensors, with the spec, so ``litesr.load`` needs nothing else."""
        if not isinstance(self.net, torch.nn.Module):
            raise LiteSRError("an ONNX Runtime model has no PyTorch weights to save; keep its .onnx file")
        return save_safetensors(path, self.net, self.spec)


def _split_alpha(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Colour (H×W or H×W×3) and alpha (H×W or None) of an image array."""
    if image.ndim == 2:
        return image, None
    channels = image.shape[2]
    if channels in (2, 4):
        colour = image[..., 0] if channels == 2 else image[..., :3]
        return np.ascontiguousarray(colour), np.ascontiguousarray(image[..., -1])
    return (image[..., 0] if channels == 1 else image), None


def _bicubic(plane: np.ndarray, scale: int) -> np.ndarray:
    """Bicubic resize of one plane (alpha), clamped back into its integer range."""
    tensor = to_float_tensor(plane)
    return from_float_tensor(F.interpolate(tensor, scale_factor=scale, mode="bicubic", align_corners=False), plane.dtype)
