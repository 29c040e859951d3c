"""The network families as plain ``torch.nn.Module`` classes, and the registry that describes them.

Each family is one module defining its network and an :class:`Architecture` (how to detect
its checkpoints, its scales, its hooks); registering it here, in detection order, is all
LiteSR needs. Other code asks the registry, never a class by name.
"""
from __future__ import annotations

from . import lesrcnn, scnet, span
from .base import SRNet
from .lesrcnn import LESRCNN
from .registry import (
    Architecture,
    UnknownArchitectureError,
    architecture_of,
    architectures,
    get_architecture,
    register,
    registered,
    unregister,
)
from .scnet import SCNet
from .span import SPAN

for _module in (scnet, span, lesrcnn):
    register(_module.ARCHITECTURE, replace=True)

__all__ = [
    "Architecture", "LESRCNN", "SCNet", "SPAN", "SRNet", "UnknownArchitectureError", "architecture_of",
    "architectures", "get_architecture", "register", "registered", "unregister",
]
