"""``litesr info`` and ``litesr models``: what a weights file is, and what the zoo holds."""
from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import torch

from .. import load
from ..devices import AUTO, cpu_info, reduced_precision_candidate
from ..precision import AUTO_MIN_SPEEDUP, resolve_precision
from ..errors import ModelNotFoundError
from ..zoo import ZOO, ModelCard, resolve
from .options import NOT_OUTSCALE_HINT, add_command, add_device, add_scale, add_threads, prepare_runtime
from .table import format_table


def command_info(args: argparse.Namespace) -> int:
    if args.system:
        return _system_info(args)
    if args.weights is None:
        args.parser.error("name a weights file or zoo model (or use --system)")
    model = load(args.weights, scale=args.scale)
    trainable = sum(p.numel() for p in model.net.parameters() if p.requires_grad)
    print(f"file:         {args.weights}")
    print(f"architecture: {model.arch} ({'deploy' if model.net.deployed else 'training'} form)")
    for key, value in model.spec.kwargs.items():
        print(f"  {key}: {value}")
    print(f"scale:        {', '.join(f'×{s}' for s in model.scales)}")
    print(f"parameters:   {model.num_params():,} ({trainable:,} trainable)")
    card = _card_for(args.weights)
    if card is not None:
        _print_card(card)
    return 0


def _system_info(args: argparse.Namespace) -> int:
    """The machine as LiteSR sees it, and what ``--precision auto`` picks (for a model, measured)."""
    device = prepare_runtime(args)
    cpu = cpu_info()
    print(f"cpu:          {cpu.describe()}")
    print(f"threads:      {torch.get_num_threads()} (PyTorch intra-op)")
    print(f"torch:        {torch.__version__}")
    cuda = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())) or "none"
    print(f"cuda:         {cuda}")
    ort = _onnxruntime_version()
    print(f"onnxruntime:  {ort or 'not installed (int8 and --backend onnxruntime need litesr[onnx])'}")
    print(f"device:       {device}")
    candidate = reduced_precision_candidate(device)
    if candidate is None:
        rule = "fp32 (no reduced precision is fast here)"
    else:
        rule = f"{candidate} where it measures ≥ {AUTO_MIN_SPEEDUP:g}× faster than fp32 for the model, else fp32"
    print(f"auto picks:   {rule}")
    if args.weights is not None:
        model = load(args.weights, scale=args.scale, device=device).deploy()
        scale = model.check_scale(args.scale)
        choice = resolve_precision(AUTO, model.runner, scale)
        print(f"  {model.name or args.weights} ×{scale}: {choice.describe()}")
    return 0


def _onnxruntime_version() -> str | None:
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    import onnxruntime

    return f"{onnxruntime.__version__} (int8 on this CPU: {'VNNI' if cpu_info().vnni else 'no VNNI, slower'})"


def _card_for(name: str) -> ModelCard | None:
    """The zoo card of a model named (not given as a file), else None."""
    if Path(name).exists():
        return None
    try:
        return resolve(name)
    except ModelNotFoundError:
        return None


def _print_card(card: ModelCard) -> None:
    """The card's provenance: where the weights come from and what they measure."""
    print(f"zoo card:     {card.name}")
    rows = [("source", card.source), ("licence", card.license), ("training data", card.training_data),
            ("Set5 PSNR-Y", f"{card.set5_psnr:.3f} dB" if card.set5_psnr is not None else None)]
    rows += [(key, value) for key, value in card.extra.items() if key not in ("metrics", "kwargs")]
    for key, value in rows:
        if value:
            print(f"  {key}: {value}")
    if "metrics" in card.extra:
        for bench, result in json.loads(card.extra["metrics"]).items():
            print(f"  {bench}: {result['psnr']:.3f} dB / SSIM {result['ssim']:.4f}")


def command_models(args: argparse.Namespace) -> int:
    rows = []
    for name, card in ZOO.items():
        installed = card.installed()
        if args.installed and not installed:
            continue
        scales = "/".join(f"×{s}" for s in card.spec.build().scales)
        psnr = f"{card.set5_psnr:.3f}" if card.set5_psnr is not None else "—"
        rows.append([name, card.spec.arch, scales, psnr, "yes" if installed else "no", card.license])
    print(format_table(["model", "arch", "scale", "Set5 PSNR-Y", "installed", "licence"], rows))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    info = add_command(commands, "info", command_info, help="detect and describe the model in a weights file",
                       hints=NOT_OUTSCALE_HINT)
    info.add_argument("weights", metavar="FILE|MODEL", nargs="?",
                      help="a .pth/.pt/.ckpt/.safetensors file, or a zoo name")
    info.add_argument("--system", action="store_true",
                      help="describe this machine (CPU capability, native bf16) and what --precision auto picks; "
                           "with a model, measure it")
    add_scale(info)
    add_device(info)
    add_threads(info)

    models = add_command(commands, "models", command_models, help="list the model zoo")
    models.add_argument("--installed", action="store_true", help="only models whose weights are present")
