"""Weight initialisations for training from scratch.

``official`` keeps each architecture's own init (its constructor's). Other schemes belong to
an architecture (``Architecture.weight_inits``): SCNet's ``residual`` init, which a CPU
training budget needs, is defined and measured in :mod:`litesr.archs.scnet`.
"""
from __future__ import annotations

from ..archs import SRNet, architecture_of


def apply_weight_init(net: SRNet, scheme: str) -> SRNet:
    """Re-initialise ``net`` in place with ``scheme`` (``official`` leaves it as built)."""
    initialise = architecture_of(net).weight_init(scheme)
    return net if initialise is None else initialise(net)
