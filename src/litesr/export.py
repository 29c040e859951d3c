"""ONNX export of the deploy graph, and ONNX Runtime as an inference backend.

:func:`export_onnx` traces the deploy form (SPAN fused, SCNet's shift as one depthwise
``Conv``) with the TorchScript exporter and stores what LiteSR needs to run the file
again — architecture, scale, receptive radius, memory estimate — in the model's metadata.
:class:`OrtNet` wraps an ONNX Runtime session as a :class:`litesr.inference.Runner`, so
``upscale_tensor`` / ``SRModel.upscale`` tile, pad and convert images for it exactly as
for PyTorch; an :class:`SRModel` holding one has no PyTorch network (``net`` is ``None``). ``onnx`` and ``onnxruntime`` are optional: ``pip install 'litesr[onnx]'``.
"""
from __future__ import annotations

import copy
import importlib
import io
import json
import os
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .archs import SRNet
from .archs.base import served_scale
from .errors import LiteSRError
from .imaging.atomic import atomic_write
from .devices import INT8, resolve_device
from .inference import activation_bytes_per_pixel
from .model import SRModel
from .tracing import count_parameters
from .spec import ArchSpec

INPUT_NAME, OUTPUT_NAME = "input", "output"
METADATA_KEY = "litesr"
DEFAULT_OPSET = 17
#: Opsets the export supports: 11 brings the Pad/Resize/DepthToSpace forms the graphs need;
#: 20 is the TorchScript exporter's newest.
MIN_OPSET, MAX_OPSET = 11, 20
#: Largest ONNX Runtime vs PyTorch difference (on [0, 1] outputs) accepted for an fp32 export.
FP32_TOLERANCE = 1e-3


class OnnxError(LiteSRError):
    """ONNX export or ONNX Runtime inference failed, or its packages are missing."""


def _require(package: str) -> ModuleType:
    try:
        return importlib.import_module(package)
    except ImportError:
        raise OnnxError(f"this needs the {package} package: pip install 'litesr[onnx]'") from None


class _FixedScale(nn.Module):
    """The network with its scale bound, so the graph has a single image input."""

    def __init__(self, net: nn.Module, scale: int) -> None:
        super().__init__()
        self.net, self.scale = net, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.scale)


def export_onnx(model: SRModel, path: str | os.PathLike[str] | None = None, *, size: tuple[int, int] = (256, 256),
                scale: int | None = None, opset: int = DEFAULT_OPSET, dynamic_shape: bool = False,
                fp16: bool = False) -> bytes:
    """Export ``model``'s deploy graph to ONNX; return the bytes and write them to ``path`` if given.

    Without ``dynamic_shape`` the graph accepts exactly ``size`` (H, W) inputs; with it,
    any batch, height and width. ``fp16`` exports half-precision weights and I/O (for GPU
    runtimes; :class:`OrtNet` converts on the way in and out). ``model`` is not modified.
    """
    onnx = _require("onnx")
    scale = model.check_scale(scale)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise OnnxError(f"opset {opset} is not supported: use {MIN_OPSET} to {MAX_OPSET}")
    net = _deploy_copy(model)
    spec = model.spec.for_network(net)  # the graph is the deploy form, whatever form the model is in
    bytes_per_pixel = activation_bytes_per_pixel(net, scale)  # of the fp32 graph: an upper bound for fp16
    dtype = torch.float16 if fp16 else torch.float32
    net = net.to(dtype)
    height, width = size
    # Channels-last at trace time makes Shift8 take its depthwise-conv form: one Conv node.
    sample = torch.rand(1, 3, height, width, dtype=dtype).contiguous(memory_format=torch.channels_last)
    axes = {0: "batch", 2: "height", 3: "width"}
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(_FixedScale(net, scale), (sample,), buffer, dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], do_constant_folding=True,
                              dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes} if dynamic_shape else None)
    except Exception as error:  # the exporter raises many types; all mean "cannot export like this"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise OnnxError(f"ONNX export (opset {opset}) failed: {reason}") from None
    proto = onnx.load_from_string(buffer.getvalue())
    metadata = {
        "arch": spec.arch, "kwargs": dict(spec.kwargs), "scale": scale,
        "receptive_radius": net.receptive_radius, "activation_bytes_per_pixel": bytes_per_pixel,
        "precision": "fp16" if fp16 else "fp32", "dynamic_shape": dynamic_shape, "input_size": [height, width],
        "opset": opset, "parameters": count_parameters(net),
        "name": model.name, "source": model.source,
    }
    onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps(metadata, sort_keys=True)})
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as error:
        raise OnnxError(f"the exported graph is not valid ONNX (opset {opset}): {str(error).splitlines()[0]}") from None
    data = proto.SerializeToString()
    if path is not None:
        atomic_write(Path(path), lambda handle: handle.write(data))
    return data


def _deploy_copy(model: SRModel) -> SRNet:
    """A CPU fp32 copy of ``model``'s network in deploy form (``model`` is left as it is)."""
    if model.net is None:
        raise OnnxError("this model has no PyTorch network to export: it is an ONNX model already")
    return copy.deepcopy(model.net).float().fuse().eval().cpu()


