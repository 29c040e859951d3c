"""What a network costs: parameters, MACs, activations, latency and peak memory.

MACs are counted by LiteSR itself, with forward hooks over the graph that actually runs
(the deploy form): a convolution costs ``output elements × in_channels/groups × kH × kW``
multiply-accumulates and a linear layer ``output elements × in_features``; biases,
activations, pixel shuffles and interpolations are free. That is the convention of fvcore
and of the NTIRE efficient-SR reports (the NTIRE 2024 winner, SPAN ch28 ×4, is 9.83 G MACs
at 256×256), so LiteSR's numbers can be put next to published ones. "Activations" follows
the same reports: the number of elements output by all convolutions.

This module only measures: the layer trace behind MACs and activations is
:mod:`litesr.tracing` (its names are re-exported here), :mod:`litesr.inference` decides how
a network runs, and :func:`profile_model` drives a model's own deploy path so that latency
is what users get.
"""
from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from .errors import LiteSRError
from .inference import Runner
from .model import SRModel
from .tracing import count_parameters, trace_layers, trace_shapes  # noqa: F401 (trace_layers: re-exported)
from .devices import cpu_info


def measure_latency(step: Callable[[], object], runs: int = 10, warmup: int = 2) -> list[float]:
    """Seconds per call of ``step`` after ``warmup`` untimed calls (one list entry per run)."""
    if runs < 1 or warmup < 0:
        raise LiteSRError("latency needs at least one run and a non-negative warm-up")
    for _ in range(warmup):
        step()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def current_rss() -> int | None:
    """Resident set size of this process in bytes (Linux), else ``None``."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of this process (Linux ≥ 4.0: ``clear_refs`` 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_rss() -> int:
    """High-water RSS in bytes: VmHWM where available, else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def peak_memory(step: Callable[[], object], device: torch.device) -> tuple[int, str]:
    """Peak extra memory of one call of ``step`` and what was measured.

    On CUDA: the allocator's peak above what was allocated before. On a CPU: the rise of
    the process's peak RSS over its RSS before the call; PyTorch has no CPU allocator
    statistics, and RSS is what an operating system (or a container limit) sees.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before, "CUDA allocator peak"
    before = current_rss()
    if before is None or not _reset_peak_rss():
        start = peak_rss()
        step()
        return max(peak_rss() - start, 0), "rise of the process's max RSS (lower bound)"
    step()
    return max(peak_rss() - before, 0), "peak RSS rise"


@dataclass
class ModelProfile:
    """Everything ``litesr profile`` reports; :meth:`to_dict` is its ``--json`` form."""

    model: str
    arch: str
    scale: int
    input_size: tuple[int, int]
    params_training: int
    params_deploy: int
    macs: int
    activations: int
    conv_layers: int
    backend: str
    precision: str
    compiled: bool
    device: str
    threads: int
    runs: int
    warmup: int
    latency_s: list[float]
    peak_memory_bytes: int
    peak_memory_kind: str
    cpu: str = field(default_factory=lambda: cpu_info().describe())  # with the capability: figures differ by it
    torch_version: str = torch.__version__

    @property
    def latency_median_s(self) -> float:
        return statistics.median(self.latency_s)

    @property
    def gflops_per_s(self) -> float:
        """Achieved arithmetic rate: 2 FLOPs per MAC over the median latency."""
        return 2 * self.macs / self.latency_median_s / 1e9

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(latency_median_s=self.latency_median_s, gflops_per_s=self.gflops_per_s)
        return data


def training_form_parameters(model: SRModel) -> int:
    """Trainable parameters of the network in its training form.

    SPAN trains with Conv3XC branches that deploy folds into one 3×3 conv, so the two forms
    differ; a zoo SPAN that ships only fused weights is rebuilt un-fused to count them.
    The frozen layers (LESRCNN's mean shifts, SPAN's stored ``eval_conv``) are not counted.
    """
    spec = model.spec
    if "deploy" in spec.kwargs:
        spec = type(spec)(spec.arch, {**spec.kwargs, "deploy": False})
    return count_parameters(spec.build(), trainable_only=True)


def profile_model(model: SRModel, size: tuple[int, int] = (256, 256), *, scale: int | None = None,
                  runs: int = 10, warmup: int = 2, precision: str = "fp32",
                  runner: Runner | None = None) -> ModelProfile:
    """Profile a PyTorch ``model`` as deployed (call :meth:`SRModel.deploy` first).

    Parameters, MACs and activations come from ``model.net`` (the deploy graph), so the
    model must have one; latency and peak memory from ``runner`` — by default the model's
    own, or e.g. the :class:`litesr.export.OrtNet` of its ONNX Runtime form — so they are
    what users get.
    """
    height, width = size
    if height < 1 or width < 1:
        raise LiteSRError(f"input size must be positive, got {height}×{width}")
    net = model.net
    if net is None:
        raise LiteSRError("an ONNX Runtime model has no PyTorch graph to count MACs on: profile the PyTorch "
                          "model and pass its ONNX Runtime form as runner (litesr profile --backend onnxruntime)")
    scale = model.check_scale(scale)
    runner = runner if runner is not None else model.runner
    device = runner.device
    x = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    sample = x.to(device)

    def step() -> None:
        runner(sample, scale, precision)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    with torch.inference_mode():
        # Memory first: allocators keep freed memory, so a later measurement would see none.
        memory, memory_kind = peak_memory(step, device)
        latency = measure_latency(step, runs, warmup)
    records = trace_shapes(net, size, scale)
    convs = [r for r in records if isinstance(r.module, nn.Conv2d)]
    return ModelProfile(
        model=model.name or model.source or model.arch, arch=model.arch, scale=scale, input_size=(height, width),
        params_training=training_form_parameters(model), params_deploy=count_parameters(net),
        macs=sum(r.macs for r in records), activations=sum(r.output_elements for r in convs),
        conv_layers=len(convs), backend=runner.backend, precision=precision, compiled=runner.compiled,
        device=str(device), threads=runner.threads, runs=runs, warmup=warmup, latency_s=latency,
        peak_memory_bytes=memory, peak_memory_kind=memory_kind,
    )
