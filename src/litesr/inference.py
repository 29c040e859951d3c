"""Running a network over an image of any size: deploy form, device, precision and tiling.

What runs is a :class:`Runner`: a :class:`DeployedNet` (a PyTorch network in its
inference form: channels-last, optionally compiled, with a per-model reduced-precision
plan) or an ONNX Runtime session (:class:`litesr.export.OrtNet`). Seamless tiling
(:mod:`litesr.tiling`), automatic tile sizes and progress are written once, for both:
:func:`upscale_tensor` for float tensors here, :mod:`litesr.image_upscale` for integer
image arrays.
"""
from __future__ import annotations

import copy
import ctypes
import math
import os
import sys
import warnings
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from .archs.base import SRNet
from .devices import check_precision
from .tiling import Tile, check_tiling, plan_tiles, run_tiles
from .tracing import LayerRecord, count_parameters, network_device, trace_layers

#: Automatic tile sides (input pixels): the largest multiple of the step, within these
#: bounds, whose window fits the budget; fine steps matter because a window's margins
#: (twice the receptive radius) are a large share of the small windows wide networks get.
AUTO_TILE_MIN, AUTO_TILE_MAX, AUTO_TILE_STEP = 64, 1024, 16
#: Share of the free memory one tile's working memory may take, and a hard cap, so
#: automatic tiling leaves room for the output image and for other programs; the cap is
#: what keeps a run within its output's integer size plus 1 GiB (interpreter and PyTorch
#: included).
AUTO_TILE_MEMORY_SHARE = 0.25
AUTO_TILE_MEMORY_CAP = 384 << 20
#: Bytes per *output* pixel of a tile beyond the network's activations: the window's
#: float32 RGB result (12) and its conversion to integers (a NaN-free copy, a rounded copy,
#: int32 values and the integer result: ~40), rounded up.
TILE_OUTPUT_BYTES_PER_PIXEL = 64
#: Side of the small input traced to learn a network's layer order and widths.
PROBE_SIDE = 16
#: Free memory glibc may keep at the top of its heap once :func:`keep_freed_host_memory`
#: applies: the largest value ``mallopt`` takes (a C int), above any one forward's peak.
HOST_TRIM_THRESHOLD = 2**31 - 1
#: Recompile budget ensured when a deploy form is compiled (dynamo's default is 8).
COMPILE_RECOMPILE_LIMIT = 64
#: Live tensors assumed per layer on top of its input and output (residuals, concatenations).
ACTIVATION_HEADROOM = 2


class PrecisionFallbackWarning(UserWarning):
    """A reduced-precision pass produced NaN/inf and was redone in fp32."""


@runtime_checkable
class Runner(Protocol):
    """What :func:`upscale_tensor` runs: one call per tile, float32 NCHW in and out.

    ``backend`` names the engine (``torch``, ``onnxruntime``), ``threads`` the intra-op
    threads it uses, ``compiled`` whether ``torch.compile`` built it. ``scales``,
    ``check_scale`` and ``num_params`` describe what it serves, so a model needs no
    PyTorch network to answer them (an ONNX Runtime model has none).
    """

    scales: tuple[int, ...]
    backend: str
    compiled: bool

    @property
    def receptive_radius(self) -> int: ...

    @property
    def device(self) -> torch.device: ...

    @property
    def threads(self) -> int: ...

    @property
    def num_params(self) -> int: ...

    def check_scale(self, scale: int | None) -> int: ...

    def activation_bytes_per_pixel(self, scale: int) -> int: ...

    def __call__(self, x: torch.Tensor, scale: int, precision: str = "fp32") -> torch.Tensor: ...


def available_memory(device: torch.device) -> int:
    """Bytes free for new allocations on ``device``.

    On a CPU: the kernel's estimate of memory available without swapping (``MemAvailable``,
    which counts reclaimable page cache, unlike the free-page count), lowered to what a
    cgroup v2 memory limit (a container) leaves, where there is one.
    """
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    available = _meminfo_available()
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            available = 4 << 30
    limit = _cgroup_memory_left()
    return available if limit is None else min(available, limit)


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_memory_left() -> int | None:
    """``memory.max − memory.current`` of this process's cgroup (v2), or ``None`` without a limit."""
    try:
        with open("/sys/fs/cgroup/memory.max") as handle:
            limit = handle.read().strip()
        with open("/sys/fs/cgroup/memory.current") as handle:
            current = int(handle.read().strip())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(int(limit) - current, 0)


