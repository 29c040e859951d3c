"""Validation of the scale lists that training data, samplers and loaders are given.

One function so that every place that takes ``scales`` rejects the same mistakes with the
same words (a config typo such as ``scales: [2, 2]`` or ``[0]`` must not surface later as
an odd sampler or division error).
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .files import DataError

__all__ = ["check_scales"]


def check_scales(scales: Iterable[int], what: str = "scales") -> list[int]:
    """``scales`` as a list of plain ints; :class:`DataError` unless all are distinct and positive.

    ``what`` names the setting in the message (e.g. ``"dataroot_lq scales"``).
    """
    out = []
    for s in scales:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
            raise DataError(f"{what} must be positive integers, got {s!r}")
        out.append(int(s))
    if not out:
        raise DataError(f"{what} is empty; give at least one scale")
    if len(set(out)) != len(out):
        raise DataError(f"{what} has duplicates: {out}")
    return out
