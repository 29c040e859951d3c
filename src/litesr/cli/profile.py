"""``litesr profile``: parameters, MACs, activations, latency and peak memory of a model."""
from __future__ import annotations

import argparse
import json

from ..errors import LiteSRError
from ..profile import ModelProfile, profile_model
from .options import (
    NOT_OUTSCALE_HINT,
    add_backend,
    add_command,
    add_compile,
    add_device,
    add_model_source,
    add_precision,
    add_scale,
    add_threads,
    load_cli_model,
    prepare_runtime,
    resolve_cli_precision,
    size_argument,
)

#: ``size_argument`` lives in .options; it stays importable from here, where it began.
__all__ = ["command_profile", "describe", "register", "size_argument"]


def _mega(count: float) -> str:
    return f"{count / 1e6:.3f} M"


def describe(profile: ModelProfile) -> str:
    """The human-readable report."""
    height, width = profile.input_size
    latency = profile.latency_median_s * 1e3
    spread = f"{min(profile.latency_s) * 1e3:.1f}–{max(profile.latency_s) * 1e3:.1f}"
    lines = [
        f"model:        {profile.model} ({profile.arch}, ×{profile.scale})",
        f"input:        {height}×{width} → {height * profile.scale}×{width * profile.scale}",
        f"parameters:   {profile.params_training:,} (training form, trainable) / "
        f"{profile.params_deploy:,} (deploy form, all)",
        f"MACs:         {profile.macs / 1e9:.3f} G (deploy graph, {profile.conv_layers} convolutions)",
        f"activations:  {_mega(profile.activations)} (elements output by convolutions)",
        f"latency:      {latency:.1f} ms median of {profile.runs} (range {spread} ms) after {profile.warmup} warm-up; "
        f"{profile.backend}, {profile.precision}{', compiled' if profile.compiled else ''}, "
        f"{profile.threads} thread(s) on {profile.device}",
        f"throughput:   {profile.gflops_per_s:.1f} GFLOP/s (2 FLOPs per MAC)",
        f"peak memory:  {profile.peak_memory_bytes / 2**20:.1f} MiB ({profile.peak_memory_kind}, first call)",
        f"machine:      {profile.cpu}, torch {profile.torch_version}",
    ]
    return "\n".join(lines)


def command_profile(args: argparse.Namespace) -> int:
    if args.runs < 1 or args.warmup < 0:
        raise LiteSRError("--runs must be at least 1 and --warmup at least 0")
    device = prepare_runtime(args)
    model, _ = load_cli_model(args, device)
    model.deploy(channels_last=not args.no_channels_last, compile=args.compile)
    runner = None
    if args.backend == "onnxruntime":
        from ..export import onnxruntime_model  # optional dependency, imported only when asked for

        runner = onnxruntime_model(model).runner
    choice = resolve_cli_precision(args, runner or model.runner, model.check_scale(args.scale))
    result = profile_model(model, args.size, scale=args.scale, runs=args.runs, warmup=args.warmup,
                           precision=args.precision, runner=runner)
    if args.json:
        print(json.dumps({**result.to_dict(), "precision_choice": choice.describe()}, indent=2))
    else:
        print(describe(result) + f"\nprecision:    {choice.describe()}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    parser = add_command(commands, "profile", command_profile, hints=NOT_OUTSCALE_HINT,
                         help="parameters, MACs, activations, latency and peak memory",
                         description="Profile a model's deploy path on a random input.")
    add_model_source(parser)
    add_scale(parser)
    parser.add_argument("--size", type=size_argument, default=(256, 256), metavar="HxW",
                        help="input (LR) size; default 256x256, the NTIRE efficient-SR convention")
    add_precision(parser, int8=False)
    add_backend(parser)
    add_compile(parser)
    parser.add_argument("--no-channels-last", action="store_true", help="run NCHW instead of channels-last")
    add_device(parser)
    add_threads(parser)
    parser.add_argument("--runs", type=int, default=10, help="timed runs (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed warm-up runs (default 2)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
