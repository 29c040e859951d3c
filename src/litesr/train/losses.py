"""Pixel losses of the SR literature (BasicSR's ``pixel_opt`` types)."""
from __future__ import annotations

import torch
from torch import nn


class CharbonnierLoss(nn.Module):
    """``mean(sqrt((x - y)² + eps))``: an L1 that is smooth at zero (BasicSR's definition)."""

    def __init__(self, eps: float = 1e-12, reduction: str = "mean") -> None:
        super().__init__()
        self.eps, self.reduction = eps, reduction

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = torch.sqrt((prediction - target) ** 2 + self.eps)
        return loss.mean() if self.reduction == "mean" else loss.sum()


class WeightedLoss(nn.Module):
    """A loss scaled by ``loss_weight`` (BasicSR option files always carry one)."""

    def __init__(self, loss: nn.Module, weight: float) -> None:
        super().__init__()
        self.loss, self.weight = loss, weight

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.weight * self.loss(prediction, target)


def build_pixel_loss(kind: str, loss_weight: float = 1.0, reduction: str = "mean", eps: float = 1e-12) -> nn.Module:
    """``L1Loss``, ``MSELoss`` or ``CharbonnierLoss`` as named in BasicSR option files."""
    losses = {
        "L1Loss": lambda: nn.L1Loss(reduction=reduction),
        "MSELoss": lambda: nn.MSELoss(reduction=reduction),
        "CharbonnierLoss": lambda: CharbonnierLoss(eps, reduction),
    }
    if kind not in losses:
        raise ValueError(f"unknown pixel loss {kind!r}; use one of {', '.join(losses)}")
    return WeightedLoss(losses[kind](), loss_weight)
