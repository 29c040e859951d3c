"""Time positions as users read and type them: ``0:01:23.456`` and ``83.456``/``1:23.456``."""
from __future__ import annotations

import re

_CLOCK = re.compile(r"\s*(?:(?:(\d+):)?(\d+):)?(\d+(?:\.\d*)?|\.\d+)\s*")


def format_time(seconds: float) -> str:
    """``83.4567`` → ``0:01:23.457``: the form error messages and reports use."""
    milliseconds = max(round(seconds * 1000), 0)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{milliseconds / 1000:06.3f}"


def parse_time(text: str) -> float:
    """Seconds from ``83.5``, ``1:23.5`` or ``0:01:23.5``; ValueError for anything else."""
    match = _CLOCK.fullmatch(text)
    if not match:
        raise ValueError(f"expected seconds or [H:]MM:SS[.mmm], got {text!r}")
    hours, minutes, seconds = match.groups()
    if minutes is not None and float(seconds) >= 60 or hours is not None and int(minutes) >= 60:
        raise ValueError(f"expected seconds or [H:]MM:SS[.mmm] with minutes and seconds below 60, got {text!r}")
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds)
