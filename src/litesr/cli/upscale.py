"""``litesr upscale``: super-resolve files, folders and globs."""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

from ..batch import (
    UpscaleOptions,
    collect_inputs,
    distinct_jobs,
    is_case_insensitive,
    output_is_file,
    plan_jobs,
    run_batch,
)
from ..errors import CheckpointError, ScaleError
from ..imaging.io import DEFAULT_MAX_PIXELS
from ..model import MAX_OUTSCALE, SRModel
from .options import (
    add_backend,
    add_command,
    add_compile,
    add_device,
    add_model_source,
    add_precision,
    add_quiet,
    add_scale,
    add_threads,
    load_cli_model,
    non_negative_int,
    positive_int,
    prepare_runtime,
)
from .outputs import check_output_file, check_output_folder
from .progress import BatchProgress


def _is_onnx(weights: str | None) -> bool:
    return weights is not None and Path(weights).suffix.lower() == ".onnx"


def _load_model(args: argparse.Namespace, device: torch.device) -> tuple[SRModel, str]:
    """The model asked for (or the default one), and how to name it.

    With ``--backend onnxruntime`` a ``.onnx`` file (from ``litesr export``) runs as it is
    and any other model is exported in memory first; tiling and image handling stay
    LiteSR's own either way.
    """
    if _is_onnx(args.weights):
        if args.backend != "onnxruntime":
            raise CheckpointError(f"{args.weights} is an ONNX model: add --backend onnxruntime")
        from ..export import load_onnx  # optional dependency, imported only when asked for

        return load_onnx(args.weights, device=device), str(args.weights)
    model, label = load_cli_model(args, device)
    if args.backend != "onnxruntime":
        return model, label
    from ..export import onnxruntime_model

    return onnxruntime_model(model), f"{label} via onnxruntime"


def _check_output(output: Path, input_count: int) -> None:
    """``-o`` must be a writable file name (one input) or folder, before any model is loaded."""
    if output_is_file(output, input_count):
        check_output_file(output, "-o", make_folders=True)
    else:
        hint = ("; several inputs need an output folder" if input_count > 1
                else "; name a single output like an image (out.png) or give a folder")
        check_output_folder(output, "-o", hint)


def command_upscale(args: argparse.Namespace) -> int:
    device = prepare_runtime(args)
    inputs = collect_inputs(args.inputs)
    output = Path(args.output)
    _check_output(output, len(inputs.files))
    model, label = _load_model(args, device)
    model.deploy(compile=args.compile)
    try:
        scale = model.check_scale(args.scale)
    except ScaleError as error:  # an ONNX model is checked only now: say which model
        raise ScaleError(error if label in str(error) else f"{label}: {error}") from None
    options = UpscaleOptions(
        scale=scale, outscale=args.outscale, tile=args.tile, tile_pad=args.tile_pad, precision=args.precision,
        alpha=args.alpha, format=args.format, suffix=args.suffix,
        existing="overwrite" if args.overwrite else "skip" if args.skip_existing else "error",
        max_pixels=args.max_pixels, quality=args.quality,
    )
    label_scale = f"x{args.outscale:g}" if args.outscale else f"x{scale}"
    jobs = distinct_jobs(plan_jobs(inputs.files, output, options, label_scale),
                         case_insensitive=is_case_insensitive(output))
    if not args.quiet:
        print(f"model: {label}, ×{scale} on {model.device}, {args.precision}", file=sys.stderr)
    with BatchProgress(len(jobs), disable=args.quiet) as progress, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = run_batch(model, jobs, options, on_done=progress.on_done, on_tile=progress.on_tile)
    for note in dict.fromkeys(str(w.message) for w in caught):
        print(f"warning: {note}", file=sys.stderr)
    for source, note in inputs.warnings + report.warnings:
        print(f"warning: {source}: {note}", file=sys.stderr)
    failures = inputs.problems + report.failed
    for source, reason in failures:
        print(f"error: {reason if str(source) in reason else f'{source}: {reason}'}", file=sys.stderr)
    if not args.quiet:
        skipped = f", {len(report.skipped)} skipped" if report.skipped else ""
        failed = f", {len(failures)} failed" if failures else ""
        print(f"upscaled {len(report.written)} image(s){skipped}{failed} in {report.seconds:.1f} s → {args.output}",
              file=sys.stderr)
    return 1 if failures else 0


def _outscale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value <= MAX_OUTSCALE:
        raise argparse.ArgumentTypeError(f"must be in (0, {MAX_OUTSCALE}], got {text}")
    return value


def register(commands: argparse._SubParsersAction) -> None:
    parser = add_command(commands, "upscale", command_upscale, help="super-resolve images, folders or globs",
                         description="Super-resolve images. Without -m/-w the best installed model is used; "
                                     "-w model.onnx (from `litesr export`) runs with --backend onnxruntime.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (recursive) or globs")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="output folder (created if needed), or a file name like out.png for one input")
    add_model_source(parser)
    add_scale(parser)
    parser.add_argument("-s", "--outscale", type=_outscale, metavar="OUTSCALE",
                        help="final scale: the network's result is resized (bicubic) to this factor "
                             "(Real-ESRGAN's -s; the network scale is --scale)")
    parser.add_argument("--tile", type=non_negative_int, default=0, metavar="N",
                        help="tile size in input pixels; 0 = automatic from free memory (default)")
    parser.add_argument("--tile-pad", type=non_negative_int, metavar="P",
                        help="tile margin (default: the model's receptive radius, seamless)")
    add_precision(parser)
    add_device(parser)
    add_threads(parser)
    add_backend(parser)
    add_compile(parser)
    parser.add_argument("--alpha", choices=["bicubic", "model"], default="bicubic",
                        help="how transparency is upscaled (default: bicubic)")
    parser.add_argument("--format", choices=["png", "jpg", "webp", "same"], default="same")
    parser.add_argument("--quality", type=positive_int, default=95, help="JPEG/WebP quality (default 95)")
    parser.add_argument("--suffix", help="added to output names (default: _x<scale>)")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    existing.add_argument("--skip-existing", action="store_true", help="leave existing outputs alone")
    parser.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS, metavar="N",
                        help=f"refuse larger inputs (decompression-bomb guard; default {DEFAULT_MAX_PIXELS:,})")
    add_quiet(parser)
