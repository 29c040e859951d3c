"""ArchSpec: which architecture, with which constructor arguments — a model without weights."""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .archs import ARCHITECTURES, SRNet


@dataclass(frozen=True)
class ArchSpec:
    """An architecture name plus the keyword arguments of its constructor.

    This is what detection recovers from a state dict, what safetensors metadata stores and
    what the zoo lists, so building a network never needs more than this.
    """

    arch: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.arch!r}; known: {', '.join(ARCHITECTURES)}")

    def build(self) -> SRNet:
        return ARCHITECTURES[self.arch](**self.kwargs)

    def to_json(self) -> str:
        return json.dumps({"arch": self.arch, "kwargs": dict(self.kwargs)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ArchSpec":
        data = json.loads(text)
        return cls(data["arch"], data.get("kwargs", {}))

    def describe(self) -> str:
        """``span(feature_channels=48, upscale=4)`` — for messages and tables."""
        arguments = ", ".join(f"{key}={value}" for key, value in self.kwargs.items())
        return f"{self.arch}({arguments})"
