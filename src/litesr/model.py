"""SRModel: what upscales (a runner), what it is (an ArchSpec), and its PyTorch network if any."""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image

from .archs import SRNet
from .checkpoints import save_safetensors
from .errors import LiteSRError
from .image_upscale import ImageInputError, upscale_image
from .imaging.io import orient_array, read_exif
from .imaging.resize import imresize
from .inference import DeployedNet, Runner, as_runner, keep_freed_host_memory
from .precision import resolve_precision, warn_once
from .spec import ArchSpec

ImageLike = TypeVar("ImageLike", np.ndarray, Image.Image)
#: PIL modes kept as they are by :meth:`SRModel.upscale`; others are converted to RGB(A).
#: Largest final factor `outscale` accepts (the CLI's -s too): beyond it the resize dominates.
MAX_OUTSCALE = 16
PIL_NATIVE_MODES = {"L", "LA", "RGB", "RGBA", "I;16"}


class SRModel:
    """A super-resolution model ready to use.

    ``runner`` is what upscaling runs (:class:`litesr.inference.Runner`); ``net`` is the
    plain PyTorch network behind it, or ``None`` for a model that has none (ONNX Runtime,
    :func:`litesr.export.load_onnx`); ``spec`` says how to rebuild the network. Everything
    a runner answers — ``scale`` (the default factor), ``scales`` (every factor served:
    the multi-scale LESRCNN serves ×2, ×3 and ×4 from one network), ``device``,
    :meth:`num_params` — is asked of it, so both kinds behave alike; only :meth:`save` and
    :meth:`to` need the PyTorch network.

    ``SRModel(net, spec)`` wraps a network; until :meth:`deploy` it runs as it is.
    ``SRModel(None, spec, runner=...)`` wraps a runner alone.
    """

    def __init__(self, net: SRNet | None, spec: ArchSpec, name: str | None = None, source: str | None = None,
                 *, runner: Runner | None = None) -> None:
        if (net is None) == (runner is None):
            raise TypeError("SRModel needs a PyTorch network or a runner (one of them)")
        self.net = net.eval() if net is not None else None
        self._spec = spec
        self.name = name
        self.source = source
        self._runner = runner

    def __repr__(self) -> str:
        label = self.name or self.source or self.arch
        return f"SRModel({label!r}, {self.spec.describe()}, device={self.device})"

    @property
    def arch(self) -> str:
        return self._spec.arch

    @property
    def spec(self) -> ArchSpec:
        """The spec of the network *as it is now* (a fused SPAN rebuilds in deploy form)."""
        return self._spec if self.net is None else self._spec.for_network(self.net)

    @property
    def runner(self) -> Runner:
        """What :meth:`upscale` runs: the deploy form after :meth:`deploy`, else the network as it is.

        Until then a plain runner is made on each access (cheap), so it always sees the
        network's current weights.
        """
        if self._runner is not None:
            return self._runner
        assert self.net is not None  # one of the two is always set
        return as_runner(self.net)

    @property
    def scale(self) -> int:
        return self.check_scale(None)

    @property
    def scales(self) -> tuple[int, ...]:
        return self.runner.scales

    @property
    def device(self) -> torch.device:
        return self.runner.device

    def num_params(self) -> int:
        """Parameters of the network in its current form (what its weights file holds)."""
        return self.runner.num_params

    def check_scale(self, scale: int | None) -> int:
        """The scale to run for a request (the default for ``None``); ScaleError if not served."""
        return self.net.check_scale(scale) if self.net is not None else self.runner.check_scale(scale)

    def to(self, device: str | torch.device) -> "SRModel":
        """Move the PyTorch network (and rebuild its deploy form, which is per device)."""
        if self.net is None:
            if torch.device(device) != self.device:
                raise LiteSRError(f"this model runs on {self.device} as loaded; load it again with device={device!r}")
            return self
        self.net.to(device)
        if isinstance(self._runner, DeployedNet):  # compiled graphs and precision copies are per device
            self._runner = DeployedNet(self.net, channels_last=self._runner.memory_format == torch.channels_last,
                                       compile=self._runner.compiled)
        return self

    def deploy(self, *, channels_last: bool = True, compile: bool = False, reuse_memory: bool = True) -> "SRModel":
        """Switch once to the inference form; the output equals the training form's (≤ 1e-4).

        SPAN's Conv3XC branches are fused once into single 3×3 convs; SCNet runs streamed in
        row bands (:mod:`litesr.archs.scnet_stream`). Upscaling then feeds the network
        channels-last tensors (``channels_last``; SCNet's shift becomes one depthwise pass)
        under ``torch.inference_mode``. ``compile=True`` adds
        ``torch.compile``: it pays off for SPAN (its element-wise chain fuses) and not for
        SCNet or LESRCNN (BENCHMARKS.md), and each new input shape compiles first (seconds).
        ``reuse_memory`` keeps freed host memory for reuse (:func:`keep_freed_host_memory`,
        process-wide), which removes the page faults that dominate SCNet on a CPU. The
        weights are unchanged, so :meth:`save` still writes the same file. A model without
        a PyTorch network (ONNX Runtime) is deployed already.
        """
        runner = self._runner
        same = (isinstance(runner, DeployedNet) and self.net is not None and self.net.deployed
                and runner.compiled == compile and (runner.memory_format == torch.channels_last) == channels_last)
        if self.net is not None and not same:  # deploying again as before keeps the reduced-precision copies
            self.net.fuse()
            self._runner = DeployedNet(self.net, channels_last=channels_last, compile=compile)
        if reuse_memory and self.device.type == "cpu":
            keep_freed_host_memory()
        return self

    @torch.inference_mode()
    def run(self, tensor: torch.Tensor, scale: int | None = None, precision: str = "fp32") -> torch.Tensor:
        """Forward a float NCHW tensor in [0, 1] in one pass; the output is not clamped.

        ``precision`` may be ``"auto"`` (see :mod:`litesr.precision`).
        """
        scale = self.check_scale(scale)
        choice = resolve_precision(precision, self.runner, scale)
        warn_once(choice)
        return self.runner(tensor.to(self.device), scale, choice.precision).contiguous()

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
        PIL image (turned upright as its EXIF orientation says, as the CLI does). Gray goes
        through the network as three equal channels and comes back gray; alpha is resized
        with bicubic interpolation, or with the network (``alpha="model"``).
        ``tile``/``tile_pad``/``precision`` are those of
        :func:`litesr.inference.upscale_tensor` (``precision="auto"`` measures what is
        fastest here, :mod:`litesr.precision`; the default stays fp32, so results are the
        same on every machine unless asked otherwise); with tiles (``tile=0`` picks them from the
        free memory) each is rounded straight into the integer result, so memory stays
        near the result's own size (:mod:`litesr.image_upscale`). ``outscale`` resizes the
        network's result (MATLAB-style bicubic) to that overall factor. Mistakes (an empty
        or non-image input, a bad option) raise a :class:`~litesr.errors.LiteSRError`.
        """
        if isinstance(image, Image.Image):
            return Image.fromarray(self.upscale(_pil_pixels(image), scale, tile=tile, tile_pad=tile_pad,
                                                precision=precision, alpha=alpha, outscale=outscale, on_tile=on_tile))
        scale = self.check_scale(scale)
        if outscale is not None and not (isinstance(outscale, (int, float)) and 0 < outscale <= MAX_OUTSCALE):
            raise ImageInputError(f"outscale must be a number in (0, {MAX_OUTSCALE}], got {outscale!r}")
        result = upscale_image(self.runner, image, scale, tile=tile, tile_pad=tile_pad, precision=precision,
                               alpha=alpha, on_tile=on_tile)
        if outscale is not None and outscale != scale:
            target = (round(image.shape[0] * outscale), round(image.shape[1] * outscale))
            result = imresize(result, output_shape=target)
        return result

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the weights as safetensors, with the spec, so ``litesr.load`` needs nothing else."""
        if self.net is None:
            raise LiteSRError(f"cannot save {path}: this model has no PyTorch weights (an ONNX Runtime model: "
                              "keep its .onnx file)")
        return save_safetensors(path, self.net, self.spec)


def _pil_pixels(image: Image.Image) -> np.ndarray:
    """A PIL image as the array :meth:`SRModel.upscale` takes: in a mode it keeps, and upright.

    The orientation comes from the EXIF block exactly as :func:`litesr.imaging.io.read_image`
    reads it, so the API and the CLI turn the same photo the same way; what the reader
    would note (unreadable EXIF) is warned.
    """
    notes: list[str] = []
    orientation, _ = read_exif(image, notes)
    for note in notes:
        warnings.warn(note, stacklevel=3)
    native = image if image.mode in PIL_NATIVE_MODES else image.convert("RGBA" if "A" in image.getbands() else "RGB")
    return orient_array(np.asarray(native), orientation)
