"""``litesr eval``: PSNR/SSIM of a model (or bicubic) on benchmark sets, as a Markdown table.

Examples::

    litesr eval -m span-x4.official --data Set5 --data Set14 --scale 4
    litesr eval --bicubic --data B100 --scale 3 --json b100_bicubic.json
    litesr eval -w lesrcnn_x2.pth --data Set5 --scale 2 --quantize truncate --y-round

The table goes to stdout; the progress bar and a one-line protocol summary to stderr
(``--quiet`` silences both).  ``--json`` holds every per-image value and the full
protocol, ``--csv`` one row per image; both are written atomically.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from .. import __version__, load
from ..data.benchmark import BenchmarkSet, open_benchmark
from ..evaluate import (
    GRAY_MODES,
    QUANTIZATIONS,
    Bicubic,
    EvaluationError,
    Protocol,
    SetResult,
    bicubic,
    evaluate,
    model_label,
)
from ..model import SRModel
from .table import format_table

DESCRIPTION = """\
Score a model on benchmark sets with the standard SR protocol (EDSR/BasicSR): HR cropped
to a multiple of the scale, the set's MATLAB-made LR (LR_bicubic/X<s>, or made on the fly
with MATLAB-exact imresize when the set has none), SR clamped and rounded to uint8, PSNR and
SSIM on the float BT.601 Y channel with a border of <scale> pixels, averaged per set."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "eval", help="PSNR/SSIM on benchmark sets (Set5, Set14, B100 ...)", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("-m", "--model", metavar="MODEL", help="a zoo name (see `litesr models`) or a weights file")
    source.add_argument("-w", "--weights", metavar="FILE", help="a weights file (.pth/.pt/.ckpt/.safetensors)")
    source.add_argument("--bicubic", action="store_true", help="the bicubic baseline (MATLAB imresize of the LR)")
    parser.add_argument(
        "--data", metavar="DIR", action="append", required=True,
        help="a benchmark set: <Set> with HR/ (and LR_bicubic/X<s>/), or a folder of HR images; repeatable",
    )
    parser.add_argument("-s", "--scale", type=_positive_int, help="the factor (default: the model's)")
    lr = parser.add_mutually_exclusive_group()
    lr.add_argument("--lr", metavar="DIR", help="read the LR images from DIR (one --data only)")
    lr.add_argument("--make-lr", action="store_true", help="make the LR with MATLAB-exact imresize even if the set has LR files")
    channel = parser.add_mutually_exclusive_group()
    channel.add_argument("--y-channel", dest="y_channel", action="store_true", default=True,
                         help="score BT.601 Y (default)")
    channel.add_argument("--rgb", dest="y_channel", action="store_false", help="score all RGB channels")
    parser.add_argument("--y-round", action="store_true",
                        help="round Y to integers first (MATLAB rgb2ycbcr on uint8; some papers' scripts)")
    parser.add_argument("--crop-border", type=_non_negative_int, metavar="N",
                        help="pixels dropped on each side before scoring (default: the scale)")
    parser.add_argument("--quantize", choices=QUANTIZATIONS, default="round",
                        help="SR output to uint8: round (default, BasicSR) or truncate (.byte() casts)")
    parser.add_argument("--gray", choices=GRAY_MODES, default="replicate",
                        help="gray images: replicate to R=G=B like BasicSR/EDSR (default) or score their "
                             "gray levels like the MATLAB scripts")
    parser.add_argument("--save-images", metavar="DIR", help="write each SR image to DIR/<set>/<name>.png")
    parser.add_argument("--json", metavar="FILE", help="write per-image values and the protocol as JSON")
    parser.add_argument("--csv", metavar="FILE", help="write one row per image as CSV")
    parser.add_argument("--device", default="cpu", help="torch device for the model (default: cpu)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary on stderr")
    parser.set_defaults(handler=command_eval, eval_parser=parser)


# --------------------------------------------------------------------------- command


