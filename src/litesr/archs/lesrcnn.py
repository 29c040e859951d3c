"""LESRCNN: Lightweight Enhanced SR CNN (Tian et al., Knowledge-Based Systems 2020).

An information extraction and enhancement block (alternating 3×3+ReLU and 1×1 convs with a
running residual), one sub-pixel upsampler applied to both the deep and the shallow
features, and a refinement block. The multi-scale ("blind", LESRCNN-S) model holds one
upsampler per scale and picks it per call. Module names follow the official code.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import CheckpointError, ConfigurationError
from .base import SRNet
from .blocks import MeanShift, pixel_shuffle_upsampler
from .detection import StateDict, indices, shape
from .registry import Architecture

LESRCNN_SCALES: tuple[int, ...] = (2, 3, 4)
#: Number of (3×3+ReLU, 1×1) pairs in the extraction block: conv2/3 … conv16/17.
LESRCNN_NUM_PAIRS = 8
LESRCNN_NUM_REFINE = 4


def _conv(c_in: int, c_out: int, kernel_size: int, relu: bool) -> nn.Sequential:
    """A bias-free conv wrapped in a Sequential, giving the official ``convN.0`` key."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=False)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class LESRCNNUpsampler(nn.Module):
    """``up.body`` for one scale, or ``up2/up3/up4.body`` for the multi-scale model."""

    def __init__(self, num_feat: int, scales: tuple[int, ...], multi_scale: bool) -> None:
        super().__init__()
        self.multi_scale = multi_scale
        for scale in scales:
            branch = nn.Module()
            branch.body = pixel_shuffle_upsampler(num_feat, scale)
            self.add_module(f"up{scale}" if multi_scale else "up", branch)

    def forward(self, x: torch.Tensor, scale: int) -> torch.Tensor:
        branch = getattr(self, f"up{scale}") if self.multi_scale else self.up
        return branch.body(x)


class LESRCNN(SRNet):
    """LESRCNN(scale, multi_scale, num_feat).

    Single-scale: ``scale`` ∈ {2, 3, 4}. Multi-scale: ``multi_scale=True`` serves ×2, ×3
    and ×4 from one network (``scale`` is then ignored); pass the factor to ``forward``.
    """

    def __init__(self, scale: int | None = 2, multi_scale: bool = False, num_feat: int = 64) -> None:
        super().__init__()
        if multi_scale:
            self.scales = LESRCNN_SCALES
        elif scale in LESRCNN_SCALES:
            self.scales = (scale,)
        else:
            raise ConfigurationError(f"LESRCNN supports scale {LESRCNN_SCALES} (or multi_scale=True), got {scale}")
        self.multi_scale = multi_scale
        self.sub_mean = MeanShift(sign=-1)
        self.add_mean = MeanShift(sign=1)
        self.conv1 = _conv(3, num_feat, 3, relu=False)
        for pair in range(LESRCNN_NUM_PAIRS):
            self.add_module(f"conv{2 * pair + 2}", _conv(num_feat, num_feat, 3, relu=True))
            self.add_module(f"conv{2 * pair + 3}", _conv(num_feat, num_feat, 1, relu=False))
        for index in range(1, LESRCNN_NUM_REFINE + 1):
            self.add_module(f"conv17_{index}", _conv(num_feat, num_feat, 3, relu=True))
        self.conv18 = _conv(num_feat, 3, 3, relu=False)
        self.upsample = LESRCNNUpsampler(num_feat, self.scales, multi_scale)

    @property
    def receptive_radius(self) -> int:
        # conv1, eight 3×3 in the extraction block, up to two upsampler convs, then five
        # 3×3 convs at the output resolution (at most 3 input pixels at ×2).
        return 1 + LESRCNN_NUM_PAIRS + 2 + 3

    def forward(self, x: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        scale = self.check_scale(scale)
        # The official ReLUs act in place, so every residual sum continues from the
        # *activated* value: each step is relu(h + conv_q(conv_p(h))).
        h = F.relu(self.conv1(self.sub_mean(x)))
        shallow = h
        for pair in range(LESRCNN_NUM_PAIRS):
            conv_p = getattr(self, f"conv{2 * pair + 2}")
            conv_q = getattr(self, f"conv{2 * pair + 3}")
            h = F.relu(h + conv_q(conv_p(h)))
        t = F.relu(self.upsample(h, scale) + self.upsample(shallow, scale))
        for index in range(1, LESRCNN_NUM_REFINE + 1):
            t = getattr(self, f"conv17_{index}")(t)
        return self.add_mean(self.conv18(t))


def detect_lesrcnn(state_dict: StateDict, scale_hint: int | None) -> dict[str, Any] | None:
    """``conv1`` + ``conv17_1``; ``upsample.up2`` marks the multi-scale model."""
    if "conv17_1.0.weight" not in state_dict or "conv1.0.weight" not in state_dict:
        return None
    num_feat = shape(state_dict, "conv1.0.weight", 4, "LESRCNN")[0]
    if any(key.startswith("upsample.up2.") for key in state_dict):
        return dict(scale=None, multi_scale=True, num_feat=num_feat)
    steps = indices(state_dict, r"upsample\.up\.body\.(\d+)\.weight")
    if not steps:
        raise CheckpointError("LESRCNN checkpoint has no upsampler weights (upsample.up.body.*)")
    first_out = shape(state_dict, f"upsample.up.body.{steps[0]}.weight", 4, "LESRCNN")[0]
    scale = 3 if first_out == 9 * num_feat else 2 ** len(steps)
    if scale not in LESRCNN_SCALES:
        raise CheckpointError(f"LESRCNN checkpoint has an upsampler for an unsupported scale (×{scale})")
    return dict(scale=scale, multi_scale=False, num_feat=num_feat)


ARCHITECTURE = Architecture(
    name="lesrcnn", network=LESRCNN, scale_argument="scale", scales=LESRCNN_SCALES, detect=detect_lesrcnn,
    multi_scale_argument="multi_scale", official_options={"group": 1},
)
