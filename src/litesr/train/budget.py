"""Fit a run to a wall-clock budget (``train.time_budget``, ``litesr train --time-budget``).

A schedule that only reaches its low learning rate after the time is up wastes the run:
stopping a cosine schedule halfway leaves the weights where the learning rate was still
high. So a budgeted run measures its own speed and sets ``total_iter`` from it, keeping
the recipe's schedule shape (periods and milestones stretched in proportion):

* between :data:`MEASURE_FROM` and :data:`CALIBRATE_AT` of the budget the iteration rate
  is measured (after start-up, data loading and kernel warm-up, which a rate taken from
  the first iteration would include);
* at :data:`CALIBRATE_AT` ``total_iter`` becomes what fits :data:`SAFETY` of the time
  left — the margin pays for validations and state saves;
* until then the recipe's ``total_iter`` is provisional: the trainer doubles it (stretching
  the schedule) whenever a quarter of it has passed, so the learning rate stays near the
  schedule's start however short the recipe's length was;
* at the deadline the run stops in any case, saves a state and exports its weights.
"""
from __future__ import annotations

import math
import time

#: Fraction of the budget after which the iteration rate is measured.
MEASURE_FROM = 0.05
#: Fraction of the budget at which total_iter is fixed.
CALIBRATE_AT = 0.15
#: Share of the remaining time the calibrated schedule plans to use.
SAFETY = 0.93


class TimeBudget:
    """The clock of a budgeted run, asked once per iteration."""

    def __init__(self, seconds: float, *, calibrate: bool = True, clock=time.monotonic) -> None:
        """``calibrate=False`` (a resumed run) keeps the length the run was given: deadline only."""
        self.seconds = seconds
        self.clock = clock
        self.started = clock()
        self.mark: tuple[int, float] | None = None
        self.calibrated = not calibrate

    def elapsed(self) -> float:
        return self.clock() - self.started

    def expired(self) -> bool:
        return self.elapsed() >= self.seconds

    def calibrated_total(self, iteration: int) -> int | None:
        """The total iteration count that fits the budget, once (``None`` before and after)."""
        if self.calibrated:
            return None
        now = self.elapsed()
        if self.mark is None:
            if now >= MEASURE_FROM * self.seconds:
                self.mark = (iteration, now)
            return None
        if now < CALIBRATE_AT * self.seconds or iteration <= self.mark[0]:
            return None
        self.calibrated = True
        rate = (iteration - self.mark[0]) / (now - self.mark[1])
        remaining = max(self.seconds - now, 0.0)
        return iteration + max(1, math.floor(rate * remaining * SAFETY))

    def fitted_total(self, iteration: int, total: int) -> int | None:
        """The run's new length, when it changes: calibrated, or doubled while still measuring."""
        calibrated = self.calibrated_total(iteration)
        if calibrated is None and not self.calibrated and iteration >= total // 4:
            calibrated = 2 * total  # keep the schedule near its start until the rate is known
        return calibrated if calibrated != total else None
