"""The three architectures as plain ``torch.nn.Module`` classes (no I/O, no registry side effects)."""
from __future__ import annotations

from types import MappingProxyType

from .base import SRNet
from .lesrcnn import LESRCNN
from .scnet import SCNet
from .span import SPAN

#: Architecture name → class. Read-only: adding an architecture is a code change here.
ARCHITECTURES: MappingProxyType[str, type[SRNet]] = MappingProxyType(
    {"scnet": SCNet, "span": SPAN, "lesrcnn": LESRCNN}
)

__all__ = ["ARCHITECTURES", "LESRCNN", "SCNet", "SPAN", "SRNet"]
