"""Reader of ncnn's ``.bin`` weights, and :func:`read_ncnn`, which pairs them with their graph.

Format: the weights of weight-bearing layers, concatenated in layer order. A "tagged" blob
starts with a 4-byte storage tag (``0x00000000`` raw fp32, ``0x01306B47`` fp16 padded to
4 bytes, ``0x000D4B38`` int8, other non-zero values: codebook-quantised). Biases and
MemoryData are stored untagged as raw fp32.

The sizes come from the ``.param`` text, so each is checked (a non-negative integer, and no
more bytes than the ``.bin`` has left) before anything is allocated for it: a few bytes of
hostile text cannot make the reader reserve gigabytes.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..errors import CheckpointError
from .files import read_model_file
from .graph import NcnnGraph, NcnnLayer
from .param import read_ncnn_param

_TAG_FP32 = 0x00000000
_TAG_FP16 = 0x01306B47
_TAG_INT8 = 0x000D4B38
_TAG_FP32_EXTRA = 0x0002C056

# Layer types that carry weights in the .bin but whose layout this reader does not decode;
# meeting one means later offsets would be wrong, so it is an error rather than a skip.
_UNSUPPORTED_WEIGHTED = frozenset({
    "BatchNorm", "Bias", "Scale", "PReLU", "Embed", "LayerNorm", "GroupNorm", "InstanceNorm",
    "RNN", "LSTM", "GRU", "MultiHeadAttention", "Normalize", "Convolution1D", "Convolution3D",
    "ConvolutionDepthWise1D", "ConvolutionDepthWise3D", "Deconvolution1D", "Deconvolution3D",
    "DeconvolutionDepthWise1D", "DeconvolutionDepthWise3D", "Quantize", "Dequantize", "Requantize",
    "RMSNorm", "SDPA", "Gemm",
})
_CONV_LIKE = frozenset({"Convolution", "ConvolutionDepthWise", "Deconvolution", "DeconvolutionDepthWise"})


class _BinReader:
    """Sequential reader mirroring ncnn's ModelBinFromDataReader, with bounds checks."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.path = path
        self.pos = 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def _take(self, nbytes: int, layer: NcnnLayer, what: str) -> bytes:
        if nbytes > self.remaining:
            raise CheckpointError(
                f"{self.path}: the file is truncated: {what} of layer {layer.name!r} needs {nbytes} bytes at offset "
                f"{self.pos} but only {self.remaining} remain"
            )
        chunk = self.data[self.pos : self.pos + nbytes]
        self.pos += nbytes
        return chunk

    def raw_fp32(self, n: int, layer: NcnnLayer, what: str) -> np.ndarray:
        return np.frombuffer(self._take(4 * n, layer, what), dtype="<f4").astype(np.float32)

    def tagged(self, n: int, layer: NcnnLayer, what: str) -> tuple[np.ndarray, str]:
        tag = int.from_bytes(self._take(4, layer, f"{what} storage tag"), "little")
        if tag == _TAG_FP16:
            padded = (2 * n + 3) // 4 * 4  # fp16 data is padded to a 4-byte boundary
            raw = self._take(padded, layer, f"{what} (fp16)")
            return np.frombuffer(raw[: 2 * n], dtype="<f2").astype(np.float32), "float16"
        if tag == _TAG_FP32:
            return self.raw_fp32(n, layer, f"{what} (fp32)"), "float32"
        kind = {_TAG_INT8: "int8", _TAG_FP32_EXTRA: "fp32-with-extra-scaling"}.get(tag, "codebook-quantised")
        raise CheckpointError(
            f"{self.path}: {what} of layer {layer.name!r} uses {kind} storage (tag 0x{tag:08X}), which this "
            f"reader does not support (only fp32 and fp16 weights)"
        )


