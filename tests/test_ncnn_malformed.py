"""Malformed and hostile ncnn files: each fails with one CheckpointError naming the file.

The files are crafted in tmp_path and tiny; none needs ../shared. Besides the message, the
tests check what made the old reader misbehave: a cycle of Split layers must not hang, and a
few bytes of ``.param`` text must not make the reader allocate what its sizes claim.
"""
from __future__ import annotations

import re
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from litesr.errors import CheckpointError
from litesr.ncnn import NotSpanGraphError, read_ncnn, read_ncnn_param, span_state_dict_from_ncnn

FP32_TAG = struct.pack("<I", 0)


def write_model(tmp_path: Path, layers: list[str], blobs: int, weights: bytes = b"") -> tuple[Path, Path]:
    """Write ``m.param`` (magic, counts, the layer lines) and ``m.bin``; return their paths."""
    param, binf = tmp_path / "m.param", tmp_path / "m.bin"
    param.write_text("\n".join(["7767517", f"{len(layers)} {blobs}", *layers]) + "\n")
    binf.write_bytes(weights)
    return param, binf


def about(path: Path, message: str) -> str:
    return f"^{re.escape(str(path))}(:\\d+)?: {message}"


# --------------------------------------------------------------------------------------
# graph structure the SPAN walker relies on
# --------------------------------------------------------------------------------------


def test_split_layers_in_a_cycle_are_an_error_not_a_hang(tmp_path: Path) -> None:
    param, binf = write_model(tmp_path, ["Input in 0 1 data", "Split s1 1 2 b a x", "Split s2 1 1 a b"], 4)
    graph = read_ncnn(param, binf)
    with pytest.raises(NotSpanGraphError, match=about(param, "not a SPAN graph: Split layers form a cycle")) as error:
        span_state_dict_from_ncnn(graph)
    assert "a -> b -> a" in str(error.value) or "b -> a -> b" in str(error.value)


def test_input_layer_without_output(tmp_path: Path) -> None:
    param, binf = write_model(tmp_path, ["Input in 0 0"], 0)
    with pytest.raises(NotSpanGraphError, match=about(param, "not a SPAN graph: Input layer 'in' writes 0 blobs")):
        span_state_dict_from_ncnn(read_ncnn(param, binf))


def test_split_without_input(tmp_path: Path) -> None:
    param, binf = write_model(tmp_path, ["Input in 0 1 data", "Split s 0 2 a b"], 3)
    with pytest.raises(NotSpanGraphError, match=about(param, "not a SPAN graph: Split layer 's' reads 0 blobs")):
        span_state_dict_from_ncnn(read_ncnn(param, binf))


def test_blob_with_two_producers(tmp_path: Path) -> None:
    param, _ = write_model(tmp_path, ["Input in 0 1 data", "Sigmoid s 1 1 data data"], 2)
    with pytest.raises(CheckpointError, match=about(param, "blob 'data' is produced by both layer 'in' and layer 's'")):
        read_ncnn_param(param)


def test_non_numeric_scalar_operand(tmp_path: Path) -> None:
    layers = ["Input in 0 1 data", "MemoryData mean 0 1 m 0=3", "BinaryOp sub 2 1 data m x 0=1",
              "BinaryOp mul 1 1 x y 0=2 1=1 -23302=2,1,2"]
    param, binf = write_model(tmp_path, layers, 4, np.zeros(3, "<f4").tobytes())
    with pytest.raises(NotSpanGraphError, match=about(param, "not a SPAN graph: BinaryOp 'mul' has the non-numeric")):
        span_state_dict_from_ncnn(read_ncnn(param, binf))


