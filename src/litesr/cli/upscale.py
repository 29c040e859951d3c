"""``litesr upscale``: super-resolve files, folders and globs, in one process or under torchrun.

The same code runs alone and as each of ``torchrun``'s processes (:mod:`litesr.sharding`):
rank 0 lists and plans, every rank upscales its share, rank 0 reports for all. A re-run of
the same command skips what the run manifest (:mod:`litesr.manifest`) says is done.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..batch import (
    DEFAULT_IO_WORKERS,
    Inputs,
    Job,
    UpscaleOptions,
    collect_inputs,
    distinct_jobs,
    is_case_insensitive,
    output_is_file,
    plan_jobs,
    run_batch,
)
from ..devices import AUTO, INT8
from ..errors import CheckpointError, ScaleError
from ..imaging.io import DEFAULT_MAX_PIXELS
from ..manifest import RunManifest, settings_fingerprint
from ..model import MAX_OUTSCALE, SRModel
from ..quantize import Calibration, int8_model
from ..sharding import RankFailed, Ranks, join_ranks, shard
from ..video.cli import add_video_arguments, video_options_from_args
from .options import (
    add_backend,
    add_calibration,
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
    resolve_cli_precision,
)
from .outputs import check_output_file, check_output_folder
from .progress import BatchProgress


#: Same-size images per forward pass by default: on small images one forward over 8 ran
#: 1.3-1.9x faster than 8 single ones (SCNet, SPAN, 128x128, CPU), and each image's result
#: is the same as alone.
DEFAULT_BATCH = 8


def _is_onnx(weights: str | None) -> bool:
    return weights is not None and Path(weights).suffix.lower() == ".onnx"


def _load_model(args: argparse.Namespace, device: torch.device) -> tuple[SRModel, str]:
    """The model asked for (or the default one), and how to name it.

    With ``--backend onnxruntime`` a ``.onnx`` file (from ``litesr export``) runs as it is
    and any other model is exported in memory first; tiling and image handling stay
    LiteSR's own either way. ``--precision int8`` quantizes the model once (cached,
    :mod:`litesr.quantize`) and runs it with ONNX Runtime; an int8 ``.onnx`` runs as it is.
    """
    int8 = args.precision == INT8
    if args.calibration is not None and (not int8 or _is_onnx(args.weights)):
        args.parser.error("--calibration applies to --precision int8 with a model or weights file "
                          "(an .onnx file was calibrated when it was exported)")
    if _is_onnx(args.weights):
        if args.backend != "onnxruntime":
            raise CheckpointError(f"{args.weights} is an ONNX model: add --backend onnxruntime")
        from ..export import load_onnx  # optional dependency, imported only when asked for

        model = load_onnx(args.weights, device=device)
        _check_onnx_precision(args, model)
        return model, str(args.weights)
    model, label = load_cli_model(args, device)
    if int8:
        def announce(calibration: Calibration) -> None:
            if not args.quiet:
                print(f"quantizing {label} to int8 on {calibration.describe()} (once: the graph is cached) …",
                      file=sys.stderr, flush=True)

        return (int8_model(model, args.calibration, scale=args.scale, on_quantize=announce),
                f"{label}, int8 via onnxruntime")
    if args.backend != "onnxruntime":
        return model, label
    from ..export import onnxruntime_model

    return onnxruntime_model(model), f"{label} via onnxruntime"


def _check_onnx_precision(args: argparse.Namespace, model: SRModel) -> None:
    """An int8 file runs only as int8 (which ``auto`` resolves to), and ``int8`` needs an int8 file."""
    exported = getattr(model.runner, "precision", None)
    if exported == INT8 and args.precision not in (INT8, AUTO):
        raise CheckpointError(f"{args.weights} is an int8 ONNX model: use --precision int8")
    elif exported != INT8 and args.precision == INT8:
        raise CheckpointError(f"{args.weights} is a {exported} ONNX model: export an int8 one "
                              "(`litesr export --int8`) or give the weights file")


def _check_output(output: Path, input_count: int) -> None:
    """``-o`` must be a writable file name (one input) or folder, before any model is loaded."""
    if output_is_file(output, input_count):
        check_output_file(output, "-o", make_folders=True)
    else:
        hint = ("; several inputs need an output folder" if input_count > 1
                else "; name a single output like an image (out.png) or give a folder")
        check_output_folder(output, "-o", hint)


@dataclass
class _Summary:
    """What one rank reports at the end; rank 0 adds up every rank's."""

    written: int = 0
    skipped: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    warnings: list[tuple[Path, str]] = field(default_factory=list)
    python_warnings: list[str] = field(default_factory=list)


