"""Recover the architecture and all its hyper-parameters from a state dict's keys and shapes.

Each registered family's ``detect`` reads its own fingerprint (see ``litesr.archs``); this
asks them in registration order, so a user can load any published checkpoint without naming
the architecture.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch

from .archs import architectures
from .errors import CheckpointError
from .spec import ArchSpec

StateDict = Mapping[str, torch.Tensor]


def detect_architecture(state_dict: StateDict, scale_hint: int | None = None) -> ArchSpec:
    """Return the :class:`ArchSpec` that ``state_dict`` was saved from.

    ``scale_hint`` (from metadata, a file name or the user) is consulted only where the
    weights leave the scale open. Raises :class:`CheckpointError` naming the keys seen when
    no family matches.
    """
    families = architectures()
    for architecture in families:
        kwargs = architecture.detect(state_dict, scale_hint)
        if kwargs is not None:
            return ArchSpec(architecture.name, kwargs)
    sample = ", ".join(repr(key) for key in list(state_dict)[:6])
    known = ", ".join(a.display_name for a in families)
    raise CheckpointError(f"unrecognised architecture: the {len(state_dict)} keys (e.g. {sample}) match none of {known}")
