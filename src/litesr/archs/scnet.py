"""SCNet: a fully 1×1 convolutional SR network (Wu et al., MIR 2024, arXiv 2307.16140).

Every learned layer is a 1×1 convolution; spatial context comes only from :class:`Shift8`.
Module names follow the official code so that its checkpoints load with ``strict=True``.

Its checkpoints are recognised by ``conv_first`` + ``body.N.conv1``; the one case their
shapes cannot settle — the interpolation upsampler at ×2 versus ×3 — needs a scale hint.

Training from scratch on a small budget uses the ``residual`` init below. The official init
is Kaiming-normal ×0.1 on *every* convolution; the residual path then passes through five or
more such layers, its output starts ~1e-5 of the input and its gradients ~1e-11, below
Adam's ε — measured here: after 1,000 iterations (CPU recipe, batch 16) SCNet-T ×4 still
output plain bilinear (27.56 dB on Set5). That is harmless over the paper's 300k iterations,
fatal on a CPU budget. ``residual`` starts every residual branch small instead of every
layer: Kaiming-normal (for the leaky ReLUs) with zero bias everywhere, then ×0.1 on the last
conv of each residual block and ×0.01 on the output conv, so the network still begins close
to its bilinear skip but every layer has unit gain. Mean L1 loss per 20 steps over the first
120 (SCNet-T ×4, T91 patches, Adam 1e-3, bf16): official 0.0380 → 0.0370; output ×0.1:
0.0435 → 0.0346; output ×0.01 (chosen): 0.0384 → 0.0317.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import CheckpointError, ConfigurationError
from .base import SRNet
from .blocks import Shift8
from .detection import StateDict, ambiguous_scale, indices, shape, square_root
from .registry import Architecture
from .scnet_stream import DEFAULT_BAND_PIXELS, streamed_forward, streaming_applies

SCNET_SCALES: tuple[int, ...] = (2, 3, 4, 8)
RESIDUAL_SCALE = 0.1
OUTPUT_SCALE = 0.01
LEAKY_SLOPE = 0.1


def _conv1x1(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 1)


class ShiftResidualBlock(nn.Module):
    """``x + conv2(ReLU(Shift8(conv1(x))))``."""

    def __init__(self, num_feat: int) -> None:
        super().__init__()
        self.conv1 = _conv1x1(num_feat, num_feat)
        self.shift = Shift8()
        self.conv2 = _conv1x1(num_feat, num_feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.shift(self.conv1(x))))


class ShiftUpsampler(nn.Module):
    """One upsampling stage, named ``up_layer`` as in the official checkpoints.

    The pixel-shuffle kind ends in ``conv C→C·s²`` + PixelShuffle; the interpolation kind
    starts with a bilinear ×s resize. Both have a LeakyReLU(0.02) and a shift between two
    1×1 convs, so the interpolation kind's keys sit one index later (``up_layer.1/.4``).
    """

    def __init__(self, num_feat: int, scale: int, use_pixelshuffle: bool) -> None:
        super().__init__()
        self.factor = scale
        middle = [_conv1x1(num_feat, num_feat), nn.LeakyReLU(0.02), Shift8()]
        if use_pixelshuffle:
            layers = [*middle, _conv1x1(num_feat, num_feat * scale * scale), nn.PixelShuffle(scale)]
        else:
            resize = nn.Upsample(scale_factor=scale, mode="bilinear", align_corners=False)
            layers = [resize, *middle, _conv1x1(num_feat, num_feat)]
        self.up_layer = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up_layer(x)


def upsampling_stages(upscale: int) -> list[int]:
    """Per-stage factors: ×2 and ×3 in one stage, ×4 and ×8 as repeated ×2 stages."""
    if upscale in (2, 3):
        return [upscale]
    if upscale in (4, 8):
        return [2] * (upscale.bit_length() - 1)
    raise ConfigurationError(f"SCNet supports upscale {SCNET_SCALES}, got {upscale}")


class SCNet(SRNet):
    """SCNet(num_in_ch, num_out_ch, num_feat, num_block, upscale, use_pixelshuffle).

    SCNet-T, the published configuration, is ``num_feat=64, num_block=16,
    use_pixelshuffle=True``. The output adds a bilinear upsampling of the input, so the
    network learns only the residual.

    The deploy form (:meth:`fuse`) computes the same function as a pipeline of row bands
    (:mod:`.scnet_stream`), which keeps its activations in cache instead of streaming
    every 64-channel layer through DRAM; ``band_pixels`` sets its band size.
    """

    band_pixels: int = DEFAULT_BAND_PIXELS

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_block: int = 16,
        upscale: int = 4,
        use_pixelshuffle: bool = False,
    ) -> None:
        super().__init__()
        if num_feat % 8:
            raise ConfigurationError(f"SCNet num_feat must be divisible by 8 (the shift uses 8 groups), got {num_feat}")
        self.scales = (upscale,)
        self.conv_first = _conv1x1(num_in_ch, num_feat)
        self.body = nn.Sequential(*(ShiftResidualBlock(num_feat) for _ in range(num_block)))
        for index, factor in enumerate(upsampling_stages(upscale), start=1):
            self.add_module(f"upconv{index}", ShiftUpsampler(num_feat, factor, use_pixelshuffle))
        self.num_stages = index
        self.conv_hr = _conv1x1(num_feat, num_feat)
        self.conv_last = _conv1x1(num_feat, num_out_ch)
        self._init_weights()

    def _init_weights(self) -> None:
        """The official init: Kaiming-normal ×0.1 and zero bias on every conv."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight)
                module.weight.data.mul_(0.1)
                nn.init.zeros_(module.bias)

    @property
    def receptive_radius(self) -> int:
        # One pixel per shift (each block, each upsampling stage) plus the bilinear skip.
        return len(self.body) + self.num_stages + 1

    def forward(self, x: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        upscale = self.check_scale(scale)
        if self.deployed and streaming_applies():
            return streamed_forward(self, x, upscale, self.band_pixels)
        return self.layered_forward(x, upscale)

    def layered_forward(self, x: torch.Tensor, upscale: int) -> torch.Tensor:
        """The training form's forward: one layer at a time over the whole image.

        The deploy form streams row bands instead (:mod:`.scnet_stream`), which computes
        the same function and keeps activations in cache; this form is what training,
        tracing (ONNX export) and ``torch.compile`` see.
        """
        features = F.leaky_relu(self.conv_first(x), 0.1)
        features = self.body(features)
        for index in range(1, self.num_stages + 1):
            features = F.leaky_relu(getattr(self, f"upconv{index}")(features), 0.1)
        residual = self.conv_last(F.leaky_relu(self.conv_hr(features), 0.1))
        return residual + F.interpolate(x, scale_factor=upscale, mode="bilinear", align_corners=False)


def detect_scnet(state_dict: StateDict, scale_hint: int | None) -> dict[str, Any] | None:
    if "conv_first.weight" not in state_dict or "body.0.conv1.weight" not in state_dict:
        return None
    num_feat, num_in_ch = shape(state_dict, "conv_first.weight", 4, "SCNet")[:2]
    num_out_ch = shape(state_dict, "conv_last.weight", 4, "SCNet")[0] if "conv_last.weight" in state_dict else num_in_ch
    num_block = len(indices(state_dict, r"body\.(\d+)\.conv1\.weight"))
    stages = indices(state_dict, r"upconv(\d+)\.up_layer\.\d+\.weight")
    use_pixelshuffle = "upconv1.up_layer.0.weight" in state_dict
    if len(stages) >= 2:
        upscale = 2 ** len(stages)
    elif use_pixelshuffle:
        upscale = square_root(shape(state_dict, "upconv1.up_layer.3.weight", 4, "SCNet")[0] // num_feat) or 0
    else:
        upscale = ambiguous_scale("SCNet (interpolation upsampler)", (2, 3), scale_hint)
    if upscale not in SCNET_SCALES:
        raise CheckpointError(f"SCNet checkpoint has an upsampler for an unsupported scale (×{upscale})")
    return dict(num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat, num_block=num_block,
                upscale=upscale, use_pixelshuffle=use_pixelshuffle)


def residual_init(net: SRNet) -> SRNet:
    """Re-initialise an SCNet in place with the ``residual`` scheme (see the module docstring)."""
    assert isinstance(net, SCNet)
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, a=LEAKY_SLOPE)
            nn.init.zeros_(module.bias)
    for module in net.modules():
        if isinstance(module, ShiftResidualBlock):
            module.conv2.weight.data.mul_(RESIDUAL_SCALE)
    net.conv_last.weight.data.mul_(OUTPUT_SCALE)
    return net


ARCHITECTURE = Architecture(
    name="scnet", network=SCNet, scale_argument="upscale", scales=SCNET_SCALES, detect=detect_scnet,
    weight_inits={"residual": residual_init},
)
