"""Exponential moving average of a network's weights (BasicSR's ``ema_decay``).

SR papers report the EMA weights (saved as ``params_ema``): they are smoother than the raw
weights and typically score a little higher, for free.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEMA:
    """Keeps ``shadow = decay·shadow + (1 − decay)·weights`` after every optimiser step."""

    def __init__(self, net: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.shadow = copy.deepcopy(net).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        current = net.state_dict()
        for key, value in self.shadow.state_dict().items():
            source = current[key]
            if value.dtype.is_floating_point:
                value.lerp_(source.detach(), 1.0 - self.decay)
            else:
                value.copy_(source)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.shadow.load_state_dict(state)
