"""``--precision auto``: the fastest precision this machine runs a model in, by measurement.

Whether bf16 or fp16 pays depends on the hardware *and* the network: on an AVX-512 CPU
with native bf16, SPAN ×4 runs ~1.2× faster in bf16 while SCNet-T (memory-bound 1×1
convolutions) runs slower; on an AVX2-only CPU bf16 is emulated and 10–16× slower; on an
H100, fp16 helps LESRCNN by 1.3× and slows SPAN. No table can cover every CPU, so
``auto`` measures: the one reduced precision worth trying on the device
(:func:`litesr.devices.reduced_precision_candidate`) is timed against fp32 on a small
input, interleaved, and picked only if it is at least :data:`AUTO_MIN_SPEEDUP` faster —
reduced precision costs a little PSNR, so a tie goes to fp32. Results are kept in the
user's cache (keyed by CPU, torch version, threads and network shape), so the measurement
runs once per machine and model.

An explicit ``bf16`` on a CPU that only emulates it still runs, with one warning that
gives the measured slowdown.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .cache import cache_dir
from .devices import AUTO, INT8, cpu_info, reduced_precision_candidate
from .imaging.atomic import WriteError, atomic_write
from .inference import Runner

#: A reduced precision must be at least this much faster than fp32 to be picked.
AUTO_MIN_SPEEDUP = 1.15
#: LR side of the timing input: large enough that activations leave the caches as in real
#: tiles (SCNet's gain from bf16 appears only then), small enough that the one-off
#: measurement takes about a second for these networks.
PROBE_SIDE = 192
#: Interleaved fp32/candidate rounds (after one warm-up each); the median ratio counts.
PROBE_ROUNDS = 3
#: Timing input for the explicit-bf16 warning on an emulating CPU, where every pass is slow.
WARNING_PROBE_SIDE = 64
CACHE_FILE = "precision.json"


class PrecisionWarning(UserWarning):
    """A requested precision runs, but slowly on this machine."""


@dataclass(frozen=True)
class PrecisionChoice:
    """What runs, and why: ``reason`` is shown to users (``litesr upscale``, ``info --system``)."""

    precision: str
    reason: str
    requested: str
    #: Set once per process and model for a precision that runs but is slow here.
    warning: str | None = None

    def describe(self) -> str:
        """``auto → fp32 (…)`` for a chosen precision, the name alone for an explicit one."""
        if self.requested == AUTO:
            return f"auto → {self.precision} ({self.reason})"
        return self.precision


_memory: dict[str, float] = {}
_warned: set[str] = set()


def resolve_precision(requested: str, runner: Runner, scale: int) -> PrecisionChoice:
    """Turn ``requested`` into the precision ``runner`` will run for ``scale``.

    ``auto`` is decided by :func:`choose_precision`; ``bf16`` on a CPU without native
    bf16 comes back with a :attr:`PrecisionChoice.warning` (the first time per model and
    process); everything else passes through unchanged, to be checked where it runs.
    """
    if requested == AUTO:
        return choose_precision(runner, scale)
    choice = PrecisionChoice(requested, "requested", requested)
    if requested == "bf16" and runner.backend == "torch" and runner.device.type == "cpu" \
            and not cpu_info().native_bf16:
        key = _key(runner, scale, "bf16", WARNING_PROBE_SIDE)
        if key not in _warned:
            _warned.add(key)
            speedup = _measured(key, lambda: measure_speedup(runner, scale, "bf16", side=WARNING_PROBE_SIDE,
                                                             rounds=1))
            return PrecisionChoice("bf16", "requested", requested, warning=(
                f"bf16 is emulated on this CPU ({_why_emulated()}): it measured {1 / speedup:.1f}× slower "
                f"than fp32 for this model on a {WARNING_PROBE_SIDE}×{WARNING_PROBE_SIDE} input; "
                f"--precision auto (the default) picks fp32"))
    return choice


def _why_emulated() -> str:
    info = cpu_info()
    if not (info.avx512_bf16 or info.amx):
        return f"{info.capability}, no AVX512-BF16 or AMX"
    caps = [f"PyTorch dispatch {info.capability}"] if not info.capability.startswith("AVX512") else []
    caps += [f"oneDNN capped at {info.onednn_isa_cap}"] if info.onednn_isa_cap else []
    return "the CPU has AVX512-BF16 but " + " and ".join(caps or ["it is not used"])


def warn_once(choice: PrecisionChoice) -> None:
    """Issue ``choice``'s warning as a :class:`PrecisionWarning` (for API callers)."""
    if choice.warning:
        warnings.warn(choice.warning, PrecisionWarning, stacklevel=3)