def command_eval(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.eval_parser
    if args.lr is not None and len(args.data) > 1:
        parser.error("--lr pairs with a single --data folder")
    if args.y_round and not args.y_channel:
        parser.error("--y-round applies to the Y channel, not with --rgb")
    if args.bicubic and args.scale is None:
        parser.error("--bicubic needs --scale")
    outputs = [_check_output_file(path, flag) for path, flag in ((args.json, "--json"), (args.csv, "--csv"))]

    model = _load_model(args)
    scale = args.scale if args.scale is not None else model.scale  # type: ignore[union-attr]
    if isinstance(model, SRModel) and scale not in model.scales:
        served = ", ".join(f"×{s}" for s in model.scales)
        raise EvaluationError(f"{model_label(model)} serves {served}, not ×{scale}")
    sets = [open_benchmark(data, scale, lr=args.lr, make_lr=args.make_lr) for data in args.data]
    crop_border = scale if args.crop_border is None else args.crop_border
    protocol = Protocol(scale, args.y_channel, crop_border, args.quantize, args.y_round, args.gray)
    if not args.quiet:
        print(f"{_describe_model(model)}; {protocol.describe()}", file=sys.stderr)

    results: list[SetResult] = []
    save_dirs = _save_dirs(args.save_images, sets)
    for bench, save_dir in zip(sets, save_dirs):
        results.append(evaluate(
            model, bench, scale, y_channel=args.y_channel, crop_border=crop_border, quantization=args.quantize,
            y_round=args.y_round, gray=args.gray, progress=not args.quiet, save_dir=save_dir,
        ))

    print(results_table(results))
    if outputs[0] is not None:
        _atomic_write_text(outputs[0], json.dumps(results_json(model, protocol, results), indent=2) + "\n")
    if outputs[1] is not None:
        _atomic_write_text(outputs[1], results_csv(results))
    return 0


def _load_model(args: argparse.Namespace) -> SRModel | Bicubic:
    if args.bicubic:
        return bicubic
    _check_device(args.device)
    if args.weights is not None:
        path = Path(args.weights)
        if not path.exists():
            raise EvaluationError(f"weights file {path} does not exist")
        if path.is_dir():
            raise EvaluationError(f"weights file {path} is a folder, not a file")
        return load(path, device=args.device)
    return load(args.model, device=args.device)


def _check_device(device: str) -> None:
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise EvaluationError(f"unknown device {device!r} (try cpu or cuda)") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise EvaluationError("device cuda was asked for but no CUDA GPU is available")


def _describe_model(model: SRModel | Bicubic) -> str:
    if isinstance(model, Bicubic):
        return "bicubic (MATLAB imresize)"
    scales = "/".join(f"×{s}" for s in model.scales)
    return f"{model_label(model)} ({model.arch}, {scales}, {model.num_params():,} parameters)"


def _save_dirs(root: str | None, sets: list[BenchmarkSet]) -> list[Path | None]:
    if root is None:
        return [None] * len(sets)
    seen: dict[str, int] = {}
    dirs: list[Path | None] = []
    for bench in sets:
        count = seen.get(bench.name, 0)
        seen[bench.name] = count + 1
        dirs.append(Path(root) / (bench.name if count == 0 else f"{bench.name}_{count + 1}"))
    return dirs


# --------------------------------------------------------------------------- outputs


def results_table(results: list[SetResult]) -> str:
    """The Markdown table printed by ``litesr eval``: one row per set."""
    rows = [
        [r.model, r.set_name, f"×{r.scale}", len(r.images), r.lr_origin, f"{r.psnr:.3f}", f"{r.ssim:.4f}"]
        for r in results
    ]
    return format_table(["Model", "Set", "Scale", "Images", "LR", "PSNR (dB)", "SSIM"], rows, markdown=True)


def results_json(model: SRModel | Bicubic, protocol: Protocol, results: list[SetResult]) -> dict[str, Any]:
    info: dict[str, Any] = {"label": model_label(model), "arch": model.arch, "source": model.source}
    if isinstance(model, SRModel):
        info.update(name=model.name, scales=list(model.scales), parameters=model.num_params())
    sets = []
    for result in results:
        entry = result.to_dict()
        entry.pop("protocol", None)
        entry.pop("model", None)
        sets.append(entry)
    return {
        "litesr_version": __version__,
        "model": info,
        "protocol": {
            **protocol.to_dict(),
            "lr_rule": "given LR files when the set has them (LR_bicubic/X<s>, --lr, SelfExSR *_LR), else "
                       "MATLAB imresize(modcrop(HR, s), 1/s) on uint8 (see each set's 'lr')",
        },
        "sets": sets,
    }


def results_csv(results: list[SetResult]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "set", "scale", "image", "psnr", "ssim", "height", "width", "seconds"])
    for result in results:
        for image in result.images:
            writer.writerow([
                result.model, result.set_name, result.scale, image.name, f"{image.psnr:.6f}",
                f"{image.ssim:.6f}", image.height, image.width, f"{image.seconds:.4f}",
            ])
    return buffer.getvalue()


def _check_output_file(path: str | None, flag: str) -> Path | None:
    """Fail before the (long) evaluation if an output file cannot be written where asked."""
    if path is None:
        return None
    target = Path(path)
    if target.is_dir():
        raise EvaluationError(f"{flag} {target} is a folder; give a file name")
    parent = target.parent
    if not parent.is_dir():
        raise EvaluationError(f"{flag} {target}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise EvaluationError(f"{flag} {target}: the folder {parent} is not writable")
    return target


def _atomic_write_text(target: Path, text: str) -> None:
    """Write to a temp file beside ``target``, fsync, then ``os.replace``: complete or absent."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)
        os.replace(tmp_name, target)
    except BaseException as exc:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise EvaluationError(f"cannot write {target}: {exc.strerror or exc}") from None
        raise