@dataclass
class _Plan:
    """What rank 0 found and decided before any work: the jobs left and what was noted."""

    jobs: list[Job]
    total: int
    resumed: int
    problems: list[tuple[Path, str]]
    warnings: list[tuple[Path, str]]
    manifest: RunManifest | None
    run_id: str


def command_upscale(args: argparse.Namespace) -> int:
    ranks = join_ranks()
    try:
        return _upscale(args, ranks)
    except RankFailed:  # rank 0 has said why
        return 1
    finally:
        ranks.close()


def _upscale(args: argparse.Namespace, ranks: Ranks) -> int:
    """Every rank runs this; rank 0 plans, prints and shows the one progress bar."""
    output = Path(args.output)
    video = video_options_from_args(args)  # a bad segment or encoder option fails before the model loads
    inputs = Inputs([], [], [])
    with ranks.together():
        if ranks.is_main:
            inputs = collect_inputs(args.inputs)
            _check_output(output, len(inputs.files))
        model, label, scale = _prepare_model(args, ranks)
    # Rank 0 measures for ``auto`` and every rank runs its choice: outputs must not depend on the rank.
    precision = ranks.from_main(lambda: [resolve_cli_precision(args, model.runner, scale)] * ranks.world_size)
    args.precision = precision.precision
    options = UpscaleOptions(
        scale=scale, outscale=args.outscale, tile=args.tile, tile_pad=args.tile_pad, precision=args.precision,
        alpha=args.alpha, format=args.format, suffix=args.suffix,
        existing="overwrite" if args.overwrite else "skip" if args.skip_existing else "error",
        max_pixels=args.max_pixels, quality=args.quality, video=video,
    )
    def plan_and_share() -> list[_Plan]:
        """Rank 0 alone plans (an error there is reported once and ends every rank)."""
        plan = _plan(args, inputs, output, options, _settings(args, label, options))
        return [dataclasses.replace(plan, jobs=share) for share in shard(plan.jobs, ranks.world_size)]

    shares = ranks.from_main(plan_and_share)
    quiet = args.quiet or not ranks.is_main
    if not quiet:
        where = f" on {ranks.world_size} processes" if ranks.world_size > 1 else ""
        print(f"model: {label}, ×{scale} on {model.device}{where}, {precision.describe()}", file=sys.stderr)
    journal = None if shares.manifest is None else shares.manifest.journal(f"{shares.run_id}-rank{ranks.rank:05d}")
    start = time.perf_counter()
    with BatchProgress(shares.total, disable=quiet) as progress, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            report = run_batch(model, shares.jobs, options, on_done=lambda job: progress.set_finished(ranks.count_done()),
                               on_tile=progress.on_tile, journal=journal, io_workers=args.io_workers,
                               batch_size=args.batch)
        finally:
            if journal is not None:
                journal.close()
        ranks.wait_for_all(progress.set_finished)
    seconds = time.perf_counter() - start
    mine = _Summary(len(report.written), len(report.skipped), report.failed, report.warnings,
                    list(dict.fromkeys(str(w.message) for w in caught)))
    summaries = ranks.all_gather(mine)
    if not ranks.is_main:
        return 1 if any(summary.failed for summary in summaries) or shares.problems else 0
    return _report(args, shares, summaries, seconds)


