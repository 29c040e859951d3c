"""Small tools the per-architecture detectors share: reading hyper-parameters off keys and shapes.

Published checkpoints rarely say what they are, so each family's ``detect`` reads its
fingerprint (key names) and its hyper-parameters (tensor shapes) with these helpers.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping

import torch

from ..errors import CheckpointError

StateDict = Mapping[str, torch.Tensor]


def indices(state_dict: StateDict, pattern: str) -> list[int]:
    """Sorted integers captured by ``pattern`` (one group) over all keys."""
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for key in state_dict if (m := regex.fullmatch(key))})


def square_root(value: int) -> int | None:
    """The integer square root of ``value`` when it is a perfect square (pixel-shuffle factors)."""
    if value < 0:
        return None
    root = math.isqrt(value)
    return root if root * root == value else None


def shape(state_dict: StateDict, key: str, rank: int, family: str) -> tuple[int, ...]:
    """The shape of ``state_dict[key]``, refusing a missing key or a tensor of another rank.

    Detectors read hyper-parameters from shapes; a damaged file (a 1-D conv weight, a
    missing upsampler) must end in a sentence naming the key, not an IndexError.
    """
    tensor = state_dict.get(key)
    if tensor is None:
        raise CheckpointError(f"{family} checkpoint lacks {key!r}")
    if not isinstance(tensor, torch.Tensor) or tensor.dim() != rank:
        found = f"{tensor.dim()}-D" if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise CheckpointError(f"{family} checkpoint's {key!r} should be a {rank}-D tensor, found {found}")
    if any(size == 0 for size in tensor.shape):
        raise CheckpointError(f"{family} checkpoint's {key!r} is empty (shape {tuple(tensor.shape)})")
    return tuple(tensor.shape)


def ambiguous_scale(family: str, candidates: tuple[int, ...], hint: int | None) -> int:
    """The hint when the weights leave the scale open between ``candidates``, else a clear error."""
    if hint in candidates:
        return hint
    options = " or ".join(f"×{s}" for s in candidates)
    given = f" (the hint ×{hint} is not one of them)" if hint is not None else ""
    raise CheckpointError(
        f"this {family} checkpoint could be {options}: its weights do not fix the scale{given}; "
        "pass the scale explicitly (e.g. --scale 2), or name the file with x2/x3"
    )