class _LayerWeights:
    """Decodes one layer's weights from a :class:`_BinReader`, checking the sizes its params state."""

    def __init__(self, layer: NcnnLayer, reader: _BinReader, param_path: Path | None) -> None:
        self.layer = layer
        self.reader = reader
        self.where = f"{param_path}: layer {layer.name!r} ({layer.type})" if param_path else f"layer {layer.name!r}"

    def count(self, key: int, default: int) -> int:
        """Parameter ``key`` as a size: a non-negative integer."""
        value = self.layer.p(key, default)
        if not isinstance(value, int) or value < 0:
            raise CheckpointError(f"{self.where}: parameter {key}={value!r} must be a non-negative integer")
        return value

    def flag(self, key: int) -> bool:
        return bool(self.count(key, 0))

    def reject_int8(self) -> None:
        if self.flag(8):
            raise CheckpointError(f"{self.where}: int8-quantised (int8_scale_term), which this reader does not support")

    def store(self, role: str, values: np.ndarray, storage: str) -> None:
        self.layer.weights[role], self.layer.storage[role] = values, storage

    def weight_and_bias(self, num_output: int, weight_size: int, shape: tuple[int, ...], has_bias: bool) -> None:
        """A tagged weight reshaped to ``shape`` when the sizes agree, then an fp32 bias if any."""
        self.reject_int8()
        weight, storage = self.reader.tagged(weight_size, self.layer, "weight")
        if shape and math.prod(shape) == weight_size:
            weight = weight.reshape(shape)
        self.store("weight", weight, storage)
        if has_bias:
            self.store("bias", self.reader.raw_fp32(num_output, self.layer, "bias"), "float32")

    def convolution(self) -> None:
        if self.flag(19):  # dynamic_weight: weights come from a second input blob
            return
        num_output, kw = self.count(0, 0), self.count(1, 0)
        kh, weight_size = self.count(11, kw), self.count(6, 0)
        per_input = num_output * kh * kw  # ncnn's flat layout is (out, in/groups, kh, kw)
        shape = (num_output, weight_size // per_input, kh, kw) if per_input else ()
        self.weight_and_bias(num_output, weight_size, shape, self.flag(5))

    def inner_product(self) -> None:
        num_output, weight_size = self.count(0, 0), self.count(2, 0)
        shape = (num_output, weight_size // num_output) if num_output else ()
        self.weight_and_bias(num_output, weight_size, shape, self.flag(1))

    def memory_data(self) -> None:
        w, h, d, c = self.count(0, 0), self.count(1, 0), self.count(11, 0), self.count(2, 0)
        dims = [x for x in (c, d, h, w) if x]  # ncnn drops zero dimensions
        n = math.prod(dims) if dims else 0  # exact: numpy's product of huge dims would wrap around
        if self.count(21, 1) == 0:
            data, storage = self.reader.tagged(n, self.layer, "data")
        else:
            data, storage = self.reader.raw_fp32(n, self.layer, "data"), "float32"
        self.store("data", data.reshape(dims) if dims else data, storage)

    def load(self) -> None:
        t = self.layer.type
        if t in _CONV_LIKE:
            self.convolution()
        elif t == "InnerProduct":
            self.inner_product()
        elif t == "MemoryData":
            self.memory_data()
        elif t in _UNSUPPORTED_WEIGHTED:
            raise CheckpointError(f"{self.where}: this reader does not decode the weight layout of {t} layers")


def read_ncnn(param_path: str | os.PathLike[str], bin_path: str | os.PathLike[str]) -> NcnnGraph:
    """Read an ncnn model: the ``.param`` graph and every weight the ``.bin`` holds for it.

    Raises CheckpointError (one sentence naming the file) for a missing file, a bad magic, a
    ``.bin`` shorter than the graph needs, unread trailing bytes (which mean the graph and
    weights do not belong together), or a storage format this reader does not decode.
    """
    graph = read_ncnn_param(param_path)
    path = Path(bin_path)
    reader = _BinReader(read_model_file(path, ".bin"), path)
    for layer in graph.layers:
        _LayerWeights(layer, reader, graph.param_path).load()
    if reader.remaining:
        raise CheckpointError(
            f"{path}: {reader.remaining} trailing bytes after the {reader.pos} bytes the graph "
            f"{graph.param_path.name if graph.param_path else ''} uses, so it does not match that graph"
        )
    graph.bin_path = path
    return graph
