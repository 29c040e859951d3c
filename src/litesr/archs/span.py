"""SPAN: Swift Parameter-free Attention Network (Wan et al., CVPRW 2024; NTIRE 2024 ESR winner).

Attention without parameters: ``sigmoid(o) - 0.5`` of a block's own output gates it.
Module names follow the official code (``conv_1``, ``block_k.c{1,2,3}_r``, ``conv_cat``,
``upsampler.0``) so published checkpoints, training or deploy form, load with ``strict=True``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import CheckpointError, ConfigurationError
from .base import SRNet
from .blocks import DIV2K_RGB_MEAN, Conv3XC, pixel_shuffle_upsampler
from .detection import StateDict, shape, square_root
from .registry import Architecture

SPAN_SCALES: tuple[int, ...] = (1, 2, 3, 4)
SPAN_IMG_RANGE = 255.0
SPAN_NUM_BLOCKS = 6


class SPAB(nn.Module):
    """Swift parameter-free attention block: three Conv3XC, SiLU between, self-gating.

    Returns ``(out, a1, att)`` where ``a1`` is the first conv's output *after* SiLU. The
    official code applies SiLU in place, so the tensor it hands on is the activated one;
    returning the pre-activation value instead ruins released checkpoints.
    """

    def __init__(self, channels: int, deploy: bool = False) -> None:
        super().__init__()
        self.c1_r = Conv3XC(channels, channels, gain=2, deploy=deploy)
        self.c2_r = Conv3XC(channels, channels, gain=2, deploy=deploy)
        self.c3_r = Conv3XC(channels, channels, gain=2, deploy=deploy)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        a1 = F.silu(self.c1_r(x))
        a2 = F.silu(self.c2_r(a1))
        o3 = self.c3_r(a2)
        att = torch.sigmoid(o3) - 0.5
        return (o3 + x) * att, a1, att


class SPAN(SRNet):
    """SPAN(num_in_ch, num_out_ch, feature_channels, upscale, norm, deploy).

    ``norm=False`` reproduces community checkpoints trained without input normalisation;
    they carry a ``no_norm`` state-dict entry, which this module then also holds.
    ``deploy=True`` builds the fused form directly, for checkpoints that hold only
    ``eval_conv`` weights.
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        feature_channels: int = 48,
        upscale: int = 4,
        norm: bool = True,
        deploy: bool = False,
    ) -> None:
        super().__init__()
        if upscale not in SPAN_SCALES:
            raise ConfigurationError(f"SPAN supports upscale {SPAN_SCALES}, got {upscale}")
        self.scales = (upscale,)
        self.norm = norm
        self._deployed = deploy
        mean = torch.tensor(DIV2K_RGB_MEAN if num_in_ch == 3 else (0.0,) * num_in_ch).view(1, -1, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        if not norm:
            self.register_buffer("no_norm", torch.zeros(1))
        channels = feature_channels
        self.conv_1 = Conv3XC(num_in_ch, channels, gain=2, deploy=deploy)
        for index in range(1, SPAN_NUM_BLOCKS + 1):
            self.add_module(f"block_{index}", SPAB(channels, deploy=deploy))
        self.conv_cat = nn.Conv2d(channels * 4, channels, 1)
        self.conv_2 = Conv3XC(channels, channels, gain=2, deploy=deploy)
        self.upsampler = pixel_shuffle_upsampler(channels, upscale, out_channels=num_out_ch)

    def forward(self, x: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        self.check_scale(scale)
        if self.norm:
            x = (x - self.mean) * SPAN_IMG_RANGE
        f0 = self.conv_1(x)
        b1, _, _ = self.block_1(f0)
        b = b1
        for index in range(2, SPAN_NUM_BLOCKS):
            b, _, _ = getattr(self, f"block_{index}")(b)
        b6, b6_a1, _ = getattr(self, f"block_{SPAN_NUM_BLOCKS}")(b)
        b6 = self.conv_2(b6)
        return self.upsampler(self.conv_cat(torch.cat([f0, b6, b1, b6_a1], dim=1)))

    # Under bf16 the residual stream (features on SPAN's 0–255 scale) and the conv_cat
    # fusion right before the upsampler lose precision that PSNR sees: eager bf16 cost
    # span-x4.official 0.024 dB and span-x3.litesr 0.046 dB on Set5; with fp32 activations
    # and conv_cat in fp32, 0.005 and 0.004 dB, for 5–7 % of the bf16 speed (BENCHMARKS.md).
    float_activations_in_reduced_precision = True

    def precision_sensitive_layers(self) -> list[nn.Module]:
        return [self.conv_cat]

    @property
    def receptive_radius(self) -> int:
        # conv_1 + three 3×3 per block + conv_2 + the upsampler's 3×3 conv.
        return 1 + 3 * SPAN_NUM_BLOCKS + 1 + 1

    def conv3xc_layers(self) -> list[Conv3XC]:
        return [m for m in self.modules() if isinstance(m, Conv3XC)]

    def refresh_eval_convs(self) -> None:
        """Recompute every stored ``eval_conv`` from the branches (after loading weights)."""
        for layer in self.conv3xc_layers():
            if not layer.deployed:
                layer.refresh_eval_conv()

    def current_kwargs(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        return {**kwargs, "deploy": True} if self.deployed else dict(kwargs)

    def fuse(self) -> "SPAN":
        for layer in self.conv3xc_layers():
            layer.fuse()
        self._deployed = True
        return self


def detect_span(state_dict: StateDict, scale_hint: int | None) -> dict[str, Any] | None:
    """``conv_cat`` + ``upsampler.0``; deploy-only files (``eval_conv`` only) and ``no_norm`` too."""
    if "conv_cat.weight" not in state_dict or "upsampler.0.weight" not in state_dict:
        return None
    deploy = "conv_1.sk.weight" not in state_dict
    first = shape(state_dict, "conv_1.eval_conv.weight" if deploy else "conv_1.sk.weight", 4, "SPAN")
    feature_channels, num_in_ch = first[:2]
    upsampled = shape(state_dict, "upsampler.0.weight", 4, "SPAN")[0]
    for num_out_ch in dict.fromkeys((num_in_ch, 3, 1)):
        upscale = square_root(upsampled // num_out_ch) if upsampled % num_out_ch == 0 else None
        if upscale in SPAN_SCALES:
            break
    else:
        raise CheckpointError(f"SPAN checkpoint's upsampler has {upsampled} output channels, which fits no supported scale")
    return dict(num_in_ch=num_in_ch, num_out_ch=num_out_ch, feature_channels=feature_channels,
                upscale=upscale, norm="no_norm" not in state_dict, deploy=deploy)


def complete_derived_entries(net: SRNet, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A training-form file may omit the ``eval_conv`` weights: they are derived from the branches."""
    if not net.deployed:
        own = net.state_dict()
        for key in own:
            if ".eval_conv." in key and key not in state_dict:
                state_dict[key] = own[key]
    return state_dict


def _refresh_after_load(net: SRNet) -> None:
    assert isinstance(net, SPAN)
    net.refresh_eval_convs()


ARCHITECTURE = Architecture(
    name="span", network=SPAN, scale_argument="upscale", scales=SPAN_SCALES, detect=detect_span,
    official_options={"img_range": SPAN_IMG_RANGE, "rgb_mean": tuple(DIV2K_RGB_MEAN), "bias": True},
    prepare_state_dict=complete_derived_entries, after_load=_refresh_after_load,
)
