"""``litesr export``: the deploy graph as an ONNX file, checked against PyTorch with ONNX Runtime."""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from ..export import DEFAULT_OPSET, FP32_TOLERANCE, OnnxError, OrtNet, check_onnx, export_onnx
from ..imaging.atomic import atomic_write
from ..model import SRModel
from ..quantize import INT8_MIN_PSNR, as_calibration, int8_fidelity, quantize_int8
from .options import (
    NOT_OUTSCALE_HINT,
    add_calibration,
    add_command,
    add_model_source,
    add_scale,
    load_cli_model,
    size_argument,
)
from .outputs import check_output_file


def command_export(args: argparse.Namespace) -> int:
    check_output_file(args.output, "-o")
    if args.calibration is not None and not args.int8:
        args.parser.error("--calibration applies to --int8")
    model, label = load_cli_model(args)
    if args.int8:
        return _export_int8(args, model, label)
    size = args.size
    data = export_onnx(model, args.output, size=size, scale=args.scale, opset=args.opset,
                       dynamic_shape=args.dynamic_shape, fp16=args.fp16)
    shape = "any size" if args.dynamic_shape else f"{size[0]}×{size[1]} inputs"
    print(f"wrote {args.output}: {label}, opset {args.opset}, {'fp16' if args.fp16 else 'fp32'}, {shape}, "
          f"{len(data) / 1e6:.2f} MB")
    if importlib.util.find_spec("onnxruntime") is None:
        print("warning: onnxruntime is not installed, so the file was not checked (pip install 'litesr[onnx]')",
              file=sys.stderr)
        return 0
    # A dynamic graph is checked at two unrelated sizes: one that matched the trace would prove little.
    sizes = [(min(size[0], 64), min(size[1], 64)), (45, 67)] if args.dynamic_shape else [size]
    difference = check_onnx(data, model, sizes, scale=args.scale)
    checked = " and ".join(f"{h}×{w}" for h, w in sizes)
    print(f"onnxruntime vs PyTorch (fp32) at {checked}: max abs diff {difference:.3g}")
    if not args.fp16 and not difference <= FP32_TOLERANCE:
        raise OnnxError(f"onnxruntime output differs from PyTorch by {difference:.3g} (> {FP32_TOLERANCE:g})")
    return 0


def _export_int8(args: argparse.Namespace, model: SRModel, label: str) -> int:
    """Quantize (any input size), check against PyTorch fp32 by PSNR, then write the file."""
    calibration = as_calibration(args.calibration)
    data = quantize_int8(model, calibration, scale=args.scale)
    metadata = OrtNet(data).metadata
    fidelity = int8_fidelity(data, model, scale=args.scale)
    print(f"calibrated on {metadata['calibration']}")
    print(f"kept in fp32: {', '.join(metadata['fp32_nodes']) or 'nothing'}")
    print(f"onnxruntime int8 vs PyTorch fp32 at 64×64 and 45×67: PSNR {fidelity:.1f} dB")
    if not fidelity >= INT8_MIN_PSNR:
        raise OnnxError(f"the int8 graph is too far from PyTorch fp32 (PSNR {fidelity:.1f} dB < {INT8_MIN_PSNR:g} dB); "
                        "try another --calibration set")
    atomic_write(Path(args.output), lambda handle: handle.write(data))
    print(f"wrote {args.output}: {label}, int8 (QDQ, per-channel weights), any size, {len(data) / 1e6:.2f} MB")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    parser = add_command(commands, "export", command_export, hints=NOT_OUTSCALE_HINT,
                         help="export a model's deploy graph to ONNX (checked with onnxruntime)",
                         description="Export the deploy graph (SPAN fused, SCNet's shift as one conv) "
                                     "to ONNX and compare onnxruntime's output with PyTorch's.")
    add_model_source(parser)
    add_scale(parser)
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="the .onnx file to write")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    parser.add_argument("--dynamic-shape", action="store_true", help="accept any batch, height and width")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_true", help="half-precision weights and I/O (for GPU runtimes)")
    precision.add_argument("--int8", action="store_true",
                           help="int8 weights and activations, calibrated on training images (ONNX Runtime, CPU); "
                                "the graph accepts any size; image-facing convolutions stay fp32")
    add_calibration(parser)
    parser.add_argument("--size", type=size_argument, default=(256, 256), metavar="HxW",
                        help="input size of the graph (the only one accepted without --dynamic-shape; default 256x256)")
