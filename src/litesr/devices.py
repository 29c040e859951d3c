"""Devices and numeric precisions: the one place that turns a user's words into torch objects.

Every command and API entry point resolves ``--device``/``device=`` and ``--precision``
through here, so ``auto`` means the same thing everywhere and a missing GPU or an
unsupported precision is reported with one message, before any work starts.
"""
from __future__ import annotations

import torch

from .errors import LiteSRError

#: Precision names users type → the dtype the network runs in.
PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
#: Device names accepted on the command line (plus ``cuda:N``).
DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda")


class DeviceError(LiteSRError):
    """A device or precision that this machine cannot provide."""


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without it is a clear error."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} was requested but PyTorch sees no CUDA GPU (use --device cpu or auto)")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type not in ("cpu", "cuda"):
        raise DeviceError(f"unsupported device {name!r} (use auto, cpu, cuda or cuda:N)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise DeviceError(f"device {name!r} does not exist: PyTorch sees {torch.cuda.device_count()} CUDA GPU(s)")
    return device


def check_precision(precision: str, device: torch.device) -> torch.dtype:
    """The dtype for ``precision`` on ``device``, refusing combinations that cannot run."""
    if precision not in PRECISIONS:
        raise DeviceError(f"unknown precision {precision!r} (use {', '.join(PRECISIONS)})")
    if precision == "fp16" and device.type == "cpu":
        raise DeviceError("fp16 is for CUDA GPUs; on a CPU use bf16 (or fp32)")
    return PRECISIONS[precision]
