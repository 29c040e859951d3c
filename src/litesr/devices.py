"""Devices and numeric precisions: the one place that turns a user's words into torch objects.

Every command and API entry point resolves ``--device``/``device=`` and ``--precision``
through here, so ``auto`` means the same thing everywhere and a missing GPU or an
unsupported precision is reported with one message, before any work starts.
"""
from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass

import torch

from .errors import LiteSRError

#: Precision names users type → the dtype the network runs in.
PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
#: Chosen per device and model by measurement (:mod:`litesr.precision`): the CLI's default.
AUTO = "auto"
#: Quantized weights and activations, run by ONNX Runtime (:mod:`litesr.quantize`).
INT8 = "int8"
#: Everything ``--precision`` accepts.
PRECISION_CHOICES: tuple[str, ...] = (AUTO, *PRECISIONS, INT8)
#: oneDNN's ISA cap (``ONEDNN_MAX_CPU_ISA``) values that still include bf16 instructions.
_ONEDNN_BF16_ISAS = ("BF16", "AMX", "FP16", "AVX10", "ALL", "DEFAULT")
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
    """The dtype for ``precision`` on ``device``, refusing combinations that cannot run.

    ``int8`` answers float32, the dtype of the images an int8 engine reads and writes;
    ``auto`` must have been resolved (:func:`litesr.precision.resolve_precision`) first.
    """
    if precision == INT8:
        if device.type != "cpu":
            raise DeviceError("int8 runs on the CPU through ONNX Runtime; use --device cpu (or fp16 on a GPU)")
        return torch.float32
    if precision not in PRECISIONS:
        raise DeviceError(f"unknown precision {precision!r} (use {', '.join(PRECISION_CHOICES)})")
    if precision == "fp16" and device.type == "cpu":
        raise DeviceError("fp16 is for CUDA GPUs; on a CPU use bf16 (or fp32)")
    return PRECISIONS[precision]


@dataclass(frozen=True)
class CpuInfo:
    """What this CPU offers the kernels PyTorch will actually dispatch to.

    ``capability`` is PyTorch's dispatch level (``torch.backends.cpu.get_cpu_capability()``,
    lowered by ``ATEN_CPU_CAPABILITY``); ``native_bf16`` is true only where bf16 convolutions
    run on bf16 hardware (AVX512-BF16 or AMX) *and* neither PyTorch's dispatch nor oneDNN's
    ``ONEDNN_MAX_CPU_ISA`` is capped below it. Elsewhere bf16 is emulated in fp32 and is
    12–16× slower than fp32, which is why ``auto`` never picks it there.
    """

    name: str
    capability: str
    avx512_bf16: bool
    amx: bool
    vnni: bool
    onednn_isa_cap: str | None
    native_bf16: bool

    def describe(self) -> str:
        """One line: the CPU, its dispatch level and whether bf16 is native."""
        features = [flag for flag, present in (("AVX512-BF16", self.avx512_bf16), ("AMX", self.amx),
                                               ("VNNI", self.vnni)) if present]
        cap = f", oneDNN capped at {self.onednn_isa_cap}" if self.onednn_isa_cap else ""
        bf16 = "native bf16" if self.native_bf16 else "bf16 emulated (slow)"
        return f"{self.name}: {self.capability}{' + ' + ' + '.join(features) if features else ''}{cap}; {bf16}"


def _cpu_flag(name: str) -> bool:
    """A private ``torch.cpu._is_*_supported`` probe, False where this torch lacks it."""
    probe = getattr(torch.cpu, f"_is_{name}_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except RuntimeError:
        return False


def cpu_name() -> str:
    """The CPU model as the OS reports it (``/proc/cpuinfo`` on Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


@functools.cache
def cpu_info() -> CpuInfo:
    """This process's :class:`CpuInfo` (environment caps are read once, at first use)."""
    capability = torch.backends.cpu.get_cpu_capability()
    avx512_bf16, amx = _cpu_flag("avx512_bf16"), _cpu_flag("amx_tile")
    isa_cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or None
    isa_allows = isa_cap is None or any(token in isa_cap.upper() for token in _ONEDNN_BF16_ISAS)
    native = (avx512_bf16 or amx) and capability.startswith("AVX512") and isa_allows
    return CpuInfo(cpu_name(), capability, avx512_bf16, amx, _cpu_flag("vnni"), isa_cap, native)


def reduced_precision_candidate(device: torch.device) -> str | None:
    """The reduced precision worth measuring against fp32 on ``device``, if any.

    CUDA: fp16 (tensor cores, and on the H100 in BENCHMARKS.md it lost nothing on Set5
    where bf16 lost 0.03 dB). CPU: bf16 only with native support; emulated bf16 is never
    faster, so measuring it would only waste the user's time.
    """
    if device.type == "cuda":
        return "fp16"
    if device.type == "cpu" and cpu_info().native_bf16:
        return "bf16"
    return None