class OrtNet:
    """An ONNX Runtime session exported by :func:`export_onnx`, usable wherever a runner is.

    Runs on the CPU (``intra_op_num_threads`` = PyTorch's thread count unless ``threads``
    is given) or, with ``device="cuda"`` and ``onnxruntime-gpu``, on the CUDA provider.
    """

    backend = "onnxruntime"
    compiled = False

    def __init__(self, model: bytes | str | os.PathLike[str], *, device: str | torch.device = "cpu",
                 threads: int | None = None) -> None:
        ort = _require("onnxruntime")
        self._device = resolve_device(device)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        if self._device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise OnnxError("onnxruntime has no CUDA provider here (install onnxruntime-gpu, or use --device cpu)")
            providers.insert(0, "CUDAExecutionProvider")
        source = model if isinstance(model, bytes) else str(model)
        try:
            self.session = ort.InferenceSession(source, options, providers=providers)
        except Exception as error:  # onnxruntime raises its own exception types
            raise OnnxError(f"onnxruntime cannot load {'the model' if isinstance(model, bytes) else model}: "
                            f"{str(error).strip().splitlines()[0]}") from None
        self.threads = options.intra_op_num_threads
        text = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if text is None:
            raise OnnxError("this ONNX file was not exported by LiteSR (no litesr metadata); use `litesr export`")
        self.metadata: dict[str, Any] = json.loads(text)
        self.spec = ArchSpec(self.metadata["arch"], self.metadata["kwargs"])
        self.scales: tuple[int, ...] = (int(self.metadata["scale"]),)
        self.precision: str = self.metadata["precision"]
        # fp16 graphs read half-precision images; fp32 and int8 ones (quantized inside) read float32.
        self._input_dtype = np.float16 if self.precision == "fp16" else np.float32

    @property
    def receptive_radius(self) -> int:
        return int(self.metadata["receptive_radius"])

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def num_params(self) -> int:
        return int(self.metadata["parameters"])

    def activation_bytes_per_pixel(self, scale: int) -> int:
        return int(self.metadata["activation_bytes_per_pixel"])

    def check_scale(self, scale: int | None) -> int:
        return served_scale(self.scales, scale, "this ONNX model")

    def __call__(self, x: torch.Tensor, scale: int | None = None, precision: str | None = None) -> torch.Tensor:
        """Run one NCHW float batch; the result is a float32 CPU tensor (unclamped).

        ``precision`` must be the graph's own (``None``: whatever it is). A float graph also
        answers ``fp32``, the default request; an int8 graph does not, since its results
        differ from fp32 by more than rounding and a caller recording ``fp32`` would be wrong.
        """
        self.check_scale(scale)
        accepted = {self.precision} if self.precision == INT8 else {"fp32", self.precision}
        if precision is not None and precision not in accepted:
            hint = ("pass precision 'int8' (--precision int8)" if self.precision == INT8
                    else "re-export it (--fp16 / --int8) or use the torch backend")
            raise OnnxError(f"an ONNX model runs in the precision it was exported in ({self.precision}), "
                            f"not {precision}; {hint}")
        expected = self.metadata["input_size"]
        if not self.metadata["dynamic_shape"] and list(x.shape[-2:]) != expected:
            raise OnnxError(f"this ONNX model was exported for {expected[0]}×{expected[1]} inputs, got "
                            f"{x.shape[-2]}×{x.shape[-1]}: export it with --dynamic-shape to upscale any size")
        array = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=self._input_dtype)
        output = self.session.run([OUTPUT_NAME], {INPUT_NAME: array})[0]
        return torch.from_numpy(output).float()


def load_onnx(path: str | os.PathLike[str], *, device: str | torch.device = "cpu",
              threads: int | None = None) -> SRModel:
    """An :class:`SRModel` backed by ONNX Runtime, from a file written by :func:`export_onnx`."""
    runner = OrtNet(path, device=device, threads=threads)
    return SRModel(None, runner.spec, name=runner.metadata.get("name"), source=str(path), runner=runner)


def onnxruntime_model(model: SRModel, *, threads: int | None = None) -> SRModel:
    """``model`` re-backed by ONNX Runtime: exported in memory with dynamic shapes, then loaded."""
    data = export_onnx(model, size=(64, 64), dynamic_shape=True)
    runner = OrtNet(data, device=model.device, threads=threads)
    return SRModel(None, runner.spec, name=model.name, source=model.source, runner=runner)


def check_onnx(model_bytes: bytes, model: SRModel, sizes: list[tuple[int, int]],
               scale: int | None = None) -> float:
    """Largest |ONNX Runtime − PyTorch| over a test image of each size (PyTorch in fp32, deploy form).

    The test images are smooth random fields, not white noise: on noise, SR networks leave
    [0, 1] by orders of magnitude (SPAN ×4 reaches ±300), and fp32 rounding alone then
    differs by ~0.03 between any two correct implementations.
    """
    ort_net = OrtNet(model_bytes)
    net = _deploy_copy(model)
    scale = net.check_scale(scale)
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    with torch.inference_mode():
        for height, width in sizes:
            coarse = torch.rand(1, 3, height // 8 + 2, width // 8 + 2, generator=generator)
            x = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)
            difference = (ort_net(x, scale, ort_net.precision) - net(x, scale)).abs().max().item()
            worst = max(worst, difference if np.isfinite(difference) else float("inf"))
    return worst