# --------------------------------------------------------------------------------------
# .param counts and sizes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("7767517\n1000000000 1\nInput in 0 1 data\n", "header declares 1000000000 layers but the file has 1"),
        ("7767517\n-1 1\n", "layer count -1 is negative"),
        ("7767517\n1 1 1\nInput in 0 1 data\n", "'1 1 1' is not 'layer_count blob_count'"),
        ("7767517\n1 1\nInput in 0 -1 data\n", "output count of layer 'in' -1 is negative"),
        ("7767517\n1 1\nInput in 0 x data\n", "output count of layer 'in' 'x' is not an integer"),
        ("7767517\n1 1\nInput in 0 3 data\n", "layer 'in' lists fewer blobs than its counts 0 3"),
        ("7767517\n1 1\nInput in 0 1 data 0=3,4\n", "cannot parse parameter value '3,4'"),
        ("7767517\n1 1\nInput in 0 1 data -23300=5,1\n", "array parameter .* declares 5 values but has 1"),
        ("7767517\n1 5\nInput in 0 1 data\n", "header declares 5 blobs but the layers produce 1"),
        ("\x00\x01binary", "not an ncnn text .param file"),
    ],
)
def test_bad_param_text(tmp_path: Path, text: str, message: str) -> None:
    param = tmp_path / "bad.param"
    param.write_text(text)
    with pytest.raises(CheckpointError, match=about(param, message)):
        read_ncnn_param(param)


def test_param_path_that_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=about(tmp_path, "not a file")):
        read_ncnn_param(tmp_path)


@pytest.mark.parametrize(
    ("layer", "weights", "message"),
    [
        # sizes whose product overflows int64 (numpy would wrap it round to a small number)
        ("MemoryData md 0 1 m 0=4294967296 1=4294967296 2=4294967296", b"",
         r"the file is truncated: data of layer 'md' needs 316912650057057350374175801344 bytes"),
        ("Convolution c 1 1 data y 0=1 1=1 6=2000000000", FP32_TAG,
         r"the file is truncated: weight \(fp32\) of layer 'c' needs 8000000000 bytes at offset 4"),
        ("Convolution c 1 1 data y 0=1 1=1 6=2000000000", struct.pack("<I", 0x01306B47),
         r"the file is truncated: weight \(fp16\) of layer 'c' needs 4000000000 bytes"),
        ("InnerProduct fc 1 1 data y 0=100000000 1=1 2=1", FP32_TAG + bytes(4),
         r"the file is truncated: bias of layer 'fc' needs 400000000 bytes"),
    ],
)
def test_sizes_beyond_the_bin_fail_before_allocating(tmp_path: Path, layer: str, weights: bytes, message: str) -> None:
    lines = ["Input in 0 1 data", layer] if " 1 1 data " in layer else [layer]
    param, binf = write_model(tmp_path, lines, len(lines), weights)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=about(binf, message)):
            read_ncnn(param, binf)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"reading a {binf.stat().st_size}-byte .bin peaked at {peak} bytes"


@pytest.mark.parametrize(
    ("params", "message"),
    [("0=1 1=1 6=-5", "parameter 6=-5 must be a non-negative integer"),
     ("0=-1 1=1 6=1", "parameter 0=-1 must be a non-negative integer"),
     ("0=1 1=1.5 6=1", "parameter 1=1.5 must be a non-negative integer")],
)
def test_negative_or_fractional_sizes(tmp_path: Path, params: str, message: str) -> None:
    param, binf = write_model(tmp_path, ["Input in 0 1 data", f"Convolution c 1 1 data y {params}"], 2,
                              FP32_TAG + bytes(64))
    with pytest.raises(CheckpointError, match=about(param, rf"layer 'c' \(Convolution\): {message}")):
        read_ncnn(param, binf)


def test_unsupported_weighted_layer(tmp_path: Path) -> None:
    param, binf = write_model(tmp_path, ["Input in 0 1 data", "BatchNorm bn 1 1 data y 0=3"], 2, bytes(48))
    with pytest.raises(CheckpointError, match=about(param, r"layer 'bn' \(BatchNorm\): this reader does not decode")):
        read_ncnn(param, binf)
