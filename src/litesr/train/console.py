"""What a training run says on the console: a clean log, one line per event, rank 0 only.

A run you can leave alone must say up front what it is about to do (data, what was
skipped and why, precision, device, planned length and time), then report progress from
the first iteration (not only after ``print_freq`` steps), each validation, every change of
plan (a time budget's re-fit), and how it ended — finished, stopped by ``--stop-at`` or by
the budget — with where the weights and the state are. Lines go through ``tqdm.write`` so a
progress bar, when shown, stays below them; library warnings that would repeat these facts
with source lines attached (skipped images, the DataLoader's worker count) are silenced
by the trainer and reported here instead.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from tqdm.auto import tqdm

__all__ = ["RunConsole", "format_duration"]


def format_duration(seconds: float) -> str:
    """``42 s``, ``7m05s``, ``1h48m``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class RunConsole:
    """Console lines of one run; silent when ``enabled`` is false (other ranks, ``--quiet``)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def line(self, text: str) -> None:
        if self.enabled:
            tqdm.write(text, file=sys.stderr)

    def start(self, title: str, details: Sequence[str]) -> None:
        self.line(title)
        for detail in details:
            self.line(f"  {detail}")

    def progress(self, iteration: int, total: int, loss: float, lr: float, rate: float, eta: float | None) -> None:
        eta_text = f", ETA {format_duration(eta)}" if eta is not None else ""
        self.line(f"[iter {iteration}/{total}] loss {loss:.4f}, lr {lr:.2e}, {rate:.2f} it/s{eta_text}")

    def event(self, iteration: int, text: str) -> None:
        self.line(f"[iter {iteration}] {text}")
