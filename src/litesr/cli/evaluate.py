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
import sys
from pathlib import Path
from typing import Any

from .. import __version__
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
from ..imaging.atomic import atomic_write
from ..model import SRModel
from .options import (
    NOT_OUTSCALE_HINT,
    add_command,
    add_device,
    add_model_source,
    add_precision,
    add_scale,
    add_quiet,
    add_threads,
    load_cli_model,
    non_negative_int,
    prepare_runtime,
    resolve_cli_precision,
)
from .outputs import check_output_file
from .table import format_table

DESCRIPTION = """\
Score a model on benchmark sets with the standard SR protocol (EDSR/BasicSR): HR cropped
to a multiple of the scale, the set's MATLAB-made LR (LR_bicubic/X<s>, or made on the fly
with MATLAB-exact imresize when the set has none), SR clamped and rounded to uint8, PSNR and
SSIM on the float BT.601 Y channel with a border of <scale> pixels, averaged per set."""


def register(commands: argparse._SubParsersAction) -> None:
    parser = add_command(
        commands, "eval", command_eval, help="PSNR/SSIM on benchmark sets (Set5, Set14, B100 ...)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter, hints=NOT_OUTSCALE_HINT,
    )
    source = add_model_source(parser, required=True)
    source.add_argument("--bicubic", action="store_true", help="the bicubic baseline (MATLAB imresize of the LR)")
    add_scale(parser)
    parser.add_argument(
        "--data", metavar="DIR", action="append", required=True,
        help="a benchmark set: <Set> with HR/ (and LR_bicubic/X<s>/), or a folder of HR images; repeatable",
    )
    lr = parser.add_mutually_exclusive_group()
    lr.add_argument("--lr", metavar="DIR", help="read the LR images from DIR (one --data only)")
    lr.add_argument("--make-lr", action="store_true",
                    help="make the LR with MATLAB-exact imresize even if the set has LR files")
    channel = parser.add_mutually_exclusive_group()
    channel.add_argument("--y-channel", dest="y_channel", action="store_true", default=True,
                         help="score BT.601 Y (default)")
    channel.add_argument("--rgb", dest="y_channel", action="store_false", help="score all RGB channels")
    parser.add_argument("--y-round", action="store_true",
                        help="round Y to integers first (MATLAB rgb2ycbcr on uint8; some papers' scripts)")
    parser.add_argument("--crop-border", type=non_negative_int, metavar="N",
                        help="pixels dropped on each side before scoring (default: the scale)")
    parser.add_argument("--quantize", choices=QUANTIZATIONS, default="round",
                        help="SR output to uint8: round (default, BasicSR) or truncate (.byte() casts)")
    parser.add_argument("--gray", choices=GRAY_MODES, default="replicate",
                        help="gray images: replicate to R=G=B like BasicSR/EDSR (default) or score their "
                             "gray levels like the MATLAB scripts")
    parser.add_argument("--save-images", metavar="DIR", help="write each SR image to DIR/<set>/<name>.png")
    parser.add_argument("--json", metavar="FILE", help="write per-image values and the protocol as JSON")
    parser.add_argument("--csv", metavar="FILE", help="write one row per image as CSV")
    add_precision(parser, int8=False, default="fp32", why_default=", so scores reproduce published fp32 tables")
    add_device(parser)
    add_threads(parser)
    add_quiet(parser)


# --------------------------------------------------------------------------- command


def command_eval(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    if args.lr is not None and len(args.data) > 1:
        parser.error("--lr pairs with a single --data folder")
    if args.y_round and not args.y_channel:
        parser.error("--y-round applies to the Y channel, not with --rgb")
    if args.bicubic and args.scale is None:
        parser.error("--bicubic needs --scale")
    device = prepare_runtime(args)
    json_file, csv_file = (None if path is None else check_output_file(path, flag)
                           for path, flag in ((args.json, "--json"), (args.csv, "--csv")))

    model: SRModel | Bicubic = bicubic if args.bicubic else load_cli_model(args, device)[0]
    scale = args.scale if args.scale is not None else model.scale  # type: ignore[union-attr]
    if isinstance(model, SRModel) and scale not in model.scales:
        served = ", ".join(f"×{s}" for s in model.scales)
        raise EvaluationError(f"{model_label(model)} serves {served}, not ×{scale}")
    sets = [open_benchmark(data, scale, lr=args.lr, make_lr=args.make_lr) for data in args.data]
    crop_border = scale if args.crop_border is None else args.crop_border
    protocol = Protocol(scale, args.y_channel, crop_border, args.quantize, args.y_round, args.gray)
    if isinstance(model, SRModel):
        model.deploy()
        choice = resolve_cli_precision(args, model.runner, scale)
        if not args.quiet and choice.precision != "fp32":
            print(f"precision: {choice.describe()}", file=sys.stderr)
    if not args.quiet:
        print(f"{_describe_model(model)}; {protocol.describe()}", file=sys.stderr)

    results: list[SetResult] = []
    save_dirs = _save_dirs(args.save_images, sets)
    for bench, save_dir in zip(sets, save_dirs):
        results.append(evaluate(
            model, bench, scale, y_channel=args.y_channel, crop_border=crop_border, quantization=args.quantize,
            y_round=args.y_round, gray=args.gray, progress=not args.quiet, save_dir=save_dir,
            precision=args.precision,
        ))

    print(results_table(results))
    if json_file is not None:
        _write_text(json_file, json.dumps(results_json(model, protocol, results, args.precision), indent=2) + "\n")
    if csv_file is not None:
        _write_text(csv_file, results_csv(results))
    return 0


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


def results_json(model: SRModel | Bicubic, protocol: Protocol, results: list[SetResult],
                 precision: str = "fp32") -> dict[str, Any]:
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
        "precision": precision,
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


def _write_text(target: Path, text: str) -> None:
    atomic_write(target, lambda handle: handle.write(text.encode("utf-8")))
