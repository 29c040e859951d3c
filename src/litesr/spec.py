"""ArchSpec: which architecture, with which constructor arguments — a model without weights."""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .archs import Architecture, SRNet, get_architecture
from .errors import ConfigurationError


@dataclass(frozen=True)
class ArchSpec:
    """An architecture name plus the keyword arguments of its constructor.

    This is what detection recovers from a state dict, what safetensors metadata stores and
    what the zoo lists, so building a network never needs more than this.
    """

    arch: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        get_architecture(self.arch)  # an unknown name fails here, with the known ones listed

    @property
    def architecture(self) -> Architecture:
        return get_architecture(self.arch)

    @property
    def scales(self) -> tuple[int, ...]:
        """The factors the network serves, known without building it."""
        return self.architecture.served_scales(self.kwargs)

    def build(self) -> SRNet:
        try:
            return self.architecture.build(self.kwargs)
        except TypeError as error:  # an argument the constructor does not take
            raise ConfigurationError(f"cannot build {self.describe()}: {error}") from None

    def for_network(self, net: SRNet) -> "ArchSpec":
        """This spec as ``net`` is now: a network switched to its deploy form rebuilds in that form."""
        return ArchSpec(self.arch, net.current_kwargs(self.kwargs))

    def to_json(self) -> str:
        return json.dumps({"arch": self.arch, "kwargs": dict(self.kwargs)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ArchSpec":
        """Parse LiteSR's metadata; anything malformed is a :class:`ConfigurationError`."""
        try:
            data = json.loads(text)
        except (ValueError, TypeError) as error:
            raise ConfigurationError(f"the architecture metadata is not JSON ({error})") from None
        if not isinstance(data, dict) or not isinstance(data.get("arch"), str):
            raise ConfigurationError("the architecture metadata names no 'arch'")
        kwargs = data.get("kwargs", {})
        if not isinstance(kwargs, dict) or not all(isinstance(key, str) for key in kwargs):
            raise ConfigurationError("the architecture metadata's 'kwargs' is not a mapping of argument names")
        return cls(data["arch"], kwargs)

    def describe(self) -> str:
        """``span(feature_channels=48, upscale=4)`` — for messages and tables."""
        arguments = ", ".join(f"{key}={value}" for key, value in self.kwargs.items())
        return f"{self.arch}({arguments})"