def _prepare_model(args: argparse.Namespace, ranks: Ranks) -> tuple[SRModel, str, int]:
    """This rank's device and threads, the model deployed on it, and the scale it will run."""
    if args.threads is None and ranks.cpu_threads() is not None:
        args.threads = ranks.cpu_threads()
    device = ranks.device(prepare_runtime(args), args.device)
    model, label = _load_model(args, device)
    model.deploy(compile=args.compile)
    try:
        scale = model.check_scale(args.scale)
    except ScaleError as error:  # an ONNX model is checked only now: say which model
        raise ScaleError(error if label in str(error) else f"{label}: {error}") from None
    return model, label, scale


def _settings(args: argparse.Namespace, label: str, options: UpscaleOptions) -> str:
    """The fingerprint of everything that decides an output's bytes (see :mod:`litesr.manifest`)."""
    weights = Path(args.weights) if args.weights else None
    identity = (weights.stat().st_size, weights.stat().st_mtime_ns) if weights and weights.is_file() else None
    return settings_fingerprint({
        "model": label, "weights": identity, "backend": args.backend, "scale": options.scale,
        "outscale": options.outscale, "tile_pad": options.tile_pad, "precision": options.precision,
        "alpha": options.alpha, "format": options.format, "quality": options.quality,
        "video": repr(dataclasses.replace(options.video, replace=True))})


def _plan(args: argparse.Namespace, inputs: Inputs, output: Path, options: UpscaleOptions, settings: str) -> _Plan:
    """The jobs left to do (rank 0 only): finished ones, by the run manifest, are left out.

    A single named output file (``-o out.png``) keeps no manifest: nothing to resume.
    """
    label_scale = f"x{options.outscale:g}" if options.outscale else f"x{options.scale}"
    jobs = distinct_jobs(plan_jobs(inputs.files, output, options, label_scale),
                         case_insensitive=is_case_insensitive(output))
    manifest = None if output_is_file(output, len(inputs.files)) else RunManifest(output, settings)
    finished = manifest.finished(jobs) if manifest is not None and not args.no_resume else set()
    todo = [job for job in jobs if job not in finished]
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    return _Plan(todo, len(todo), len(finished), inputs.problems, inputs.warnings, manifest, run_id)


def _report(args: argparse.Namespace, plan: _Plan, summaries: list[_Summary], seconds: float) -> int:
    """Rank 0's account of the whole run: every rank's warnings and failures once, then the totals."""
    for note in dict.fromkeys(note for summary in summaries for note in summary.python_warnings):
        print(f"warning: {note}", file=sys.stderr)
    for source, note in plan.warnings + [item for summary in summaries for item in summary.warnings]:
        print(f"warning: {source}: {note}", file=sys.stderr)
    failures = plan.problems + [item for summary in summaries for item in summary.failed]
    for source, reason in failures:
        print(f"error: {reason if str(source) in reason else f'{source}: {reason}'}", file=sys.stderr)
    if not args.quiet:
        written = sum(summary.written for summary in summaries)
        skipped = sum(summary.skipped for summary in summaries)
        resumed = f", {plan.resumed} already done (run manifest)" if plan.resumed else ""
        skipped_text = f", {skipped} skipped" if skipped else ""
        failed = f", {len(failures)} failed" if failures else ""
        print(f"upscaled {written} file(s){resumed}{skipped_text}{failed} in {seconds:.1f} s → {args.output}",
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
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image or video files, folders (recursive) or globs")
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
    add_calibration(parser)
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
    parser.add_argument("--no-resume", action="store_true",
                        help="ignore the run manifest in OUT/.litesr-manifest: treat every output as not done")
    parser.add_argument("--batch", type=positive_int, default=DEFAULT_BATCH, metavar="N",
                        help=f"same-size small images run N to a forward pass (default {DEFAULT_BATCH}; 1: one by one)")
    parser.add_argument("--io-workers", type=non_negative_int, default=DEFAULT_IO_WORKERS, metavar="N",
                        help=f"threads decoding and encoding while the network runs (default {DEFAULT_IO_WORKERS}; "
                             "0: one thing at a time)")
    add_video_arguments(parser)
    add_quiet(parser)
