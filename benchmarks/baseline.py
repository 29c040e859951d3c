"""The straightforward forward passes LiteSR's deploy path is measured against.

Each reproduces what the official code does at inference time, on a copy of a LiteSR
network (same weights, same keys):

* SPAN — the official ``Conv3XC`` in eval mode recomputes its fused 3×3 kernel from the
  branches (``update_params``, three ``F.conv2d`` calls on the weights) on *every*
  forward, then runs it;
* SCNet — the official ``Shift8`` allocates a zero-filled output and writes eight slices;
* LESRCNN — the network as written (it has nothing to fuse).

All in NCHW fp32 under ``torch.no_grad`` — the way the papers' test scripts run them.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from litesr.archs import SRNet
from litesr.archs.blocks import SHIFT8_OFFSETS, Conv3XC, Shift8


def official_update_params(layer: Conv3XC) -> tuple[torch.Tensor, torch.Tensor]:
    """SPAN's ``Conv3XC.update_params`` (hongyuanyu/SPAN), returning the fused weight and bias."""
    w1, b1 = layer.conv[0].weight.data.clone().detach(), layer.conv[0].bias.data.clone().detach()
    w2, b2 = layer.conv[1].weight.data.clone().detach(), layer.conv[1].bias.data.clone().detach()
    w3, b3 = layer.conv[2].weight.data.clone().detach(), layer.conv[2].bias.data.clone().detach()
    w = F.conv2d(w1.flip(2, 3).permute(1, 0, 2, 3), w2, padding=2, stride=1).flip(2, 3).permute(1, 0, 2, 3)
    b = (w2 * b1.reshape(1, -1, 1, 1)).sum((1, 2, 3)) + b2
    weight = F.conv2d(w.flip(2, 3).permute(1, 0, 2, 3), w3, padding=0, stride=1).flip(2, 3).permute(1, 0, 2, 3)
    bias = (w3 * b.reshape(1, -1, 1, 1)).sum((1, 2, 3)) + b3
    sk_w, sk_b = layer.sk.weight.data.clone().detach(), layer.sk.bias.data.clone().detach()
    sk_w = F.pad(sk_w, [1, 1, 1, 1])
    return weight + sk_w, bias + sk_b


class OfficialConv3XC(nn.Module):
    """Eval-mode forward of the official Conv3XC: fuse, then convolve — every call."""

    def __init__(self, layer: Conv3XC) -> None:
        super().__init__()
        if layer.deployed:
            raise ValueError("the official forward needs the training form (branches), not a fused layer")
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = official_update_params(self.layer)
        self.layer.eval_conv.weight.data, self.layer.eval_conv.bias.data = weight, bias
        return self.layer.eval_conv(x)


def official_shift8(x: torch.Tensor) -> torch.Tensor:
    """SCNet's reference shift: a zero-filled tensor and eight slice writes."""
    out = torch.zeros_like(x)
    group = x.shape[1] // 8
    height, width = x.shape[-2:]
    for k, (dy, dx) in enumerate(SHIFT8_OFFSETS):
        rows_in, rows_out = ((slice(dy, height), slice(0, height - dy)) if dy >= 0
                             else (slice(0, height + dy), slice(-dy, height)))
        cols_in, cols_out = ((slice(dx, width), slice(0, width - dx)) if dx >= 0
                             else (slice(0, width + dx), slice(-dx, width)))
        out[:, k * group:(k + 1) * group, rows_out, cols_out] = x[:, k * group:(k + 1) * group, rows_in, cols_in]
    return out


class OfficialShift8(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return official_shift8(x)


def _replace(net: nn.Module, kind: type[nn.Module], make) -> None:
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, kind):
                setattr(parent, name, make(child))


def straightforward(net: SRNet) -> SRNet:
    """A copy of ``net`` (training form) that runs the way the official inference code does."""
    baseline = copy.deepcopy(net).eval()
    _replace(baseline, Conv3XC, OfficialConv3XC)
    _replace(baseline, Shift8, lambda _: OfficialShift8())
    return baseline
