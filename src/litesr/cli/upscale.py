"""``litesr upscale``: super-resolve files, folders and globs."""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from tqdm import tqdm

from ..batch import UpscaleOptions, collect_inputs, plan_jobs, run_batch
from ..errors import LiteSRError
from ..imaging.io import DEFAULT_MAX_PIXELS
from ..inference import PRECISIONS, resolve_device
from ..model import SRModel
from .profile import load_cli_model


def _is_onnx(weights: str | None) -> bool:
    return bool(weights) and Path(weights).suffix.lower() == ".onnx"


def _load_torch_model(args: argparse.Namespace) -> tuple[SRModel, str]:
    """The model asked for, or the default one, and how to name it to the user."""
    if _is_onnx(args.weights):
        raise LiteSRError(f"{args.weights} is an ONNX model: add --backend onnxruntime")
    model, label = load_cli_model(args, resolve_device(args.device))
    return model, label if args.weights or args.model else f"{label} (default)"


def _load_model(args: argparse.Namespace) -> tuple[SRModel, str]:
    """As :func:`_load_torch_model`, re-backed by ONNX Runtime with ``--backend onnxruntime``.

    A ``.onnx`` file (from ``litesr export``) runs as it is; any other model is exported
    in memory first. Tiling and image handling stay LiteSR's own either way.
    """
    if args.backend != "onnxruntime":
        return _load_torch_model(args)
    from ..export import load_onnx, onnxruntime_model  # optional dependency, imported only when asked for

    if _is_onnx(args.weights):
        return load_onnx(args.weights, device=resolve_device(args.device)), str(args.weights)
    model, label = _load_torch_model(args)
    return onnxruntime_model(model.deploy()), f"{label} via onnxruntime"


def _tile_argument(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (automatic) or a positive tile size")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value <= 16:
        raise argparse.ArgumentTypeError("must be in (0, 16]")
    return value


def command_upscale(args: argparse.Namespace) -> int:
    inputs, problems = collect_inputs(args.inputs)
    model, label = _load_model(args)
    model.deploy()
    scale = model.net.check_scale(args.scale)
    options = UpscaleOptions(
        scale=scale, outscale=args.outscale, tile=args.tile, tile_pad=args.tile_pad, precision=args.precision,
        alpha=args.alpha, format=args.format, suffix=args.suffix,
        existing="overwrite" if args.overwrite else "skip" if args.skip_existing else "error",
        max_pixels=args.max_pixels, quality=args.quality,
    )
    label_scale = f"x{args.outscale:g}" if args.outscale else f"x{scale}"
    jobs = plan_jobs(inputs, Path(args.output), options, label_scale)
    if not args.quiet:
        print(f"model: {label}, ×{scale} on {model.device}, {args.precision}", file=sys.stderr)
    with tqdm(total=len(jobs), unit="img", disable=args.quiet or not jobs, file=sys.stderr) as bar, \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = run_batch(model, jobs, options, on_done=lambda job: bar.update(1))
    for note in dict.fromkeys(str(w.message) for w in caught):
        print(f"warning: {note}", file=sys.stderr)
    for source, note in report.warnings:
        print(f"warning: {source}: {note}", file=sys.stderr)
    failures = problems + report.failed
    for source, reason in failures:
        print(f"error: {reason if str(source) in reason else f'{source}: {reason}'}", file=sys.stderr)
    if not args.quiet:
        skipped = f", {len(report.skipped)} skipped" if report.skipped else ""
        failed = f", {len(failures)} failed" if failures else ""
        print(f"upscaled {len(report.written)} image(s){skipped}{failed} in {report.seconds:.1f} s → {args.output}",
              file=sys.stderr)
    return 1 if failures else 0


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("upscale", help="super-resolve images, folders or globs",
                                 description="Super-resolve images. Without -m/-w the best installed model is used.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (recursive) or globs")
    parser.add_argument("-o", "--output", required=True, help="output folder (or a file name for one input)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("-m", "--model", help="zoo name (see `litesr models`)")
    source.add_argument("-w", "--weights", help="a weights file (.pth/.pt/.ckpt/.safetensors)")
    parser.add_argument("--scale", type=int, help="network scale (multi-scale models; ambiguous checkpoints)")
    parser.add_argument("-s", "--outscale", type=_positive_float,
                        help="final scale: the network's result is resized (bicubic) to this factor")
    parser.add_argument("--tile", type=_tile_argument, default=0,
                        help="tile size in input pixels; 0 = automatic from free memory (default)")
    parser.add_argument("--tile-pad", type=int, help="tile margin (default: the model's receptive radius, seamless)")
    parser.add_argument("--precision", choices=list(PRECISIONS), default="fp32")
    parser.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    parser.add_argument("--backend", choices=["torch", "onnxruntime"], default="torch",
                        help="inference engine (onnxruntime: pip install 'litesr[onnx]'; runs .onnx files too)")
    parser.add_argument("--alpha", choices=["bicubic", "model"], default="bicubic",
                        help="how transparency is upscaled (default: bicubic)")
    parser.add_argument("--format", choices=["png", "jpg", "webp", "same"], default="same")
    parser.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality (default 95)")
    parser.add_argument("--suffix", help="added to output names (default: _x<scale>)")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    existing.add_argument("--skip-existing", action="store_true", help="leave existing outputs alone")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help=f"refuse larger inputs (decompression-bomb guard; default {DEFAULT_MAX_PIXELS:,})")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    parser.set_defaults(handler=command_upscale)
