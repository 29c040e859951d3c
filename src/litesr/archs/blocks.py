"""Primitives shared by the three architectures.

Each block here appears in more than one network (or more than once in one), so it is
written once: the parameter-free 8-direction shift (SCNet), the re-parameterizable
Conv3XC (SPAN), the frozen mean-shift convolution (LESRCNN) and the sub-pixel upsampler
(LESRCNN, SPAN).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigurationError

#: DIV2K RGB mean that SPAN and LESRCNN subtract from their input.
DIV2K_RGB_MEAN: tuple[float, float, float] = (0.4488, 0.4371, 0.4040)

#: (dy, dx) offset read by each of Shift8's eight channel groups, in group order.
SHIFT8_OFFSETS: tuple[tuple[int, int], ...] = (
    (-1, 0), (1, 0), (0, -1), (0, 1), (1, 1), (1, -1), (-1, 1), (-1, -1),
)


#: Flat 3×3 tap index (row-major) that each of Shift8's groups reads: 4 is the centre.
SHIFT8_TAPS: tuple[int, ...] = tuple((1 + dy) * 3 + (1 + dx) for dy, dx in SHIFT8_OFFSETS)


def shift8_kernel(channels: int, dtype: torch.dtype = torch.float32,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """The ``channels×1×3×3`` one-hot depthwise kernel that performs Shift8 as a convolution.

    Built from tensor ops rather than index writes so that tracing (ONNX export) and
    ``torch.compile`` see a constant, and cheap enough (three tiny ops) to build per call.
    """
    taps = torch.eye(9, dtype=dtype, device=device)[list(SHIFT8_TAPS)]
    return taps.repeat_interleave(channels // 8, dim=0).view(channels, 1, 3, 3)


class Shift8(nn.Module):
    """Move eight channel groups one pixel in eight directions (zero fill at the border).

    SCNet's only source of spatial context. Group ``k`` reads the input at offset
    ``SHIFT8_OFFSETS[k]``. Both formulations below are exact (pure data movement), and
    neither zero-fills a whole output before writing it, as the reference code does;
    ``python benchmarks/shift8.py`` measures them against the alternatives:

    * channels-last input (the deploy path) → one depthwise 3×3 convolution with one-hot
      kernels, run outside autocast so that it stays exact in every precision. oneDNN does
      it in one pass over NHWC memory (where slicing copies a 32-byte run per pixel and
      group), and it exports to ONNX as a single ``Conv`` node.
    * contiguous (NCHW) input → eight slice copies into an uninitialised output, then only
      the one-pixel border each group leaves uncovered is zeroed. In NCHW each group is a
      block of whole planes, so the copies are long and this is the fastest exact form
      (a depthwise conv is the slowest there).

    The module has no parameters or buffers, so checkpoints are unaffected.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[-3]
        if channels % 8:
            raise ConfigurationError(f"Shift8 needs a channel count divisible by 8, got {channels}")
        if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
            # Autocast would round an fp32 input to bf16/fp16 here: a shift must stay exact.
            with torch.autocast(x.device.type, enabled=False):
                return F.conv2d(x, shift8_kernel(channels, x.dtype, x.device), padding=1, groups=channels)
        return _shift8_slices(x)


def _shift8_slices(x: torch.Tensor) -> torch.Tensor:
    """Shift8 as eight slice copies into an empty tensor plus zeroed border lines."""
    group, (height, width) = x.shape[-3] // 8, x.shape[-2:]
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    for k, (dy, dx) in enumerate(SHIFT8_OFFSETS):
        source = x[..., k * group:(k + 1) * group, :, :]
        target = out[..., k * group:(k + 1) * group, :, :]
        target[..., max(-dy, 0):height - max(dy, 0), max(-dx, 0):width - max(dx, 0)] = \
            source[..., max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)]
        if dy:
            target[..., height - 1 if dy > 0 else 0, :] = 0
        if dx:
            target[..., :, width - 1 if dx > 0 else 0] = 0
    return out