def choose_precision(runner: Runner, scale: int) -> PrecisionChoice:
    """``auto`` for ``runner``: fp32 unless the device's reduced precision measures faster.

    An ONNX Runtime model runs in the precision it was exported in; there is nothing to choose.
    """
    if runner.backend != "torch":
        exported = getattr(runner, "precision", "fp32")
        return PrecisionChoice(exported, f"the {runner.backend} model's own precision", AUTO)
    candidate = reduced_precision_candidate(runner.device)
    if candidate is None:
        return PrecisionChoice("fp32", f"bf16 would be emulated here: {_why_emulated()}", AUTO)
    key = _key(runner, scale, candidate, PROBE_SIDE)
    speedup = _measured(key, lambda: measure_speedup(runner, scale, candidate))
    return _pick(candidate, speedup)


def _pick(candidate: str, speedup: float) -> PrecisionChoice:
    if speedup >= AUTO_MIN_SPEEDUP:
        return PrecisionChoice(candidate, f"{candidate} measured {speedup:.2f}× faster than fp32 here", AUTO)
    return PrecisionChoice("fp32", f"{candidate} measured {speedup:.2f}× fp32's speed here "
                                   f"(needs ≥ {AUTO_MIN_SPEEDUP:g}×)", AUTO)


def probe_image(side: int, device: torch.device, channels: int = 3) -> torch.Tensor:
    """A smooth image-like input: on noise, SR networks leave [0, 1] and reduced precision
    can overflow where real images never do."""
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(1, channels, side // 8 + 2, side // 8 + 2, generator=generator)
    return F.interpolate(coarse, size=(side, side), mode="bicubic", align_corners=False).clamp(0, 1).to(device)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_speedup(baseline: Callable[[], object], candidate: Callable[[], object], device: torch.device,
                        rounds: int = PROBE_ROUNDS) -> float:
    """Best baseline time / best candidate time over ``rounds`` interleaved rounds (one warm-up each).

    The best of each, not a median of ratios: other work on the machine only ever adds
    time, so the fastest round is the closest to what the hardware does.
    """
    def seconds(run: Callable[[], object]) -> float:
        _synchronize(device)
        start = time.perf_counter()
        run()
        _synchronize(device)
        return time.perf_counter() - start

    seconds(baseline), seconds(candidate)
    rounds_seconds = [(seconds(baseline), seconds(candidate)) for _ in range(max(1, rounds))]
    return min(pair[0] for pair in rounds_seconds) / min(pair[1] for pair in rounds_seconds)


def measure_speedup(runner: Runner, scale: int, precision: str, *, side: int = PROBE_SIDE,
                    rounds: int = PROBE_ROUNDS) -> float:
    """How many times faster ``runner`` is in ``precision`` than in fp32, on a ``side``² input."""
    x = probe_image(side, runner.device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a reduced-precision overflow here would be reported for real later
        return interleaved_speedup(lambda: runner(x, scale, "fp32"), lambda: runner(x, scale, precision),
                                   runner.device, rounds)


# --------------------------------------------------------------------------- training


def choose_training_precision(requested: str, net: nn.Module, scale: int, device: torch.device,
                              batch: tuple[int, int] = (4, 48)) -> PrecisionChoice:
    """``precision: auto`` of a training recipe: a forward and backward pass timed per precision.

    On CUDA the candidate is bf16 (training has no loss scaler, which fp16 would need);
    on a CPU, bf16 with native support. ``batch`` is (images, LR side) of the timing batch.
    """
    if requested == "bf16" and device.type == "cpu" and not cpu_info().native_bf16:
        count, side = batch
        key = _key_for(["train", type(net).__name__, _shape_digest(net), scale, "bf16", 1, side, str(device)])
        speedup = _measured(key, lambda: _training_speedup(net, scale, device, "bf16", 1, side, rounds=1))
        return PrecisionChoice("bf16", "requested", requested, warning=(
            f"bf16 is emulated on this CPU ({_why_emulated()}): a training step measured {1 / speedup:.1f}× "
            f"slower than fp32 here; precision: auto picks fp32"))
    if requested != AUTO:
        return PrecisionChoice(requested, "requested", requested)
    if device.type == "cuda":
        candidate = "bf16" if torch.cuda.is_bf16_supported() else None
    else:
        candidate = reduced_precision_candidate(device)
    if candidate is None:
        return PrecisionChoice("fp32", f"no fast reduced precision for training on {device.type}"
                                       f"{' (' + cpu_info().capability + ', bf16 emulated)' if device.type == 'cpu' else ''}",
                               AUTO)
    count, side = batch
    key = _key_for(["train", type(net).__name__, _shape_digest(net), scale, candidate, count, side, str(device)])
    speedup = _measured(key, lambda: _training_speedup(net, scale, device, candidate, count, side))
    return _pick(candidate, speedup)


def _training_speedup(net: nn.Module, scale: int, device: torch.device, precision: str, count: int,
                      side: int, rounds: int = PROBE_ROUNDS) -> float:
    """Forward + backward of a copy of ``net`` (the real one's gradients are left alone)."""
    work = copy.deepcopy(net).to(device).train()
    x = probe_image(side, device).expand(count, -1, -1, -1).contiguous()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16

    def step(reduced: bool) -> Callable[[], object]:
        def run() -> None:
            autocast = torch.autocast(device.type, dtype=dtype) if reduced else contextlib.nullcontext()
            with autocast:
                out = work(x, scale)
            out.float().mean().backward()
            work.zero_grad(set_to_none=True)
        return run

    return interleaved_speedup(step(False), step(True), device, rounds)


# --------------------------------------------------------------------------- cache


def _shape_digest(net: nn.Module) -> str:
    shapes = [list(p.shape) for p in net.parameters()]
    return hashlib.sha256(json.dumps(shapes).encode()).hexdigest()[:16]


def _key(runner: Runner, scale: int, precision: str, side: int) -> str:
    """What decides a measurement: machine, software, threads and the network's shape (not weights)."""
    net = getattr(runner, "net", None)
    shape = [type(net).__name__, _shape_digest(net)] if isinstance(net, nn.Module) else [runner.num_params]
    return _key_for(["infer", *shape, scale, precision, side, runner.compiled, runner.threads, str(runner.device)])


def _key_for(parts: list[object]) -> str:
    info = cpu_info()
    machine = [info.name, info.capability, info.onednn_isa_cap, torch.__version__, torch.get_num_threads()]
    if any(str(part).startswith("cuda") for part in parts):
        machine.append(torch.cuda.get_device_name())
    return hashlib.sha256(json.dumps([*machine, *parts], default=str).encode()).hexdigest()[:24]


def _measured(key: str, measure: Callable[[], float]) -> float:
    """The cached speed-up for ``key``, measured (and stored) on first use."""
    if key in _memory:
        return _memory[key]
    path = cache_dir() / CACHE_FILE
    stored = _read_cache(path)
    if key not in stored:
        stored = {**_read_cache(path), key: measure()}  # re-read: another process may have added entries
        with contextlib.suppress(WriteError, OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps(stored, indent=0, sort_keys=True).encode()
            atomic_write(path, lambda handle: handle.write(text))
    _memory[key] = float(stored[key])
    return _memory[key]


def _read_cache(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {key: float(value) for key, value in data.items()
            if isinstance(value, (int, float)) and value > 0 and value == value}


def forget_measurements() -> None:
    """Drop this process's memory of measurements and warnings (tests; the disk cache stays)."""
    _memory.clear()
    _warned.clear()


__all__ = ["AUTO", "AUTO_MIN_SPEEDUP", "INT8", "PrecisionChoice", "PrecisionWarning", "choose_precision",
           "choose_training_precision", "forget_measurements", "measure_speedup", "resolve_precision", "warn_once"]
