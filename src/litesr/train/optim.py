"""Optimisers and learning-rate schedules named as in BasicSR option files.

Schedules are pure functions of the iteration (a ``LambdaLR``), so resuming restores them
exactly from the iteration count, and warm-up composes with any of them.
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Sequence

import torch

Schedule = Callable[[int], float]


def build_optimizer(kind: str, params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float = 0.0,
                    betas: Sequence[float] = (0.9, 0.999)) -> torch.optim.Optimizer:
    optimizers = {"Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW}
    if kind not in optimizers:
        raise ValueError(f"unknown optimizer {kind!r}; use Adam or AdamW")
    return optimizers[kind](params, lr=lr, weight_decay=weight_decay, betas=tuple(betas))


def multistep(milestones: Sequence[int], gamma: float) -> Schedule:
    """×gamma at each milestone (MultiStepLR)."""
    ordered = sorted(milestones)
    return lambda it: gamma ** bisect.bisect_right(ordered, it)


def cosine_restarts(periods: Sequence[int], restart_weights: Sequence[float], eta_min_ratio: float) -> Schedule:
    """Cosine annealing within each period, restarting at ``restart_weights`` (BasicSR's CosineAnnealingRestartLR)."""
    if not periods:
        raise ValueError("CosineAnnealingRestartLR needs at least one period")
    weights = list(restart_weights) or [1.0] * len(periods)
    if len(weights) != len(periods):
        raise ValueError("CosineAnnealingRestartLR: periods and restart_weights differ in length")
    ends = [sum(periods[:i + 1]) for i in range(len(periods))]

    def factor(it: int) -> float:
        index = min(bisect.bisect_right(ends, it), len(periods) - 1)
        start = ends[index] - periods[index]
        progress = min((it - start) / periods[index], 1.0)
        return eta_min_ratio + weights[index] * (1 - eta_min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def with_warmup(schedule: Schedule, warmup_iter: int) -> Schedule:
    """Linear warm-up over the first ``warmup_iter`` iterations (none when ≤ 0)."""
    if warmup_iter <= 0:
        return schedule
    return lambda it: schedule(it) * min(1.0, (it + 1) / warmup_iter)


def build_scheduler(optimizer: torch.optim.Optimizer, schedule: Schedule) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
