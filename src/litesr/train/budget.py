"""Fit a run to a wall-clock budget (``train.time_budget``, ``litesr train --time-budget``).

A schedule that only reaches its low learning rate after the time is up wastes the run:
stopping a cosine schedule halfway leaves the weights where the learning rate was still
high. So a budgeted run measures its own speed and sets ``total_iter`` from it, keeping
the recipe's schedule shape (periods and milestones stretched in proportion).

What the first version got wrong, and how this one avoids it (measured: one 1-minute run
stopped at 73 % unannealed, another used 61 % of its budget):

* **The clock starts with the process**, not after start-up: loading the data and
  building the network (~15 s of a 1-minute budget) is part of the budget the user gave.
* **The rate is wall-clock**, iterations per second *including* validations and state
  saves, measured after the first :data:`WARMUP_STEPS` iterations (kernel warm-up and the
  loader's first batches would skew it).
* **It is re-fitted as the run goes**, every :data:`REFIT_EVERY` of the budget until
  :data:`LAST_REFIT`, from the rate over the last :data:`RATE_WINDOWS` such intervals, so
  a machine that gets busier (or quieter) mid-run moves the end with it; the schedule is
  re-stretched each time, by small amounts after the first fit.
* **The end is planned for**: the time of the work done after the last iteration (a
  final validation, the state and the weights) is :meth:`~TimeBudget.reserve`\\ d and the
  fit plans to end at :data:`TARGET` of the budget, before the reserve.
* Until the first fit the recipe's ``total_iter`` is provisional: it is doubled whenever a
  quarter of it has passed, so the learning rate stays near the schedule's start.
* The deadline stops the run in any case (the reserve still fits after it).
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

__all__ = ["LAST_REFIT", "RATE_WINDOWS", "REFIT_EVERY", "TARGET", "WARMUP_STEPS", "TimeBudget", "process_age"]

#: Iterations after the (re)start that are not part of the measured rate.
WARMUP_STEPS = 3
#: The first fit, and each re-fit after it, comes this fraction of the budget later.
REFIT_EVERY = 0.08
#: No re-fit after this fraction of the budget: the schedule's tail is left alone.
LAST_REFIT = 0.9
#: How many of the latest re-fit intervals the rate is measured over (recent, yet spanning validations).
RATE_WINDOWS = 2
#: The fitted schedule plans to end at this share of the budget (less the reserve): the rest is
#: slack for a machine that slows down after the last re-fit.
TARGET = 0.96


def process_age() -> float:
    """Seconds since this process started (Linux ``/proc``); 0 where that cannot be read."""
    try:
        with open("/proc/self/stat", encoding="ascii") as handle:
            start_ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as handle:
            uptime = float(handle.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


class TimeBudget:
    """The clock of a budgeted run, asked once per iteration.

    ``spent`` is time already used before the clock was made: the process's start-up for a
    fresh run (:func:`process_age`), plus, for a resumed run, what the earlier sessions used
    (kept in the training state), so a run resumed after a crash still ends on budget.
    ``fitted`` says the length was already fitted once (a resumed run): no provisional
    doubling then, only re-fits.
    """

    def __init__(self, seconds: float, *, spent: float = 0.0, fitted: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self.started = clock() - spent
        self.reserved = 0.0
        self.fitted = fitted
        self._first_iteration: int | None = None
        self._marks: list[tuple[int, float]] = []  # (iteration, elapsed) at warm-up's end and at each fit
        self._next_fit = math.inf

    def elapsed(self) -> float:
        return self.clock() - self.started

    def reserve(self, seconds: float) -> None:
        """The run's end will take ``seconds`` (validation, state, export): keep them free."""
        self.reserved = max(self.reserved, seconds)

    def expired(self) -> bool:
        return self.elapsed() + self.reserved >= self.seconds

    def refit(self, iteration: int, total: int) -> int | None:
        """The run's new length when it should change (a fit, or a provisional doubling), else None."""
        now = self.elapsed()
        if self._first_iteration is None:
            self._first_iteration = iteration - 1
        if not self._marks:
            if iteration - self._first_iteration >= WARMUP_STEPS:
                self._marks.append((iteration, now))
                self._next_fit = now + REFIT_EVERY * self.seconds
            return self._provisional(iteration, total)
        if now < self._next_fit or now > LAST_REFIT * self.seconds or iteration <= self._marks[-1][0]:
            return self._provisional(iteration, total)
        self._next_fit = now + REFIT_EVERY * self.seconds
        self.fitted = True
        since_iteration, since = self._marks[-RATE_WINDOWS:][0]
        self._marks.append((iteration, now))
        rate = (iteration - since_iteration) / (now - since)
        left = max(TARGET * self.seconds - self.reserved - now, 0.0)
        fitted = iteration + max(1, math.floor(rate * left))
        return fitted if fitted != total else None

    def _provisional(self, iteration: int, total: int) -> int | None:
        if not self.fitted and iteration >= total // 4:
            return 2 * total  # keep the schedule near its start until the rate is known
        return None
