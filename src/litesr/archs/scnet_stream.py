"""SCNet's deploy forward, streamed in row bands so that its activations stay in cache.

Why: every SCNet layer is a 1×1 convolution (16 multiply-adds per byte moved at 64
channels), so run layer by layer over a whole image it is bound by memory traffic, not
arithmetic — at ×4 on a 256×256 input each upsampled 64-channel activation is 256 MiB and
is written and read back from DRAM several times. Here the image flows through the network
as a pipeline of horizontal bands instead: each stage runs its per-pixel part (the 1×1
conv before its shift) once on every band it receives, keeps the few rows its shift still
needs from the previous band (its *halo*), and emits output rows as soon as they are fully
determined, cropping right after the shift, before its next 1×1 conv. A band is consumed
by the next layer while it is still in cache, no full-size intermediate is ever allocated,
and no multiply-add is done twice (only the shift's data movement is repeated on halo
rows; the interpolation-upsampler kind, which resizes before its first conv, reruns that
conv on its halo rows).

It is exact: every op is either per-pixel or reads at most ``halo`` rows away (the
shift reads one row; a bilinear resize one input row), bands are cut only where all
those rows are present, and the image's own top and bottom rows are the slab's first and
last rows, so zero fill and clamping happen exactly where the unbanded forward does them.
Floating-point results agree to rounding (identical ops on identical values; bilinear ×3
weights may differ in the last bit because they are computed relative to the band).

Only the deploy form streams, and only eagerly: traced (ONNX export) and compiled graphs
get the plain layer-by-layer forward, which has no Python loop over bands.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from .scnet import SCNet, ShiftResidualBlock, ShiftUpsampler

#: Output pixels per band (rows × width) every stage aims at: 65,536 × 64 channels × 4
#: bytes = 16 MiB per fp32 activation, within the 32 MiB L3 of the development machine.
#: Smaller, L2-sized bands (4,096-16,384 px) won with one thread but lost badly with two
#: on a shared, oversubscribed machine: every op is a parallel region, and many small
#: ones wait on descheduled threads. ``python benchmarks/scnet_speed.py --bands ...``.
DEFAULT_BAND_PIXELS = 65536

#: ``pre(chunk)``: a stage's per-pixel part, run once on each band of input rows as it
#: arrives; it returns the row-aligned tensors the stage keeps (several when a later step
#: needs the raw input too, as a residual block does).
PreFn = Callable[[torch.Tensor], tuple[torch.Tensor, ...]]
#: ``post(slabs, top, count)``: the rest of the stage, run on kept rows; returns rows
#: ``[top, top + count)`` of what it produces from those rows.
PostFn = Callable[[tuple[torch.Tensor, ...], int, int], torch.Tensor]

LEAKY_SLOPE = 0.1


def streaming_applies() -> bool:
    """Whether the banded forward may run now: eagerly, not under tracing or compilation."""
    return not (torch.jit.is_tracing() or torch.compiler.is_compiling())


@dataclass
class _Stream:
    """One stage of the pipeline and the rows of its per-pixel part it still holds.

    Output row ``o`` of a stage with ``scale`` s and ``halo`` h depends on input rows
    ``o // s - h … o // s + h``; rows are emitted as soon as those have all arrived. The
    per-pixel part runs once per input row, so a halo row is kept, never recomputed.
    """

    pre: PreFn
    post: PostFn
    scale: int
    halo: int
    rows_in: int
    max_rows: int
    pending: tuple[torch.Tensor, ...] = ()
    start: int = 0          # input row index of the first pending row
    received: int = 0       # input rows received so far
    produced: int = 0       # output rows emitted so far

    def push(self, chunk: torch.Tensor | None) -> Iterator[torch.Tensor]:
        """Accept the next input rows (``None`` once the input is complete); yield output bands."""
        if chunk is not None and chunk.shape[2]:
            kept = self.pre(chunk)
            self.pending = kept if not self.pending else tuple(
                torch.cat((old, new), dim=2) for old, new in zip(self.pending, kept, strict=True))
            self.received += chunk.shape[2]
        s, h = self.scale, self.halo
        complete = chunk is None or self.received == self.rows_in
        limit = s * (self.rows_in if complete else max(self.received - h, 0))
        while self.produced < limit:
            stop = min(limit, self.produced + self.max_rows)
            first, last = max(self.produced // s - h, 0), min(stop // s + h, self.received)
            slabs = tuple(t[:, :, first - self.start:last - self.start] for t in self.pending)
            band = self.post(slabs, self.produced - s * first, stop - self.produced)
            self.produced = stop
            yield band
        keep = max(self.produced // s - h, self.start)
        self.pending = tuple(t[:, :, keep - self.start:] for t in self.pending) if keep < self.received else ()
        self.start = keep


def _rows(t: torch.Tensor, top: int, count: int) -> torch.Tensor:
    return t[:, :, top:top + count]


def _leaky(t: torch.Tensor, slope: float = LEAKY_SLOPE) -> torch.Tensor:
    return F.leaky_relu(t, slope, inplace=True)


def _head(net: SCNet) -> tuple[PreFn, PostFn]:
    return (lambda chunk: (_leaky(net.conv_first(chunk)),)), (lambda slabs, top, count: _rows(slabs[0], top, count))


def _block(block: ShiftResidualBlock) -> tuple[PreFn, PostFn]:
    def pre(chunk: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # ReLU before the shift equals ReLU after it (a shift only moves values and fills
        # zeros, which ReLU keeps); this way it runs once per row, in place.
        return chunk, F.relu(block.conv1(chunk), inplace=True)

    def post(slabs: tuple[torch.Tensor, ...], top: int, count: int) -> torch.Tensor:
        skip, inner = slabs
        return _rows(skip, top, count) + block.conv2(_rows(block.shift(inner), top, count))
    return pre, post


def _upsampler(stage: ShiftUpsampler) -> tuple[PreFn, PostFn]:
    factor, layers = stage.factor, list(stage.up_layer)
    if isinstance(layers[-1], nn.PixelShuffle):
        conv_a, act, shift, conv_b, shuffle = layers

        def pre(chunk: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return (_leaky(conv_a(chunk), act.negative_slope),)

        def post(slabs: tuple[torch.Tensor, ...], top: int, count: int) -> torch.Tensor:
            inner = _rows(shift(slabs[0]), top // factor, count // factor)
            return _leaky(shuffle(conv_b(inner)))
        return pre, post

    resize, conv_a, act, shift, conv_b = layers

    def post_resized(slabs: tuple[torch.Tensor, ...], top: int, count: int) -> torch.Tensor:
        inner = shift(_leaky(conv_a(resize(slabs[0])), act.negative_slope))
        return _leaky(conv_b(_rows(inner, top, count)))
    return (lambda chunk: (chunk,)), post_resized


def _rows_per_band(band_pixels: int, width: int, multiple: int) -> int:
    return max(band_pixels // width // multiple, 1) * multiple


def streamed_forward(net: SCNet, x: torch.Tensor, upscale: int,
                     band_pixels: int = DEFAULT_BAND_PIXELS) -> torch.Tensor:
    """SCNet's forward run as a pipeline of row bands (see the module docstring).

    Equal to ``net``'s layer-by-layer forward up to float rounding, in every layout and
    under autocast (it calls the network's own modules, so a mixed-precision copy's
    wrapped convolutions apply). The result is NCHW-contiguous.
    """
    if band_pixels < 1:
        raise ConfigurationError(f"band_pixels must be positive, got {band_pixels}")
    if x.dim() != 4:
        raise ConfigurationError(f"SCNet's streamed forward needs an N×C×H×W batch, got {x.dim()} dimensions")
    x = x.contiguous(memory_format=torch.channels_last)
    height, width = x.shape[-2:]
    streams: list[_Stream] = []

    def add(parts: tuple[PreFn, PostFn], scale: int, halo: int, rows_in: int) -> int:
        out_width = width * (rows_in * scale // height)
        streams.append(_Stream(*parts, scale, halo, rows_in, _rows_per_band(band_pixels, out_width, scale)))
        return rows_in * scale

    rows = add(_head(net), 1, 0, height)
    for block in net.body:
        rows = add(_block(block), 1, 1, rows)
    for index in range(1, net.num_stages + 1):
        stage = getattr(net, f"upconv{index}")
        resized = not isinstance(stage.up_layer[-1], nn.PixelShuffle)
        # A resize reads one input row each side; its shift one *resized* row, which can
        # reach one more input row: two in all. The pixel-shuffle kind shifts before it
        # upsamples: one row.
        rows = add(_upsampler(stage), stage.factor, 2 if resized else 1, rows)

    output: list[torch.Tensor] = []
    written = 0

    def sink(features: torch.Tensor) -> None:
        nonlocal written
        count = features.shape[2]
        residual = net.conv_last(_leaky(net.conv_hr(features)))
        first = max(written // upscale - 1, 0)
        last = min(-(-(written + count) // upscale) + 1, height)
        skip = F.interpolate(x[:, :, first:last], scale_factor=upscale, mode="bilinear", align_corners=False)
        band = residual + _rows(skip, written - upscale * first, count)
        if not output:
            output.append(torch.empty(x.shape[0], band.shape[1], height * upscale, width * upscale,
                                      dtype=band.dtype, device=band.device))
        output[0][:, :, written:written + count] = band
        written += count

    def send(index: int, chunk: torch.Tensor | None) -> None:
        if index == len(streams):
            if chunk is not None:
                sink(chunk)
            return
        for band in streams[index].push(chunk):
            send(index + 1, band)

    step = streams[0].max_rows
    for top in range(0, height, step):
        send(0, x[:, :, top:top + step])
    for index in range(len(streams)):
        for band in streams[index].push(None):
            send(index + 1, band)
    return output[0]