class Conv3XC(nn.Module):
    """SPAN's re-parameterizable convolution: a 1×1→3×3→1×1 chain plus a 1×1 skip.

    The training form keeps the two branches (``conv``, ``sk``); ``eval_conv`` holds the
    single 3×3 convolution they collapse into. The official code recomputes that fusion on
    every inference call; here :meth:`fuse` does it once and discards the branches, so the
    module switches one way from the training form to the deploy form.

    ``eval_conv`` is kept (frozen) in the training form only so that official checkpoints,
    which store it, load with ``strict=True``; its stored values are never trusted and are
    recomputed from the branches when fusing.
    """

    def __init__(self, c_in: int, c_out: int, gain: int = 2, stride: int = 1, deploy: bool = False) -> None:
        super().__init__()
        self.c_in, self.c_out, self.gain, self.stride = c_in, c_out, gain, stride
        self.deployed = deploy
        if not deploy:
            self.sk = nn.Conv2d(c_in, c_out, 1, stride=stride)
            self.conv = nn.Sequential(
                nn.Conv2d(c_in, c_in * gain, 1),
                nn.Conv2d(c_in * gain, c_out * gain, 3, stride=stride),
                nn.Conv2d(c_out * gain, c_out, 1),
            )
        self.eval_conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
        if not deploy:
            self.eval_conv.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deployed:
            return self.eval_conv(x)
        return self.conv(F.pad(x, (1, 1, 1, 1))) + self.sk(x)

    @torch.no_grad()
    def fused_kernel(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the (weight, bias) of the single 3×3 conv equal to the two branches.

        Computed in float64 so the fused layer is at least as accurate as the branches.
        Zero padding happens *before* the first 1×1 conv, so its bias reaches every tap of
        the 3×3 conv; that is why ``b1`` is summed over the kernel window in the bias.
        """
        if self.deployed:
            return self.eval_conv.weight.detach().clone(), self.eval_conv.bias.detach().clone()
        first, middle, last = self.conv
        w1 = first.weight.double()[:, :, 0, 0]          # (c_in*g, c_in)
        w2 = middle.weight.double()                      # (c_out*g, c_in*g, 3, 3)
        w3 = last.weight.double()[:, :, 0, 0]           # (c_out, c_out*g)
        weight = torch.einsum("ob,bakl,ai->oikl", w3, w2, w1)
        weight[:, :, 1, 1] += self.sk.weight.double()[:, :, 0, 0]
        inner_bias = middle.bias.double() + torch.einsum("bakl,a->b", w2, first.bias.double())
        bias = w3 @ inner_bias + last.bias.double() + self.sk.bias.double()
        dtype = self.eval_conv.weight.dtype
        return weight.to(dtype), bias.to(dtype)

    @torch.no_grad()
    def refresh_eval_conv(self) -> None:
        """Overwrite the stored ``eval_conv`` with the fusion of the current branches."""
        weight, bias = self.fused_kernel()
        self.eval_conv.weight.copy_(weight)
        self.eval_conv.bias.copy_(bias)

    def fuse(self) -> None:
        """Collapse to the deploy form once; a no-op when already fused."""
        if self.deployed:
            return
        self.refresh_eval_conv()
        del self.sk, self.conv
        self.deployed = True


class MeanShift(nn.Module):
    """Add or subtract a per-channel mean with a frozen identity 1×1 conv.

    LESRCNN stores this conv (``<name>.shifter.weight/bias``) in its checkpoints, so it is a
    module with parameters rather than a constant.
    """

    def __init__(self, mean: Sequence[float] = DIV2K_RGB_MEAN, sign: int = -1) -> None:
        super().__init__()
        channels = len(mean)
        self.shifter = nn.Conv2d(channels, channels, 1)
        with torch.no_grad():
            self.shifter.weight.copy_(torch.eye(channels).view(channels, channels, 1, 1))
            self.shifter.bias.copy_(sign * torch.tensor(mean))
        self.shifter.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shifter(x)


def pixel_shuffle_upsampler(
    in_channels: int, scale: int, out_channels: int | None = None, kernel_size: int = 3
) -> nn.Sequential:
    """Sub-pixel upsampler as ``[conv, PixelShuffle]`` steps.

    With ``out_channels`` given (SPAN) it is one step straight to ``out_channels`` at
    ``scale``. Without it (LESRCNN) the feature count is kept: ×3 is one step, powers of two
    are repeated ×2 steps, which is how both papers lay out their ``body.0, body.2, …`` keys.
    """
    padding = kernel_size // 2
    if out_channels is not None:
        steps = [(scale, out_channels)]
    elif scale == 3:
        steps = [(3, in_channels)]
    elif scale >= 2 and scale & (scale - 1) == 0:
        steps = [(2, in_channels)] * int(math.log2(scale))
    else:
        raise ConfigurationError(f"pixel-shuffle upsampler supports scale 3 or a power of two, got {scale}")
    layers: list[nn.Module] = []
    channels = in_channels
    for factor, target in steps:
        layers += [nn.Conv2d(channels, target * factor * factor, kernel_size, padding=padding), nn.PixelShuffle(factor)]
        channels = target
    return nn.Sequential(*layers)