def _probe(net: nn.Module, scale: int, channels: int = 3) -> list[LayerRecord]:
    """Trace ``net`` on a small input: its leaf layers in execution order."""
    x = torch.zeros(1, channels, PROBE_SIDE, PROBE_SIDE, device=network_device(net))
    return trace_layers(net, x, scale)


def activation_bytes_per_pixel(net: nn.Module, scale: int) -> int:
    """A generous estimate of peak activation bytes (fp32) per input pixel.

    The larger of two bounds. By width: about 16 feature maps of the first convolution's
    width alive at the input resolution (SPAN's 4C concatenation, Conv3XC's 2C inner width,
    residuals) plus the output-resolution tensors. Measured: the widest layer of a trace on
    a small input (input + output elements per input pixel — SCNet and LESRCNN keep 64
    channels at the *output* resolution, 16× the input pixels at ×4, which the width bound
    misses) times a headroom for the tensors alive beside it.
    """
    records = _probe(net, scale)
    first_conv = next((r.module for r in records if isinstance(r.module, nn.Conv2d)), None)
    width = first_conv.out_channels if first_conv is not None else 3
    by_width = 16 * width + 8 * 3 * scale * scale
    widest = max((r.input_elements + r.output_elements for r in records), default=0)
    measured = ACTIVATION_HEADROOM * -(-widest // (PROBE_SIDE * PROBE_SIDE))
    return 4 * max(by_width, measured)


def tile_bytes_per_pixel(runner: Runner, scale: int) -> int:
    """Working memory of a tile per input pixel: activations plus its result and conversion."""
    return runner.activation_bytes_per_pixel(scale) + TILE_OUTPUT_BYTES_PER_PIXEL * scale * scale


def auto_tile_size(net: nn.Module | Runner, scale: int, device: torch.device, height: int, width: int,
                   reserved_host: int = 0) -> int | None:
    """Largest tile whose working memory fits the budget; ``None`` when the image fits whole.

    The budget is a share of the memory available on ``device`` — on a CPU less
    ``reserved_host`` bytes already promised but not yet touched (an output buffer filled
    tile by tile) — and never above :data:`AUTO_TILE_MEMORY_CAP`.
    """
    free = available_memory(device) - (reserved_host if device.type == "cpu" else 0)
    free = max(free, 0)
    budget = min(AUTO_TILE_MEMORY_SHARE * free, AUTO_TILE_MEMORY_CAP)
    runner = as_runner(net)
    per_pixel = tile_bytes_per_pixel(runner, scale)
    if height * width * per_pixel <= budget:
        return None
    window = math.isqrt(int(budget // per_pixel))
    side = (window - 2 * runner.receptive_radius) // AUTO_TILE_STEP * AUTO_TILE_STEP
    return min(max(side, AUTO_TILE_MIN), AUTO_TILE_MAX)


# --------------------------------------------------------------------------- precision


class _FloatOutput(nn.Module):
    """A convolution whose result is handed on in fp32 even when autocast ran it in bf16/fp16.

    Keeping activations (SiLU, attention products, residual sums) in fp32 and rounding only
    the convolution inputs holds the Set5 loss of bf16 to a few thousandths of a dB (see
    BENCHMARKS.md). Compiled, the casts fuse into the neighbouring element-wise kernels and
    cost nothing; eagerly, each is an extra pass over memory that eats bf16's gain.
    """

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).float()


class _FullPrecision(nn.Module):
    """A layer that always runs in fp32: autocast is switched off around it."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return self.layer(x.float())


def head_and_tail(net: nn.Module, scale: int, channels: int = 3) -> tuple[list[nn.Module], list[nn.Module]]:
    """Convolutions that touch image values directly, in execution order.

    The head runs up to the first convolution that widens the image to features (after
    LESRCNN's mean shift, say); the tail from the last convolution that reads features back
    to the image (SPAN's upsampler, SCNet's ``conv_last``, LESRCNN's ``conv18`` and mean
    shift). Rounding there is rounding of pixel values, which PSNR sees directly.
    """
    convs = [r.module for r in _probe(net, scale, channels) if isinstance(r.module, nn.Conv2d)]
    if not convs:
        return [], []
    first_wide = next((i for i, conv in enumerate(convs) if conv.out_channels > channels), 0)
    last_wide = max((i for i, conv in enumerate(convs) if conv.in_channels > channels), default=len(convs) - 1)
    return convs[:first_wide + 1], convs[last_wide:]


def mixed_precision_copy(net: nn.Module, scale: int, channels: int = 3, float_activations: bool = True) -> nn.Module:
    """A copy of ``net`` laid out for reduced precision under autocast.

    The head and tail convolutions (:func:`head_and_tail`) and the network's own
    ``precision_sensitive_layers`` stay fp32 throughout; the others compute in the autocast
    dtype and, with ``float_activations``, hand on fp32 (:class:`_FloatOutput`). The copy
    is what runs, so the original network is left untouched for fp32 passes and for saving.
    """
    head, tail = head_and_tail(net, scale, channels)
    sensitive = net.precision_sensitive_layers() if isinstance(net, SRNet) else []
    full = {id(module) for module in head + tail + sensitive}
    names = {id(module): name for name, module in net.named_modules()}
    wrap = {names[id(m)]: (_FullPrecision if id(m) in full else _FloatOutput)
            for m in net.modules() if isinstance(m, nn.Conv2d) and (float_activations or id(m) in full)}
    clone = copy.deepcopy(net)
    for name, wrapper in wrap.items():
        parent_name, _, child = name.rpartition(".")
        parent = clone.get_submodule(parent_name) if parent_name else clone
        setattr(parent, child, wrapper(getattr(parent, child)))
    return clone


class _Autocast(nn.Module):
    """``net`` under autocast to ``dtype`` (a no-op for fp32): the unit that gets compiled."""

    def __init__(self, net: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.net, self.dtype = net, dtype

    def forward(self, x: torch.Tensor, scale: int) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            return self.net(x, scale)


# --------------------------------------------------------------------------- deploy runner


class DeployedNet:
    """A PyTorch network in its inference form, as a :class:`Runner`.

    * ``channels_last`` feeds NHWC tensors, which oneDNN (CPU) and cuDNN (tensor cores)
      run fastest, and which selects Shift8's single-pass depthwise formulation;
    * ``compile`` wraps each precision's forward in ``torch.compile`` with weight freezing
      (element-wise chains fused, conv + activation fused); the first call per input shape
      compiles (seconds);
    * reduced precision runs a :func:`mixed_precision_copy` under autocast: image-facing
      layers (and the network's ``precision_sensitive_layers``) in fp32 always,
      activations in fp32 when compiled (free there) or when the architecture asks for it
      (SPAN), else in the reduced dtype (where fp32 ones would cost more than bf16 saves). If a pass
      produces NaN/inf it is redone in fp32, and that precision is not tried again for
      this model (a per-model fp32 fallback, warned once).

    The network's weights must not change after deploying: copies made for reduced
    precision and compiled graphs would not see the change.
    """

    backend = "torch"

    def __init__(self, net: nn.Module, *, channels_last: bool = True, compile: bool = False) -> None:
        self.net = net.eval()
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.compiled = compile
        self._forwards: dict[torch.dtype, Callable[[torch.Tensor, int], torch.Tensor]] = {}
        self._overflowed: set[torch.dtype] = set()
        self._bytes_per_pixel: dict[int, int] = {}

    @property
    def scales(self) -> tuple[int, ...]:
        return self.net.scales

    @property
    def receptive_radius(self) -> int:
        return self.net.receptive_radius

    @property
    def device(self) -> torch.device:
        return network_device(self.net)

    @property
    def threads(self) -> int:
        return torch.get_num_threads()

    @property
    def num_params(self) -> int:
        return count_parameters(self.net)

    def check_scale(self, scale: int | None) -> int:
        return self.net.check_scale(scale)

    def activation_bytes_per_pixel(self, scale: int) -> int:
        if scale not in self._bytes_per_pixel:
            self._bytes_per_pixel[scale] = activation_bytes_per_pixel(self.net, scale)
        return self._bytes_per_pixel[scale]

    def forward_for(self, dtype: torch.dtype, scale: int,
                    channels: int = 3) -> Callable[[torch.Tensor, int], torch.Tensor]:
        """The callable that runs a pass in ``dtype``, built on first use."""
        if dtype not in self._forwards:
            float_activations = self.compiled or (isinstance(self.net, SRNet)
                                                  and self.net.float_activations_in_reduced_precision)
            net = self.net if dtype == torch.float32 else mixed_precision_copy(
                self.net, scale, channels, float_activations=float_activations)
            forward: Callable[[torch.Tensor, int], torch.Tensor] = _Autocast(net, dtype)
            if self.compiled:
                # Dynamo's per-function recompile budget (8) is shared by every compiled
                # model and precision in the process; tiles of a few sizes use several.
                dynamo_config = torch._dynamo.config
                dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, COMPILE_RECOMPILE_LIMIT)
                forward = torch.compile(forward, options={"freezing": True})
            self._forwards[dtype] = forward
        return self._forwards[dtype]

    def __call__(self, x: torch.Tensor, scale: int, precision: str = "fp32") -> torch.Tensor:
        """Super-resolve a float NCHW batch; the result is float32 (unclamped)."""
        dtype = check_precision(precision, x.device)
        if dtype in self._overflowed:
            dtype = torch.float32
        x = x.contiguous(memory_format=self.memory_format)
        with torch.inference_mode():
            out = self.forward_for(dtype, scale, x.shape[1])(x, scale)
            if dtype != torch.float32 and not torch.isfinite(out).all():
                self._overflowed.add(dtype)
                warnings.warn(f"{precision} overflowed (NaN/inf) in this model; it runs in fp32 from now on",
                              PrecisionFallbackWarning, stacklevel=2)
                out = self.forward_for(torch.float32, scale)(x, scale)
        return out.float()


def as_runner(net: nn.Module | Runner) -> Runner:
    """A runner for ``net``: itself if it is one, else a plain (NCHW, eager) :class:`DeployedNet`."""
    if isinstance(net, nn.Module):
        return DeployedNet(net, channels_last=False)
    return net


def keep_freed_host_memory() -> bool:
    """Make glibc keep and reuse freed memory instead of returning it to the OS at once.

    glibc serves every allocation over 32 MiB with a fresh ``mmap`` and unmaps it on
    free, so each large activation (SCNet ×4 at 256×256 makes 256 MiB ones) is faulted in
    page by page and zeroed by the kernel on *every* forward — hundreds of thousands of
    page faults, up to half of SCNet's CPU time. Serving them from the heap and trimming
    it only past 2 GiB of free space removes that cost; the price is that the process
    keeps its high-water memory until it exits. Process-wide and idempotent; returns
    whether it applied (glibc on Linux only).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    return bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, HOST_TRIM_THRESHOLD))


# --------------------------------------------------------------------------- tiling


@torch.inference_mode()
def upscale_tensor(
    net: nn.Module | Runner,
    image: torch.Tensor,
    scale: int,
    *,
    tile: int | None = None,
    tile_pad: int | None = None,
    precision: str = "fp32",
    on_tile: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Super-resolve a 1×C×H×W float tensor in [0, 1]; the result is float32 on the CPU.

    ``net`` is a :class:`Runner` (``SRModel.runner`` after ``deploy()``, an ONNX Runtime
    model) or a plain network, run as it is. ``tile=None`` runs the whole image at once,
    ``tile=0`` picks a tile size from the free memory, ``tile=N`` uses N×N input-pixel
    tiles. ``tile_pad`` defaults to the network's receptive radius, which makes tiling
    exact. ``on_tile(done, total)`` reports progress. Integer images go through
    :func:`litesr.image_upscale.upscale_image` instead, which writes each tile straight
    into the integer result.
    """
    check_tiling(tile, tile_pad)
    runner = as_runner(net)
    device = runner.device
    check_precision(precision, device)
    height, width = image.shape[-2:]
    if tile == 0:
        tile = auto_tile_size(runner, scale, device, height, width)
    tiles = plan_tiles(height, width, tile, runner.receptive_radius if tile_pad is None else tile_pad)

    def compute(piece: Tile) -> torch.Tensor:
        return runner(image[(..., *piece.window)].to(device), scale, precision).cpu()

    if len(tiles) == 1:  # the whole image in one window: its result is the output, no copy
        output = compute(tiles[0])
        if on_tile:
            on_tile(1, 1)
        return output
    output = torch.empty(image.shape[0], image.shape[1], height * scale, width * scale, dtype=torch.float32)

    def write(piece: Tile, kept: torch.Tensor) -> None:
        output[(..., *piece.in_output(scale))] = kept

    run_tiles(tiles, scale, compute, write, on_tile)
    return output
