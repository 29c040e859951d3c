"""``litesr profile``: parameters, MACs, activations, latency and peak memory of a model."""
from __future__ import annotations

import argparse
import json
import re

import torch

from .. import load
from ..errors import LiteSRError
from ..inference import PRECISIONS, resolve_device
from ..model import SRModel
from ..profile import ModelProfile, profile_model
from ..zoo import default_model

BACKENDS = ("torch", "onnxruntime")


def size_argument(text: str) -> tuple[int, int]:
    """``256x256`` (or ``256``) → (height, width)."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:[x×X]\s*(\d+))?\s*", text)
    if not match or int(match.group(1)) < 1 or (match.group(2) and int(match.group(2)) < 1):
        raise argparse.ArgumentTypeError(f"expected HxW such as 256x256, got {text!r}")
    height = int(match.group(1))
    return height, int(match.group(2) or height)


def load_cli_model(args: argparse.Namespace, device: torch.device | None = None) -> tuple[SRModel, str]:
    """The model named by ``-m``/``-w`` (or the default one) and its label."""
    device = device or torch.device("cpu")
    if args.weights:
        return load(args.weights, device=device, scale=args.scale), str(args.weights)
    name = args.model or default_model().name
    model = load(name, device=device, scale=args.scale)
    return model, model.name or name


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
    if args.threads is not None:
        if args.threads < 1:
            raise LiteSRError("--threads must be at least 1")
        torch.set_num_threads(args.threads)
    if args.runs < 1 or args.warmup < 0:
        raise LiteSRError("--runs must be at least 1 and --warmup at least 0")
    device = resolve_device(args.device)
    model, _ = load_cli_model(args, device)
    model.deploy(channels_last=not args.no_channels_last, compile=args.compile)
    runner = None
    if args.backend == "onnxruntime":
        from ..export import onnxruntime_model  # optional dependency, imported only when asked for

        runner = onnxruntime_model(model).runner
    result = profile_model(model, args.size, scale=args.scale, runs=args.runs, warmup=args.warmup,
                           precision=args.precision, runner=runner)
    print(json.dumps(result.to_dict(), indent=2) if args.json else describe(result))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("profile", help="parameters, MACs, activations, latency and peak memory",
                                 description="Profile a model's deploy path on a random input.")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("-m", "--model", help="zoo name (see `litesr models`); default: the default model")
    source.add_argument("-w", "--weights", help="a weights file (.pth/.pt/.ckpt/.safetensors)")
    parser.add_argument("--size", type=size_argument, default=(256, 256), metavar="HxW",
                        help="input (LR) size; default 256x256, the NTIRE efficient-SR convention")
    parser.add_argument("--scale", type=int, help="network scale (multi-scale models; ambiguous checkpoints)")
    parser.add_argument("--precision", choices=list(PRECISIONS), default="fp32")
    parser.add_argument("--backend", choices=BACKENDS, default="torch")
    parser.add_argument("--compile", action="store_true", help="torch.compile the deploy form (compiles first)")
    parser.add_argument("--no-channels-last", action="store_true", help="run NCHW instead of channels-last")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--threads", type=int, help="intra-op threads (default: PyTorch's choice)")
    parser.add_argument("--runs", type=int, default=10, help="timed runs (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed warm-up runs (default 2)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(handler=command_profile)
