"""The architecture registry: one typed :class:`Architecture` per family, in detection order.

Everything LiteSR does with a family beyond running it — recognising its checkpoints,
building it from a spec or a training config, preparing a state dict for a strict load,
initialising it for training — is read from its :class:`Architecture`, so adding a family
is one module (``archs/<name>.py`` defining the network and its ``ARCHITECTURE``) plus one
:func:`register` call. Nothing elsewhere names a family or checks ``isinstance``.

The deploy form is a property of the network class itself: :meth:`SRNet.fuse` switches to
it and :meth:`SRNet.current_kwargs` says how to rebuild it.
"""
from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch

from ..errors import ConfigurationError, LiteSRError
from .base import SRNet

StateDict = Mapping[str, torch.Tensor]
#: ``detect(state_dict, scale_hint)``: the constructor kwargs the weights were saved from,
#: or None when the keys are not this family's. Raises CheckpointError for a damaged member.
Detector = Callable[[StateDict, "int | None"], "dict[str, Any] | None"]
#: Fills entries a file may legitimately omit (derived weights) before the strict load.
StateDictHook = Callable[[SRNet, dict[str, torch.Tensor]], dict[str, torch.Tensor]]
#: Re-initialises a freshly built network in place for training from scratch.
WeightInit = Callable[[SRNet], SRNet]


class UnknownArchitectureError(ConfigurationError):
    """An architecture name that no registered family answers to."""


def _no_state_dict_changes(net: SRNet, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return state_dict


def _nothing_after_load(net: SRNet) -> None:
    return None


@dataclass(frozen=True)
class Architecture:
    """Everything LiteSR needs to know about one network family.

    ``name`` is the registry key written into safetensors metadata (lower case);
    ``display_name`` the ``network_g: type`` of BasicSR option files. ``scale_argument``
    is the constructor argument holding the factor, ``scales`` the factors it can be built
    for; ``multi_scale_argument`` names a bool argument that makes one network serve all of
    them (then the scale argument is ignored). ``official_options`` are BasicSR keys of the
    official implementation that LiteSR accepts in option files only at these values.
    """

    name: str
    network: type[SRNet]
    scale_argument: str
    scales: tuple[int, ...]
    detect: Detector
    display_name: str = ""
    multi_scale_argument: str | None = None
    official_options: Mapping[str, Any] = field(default_factory=dict)
    prepare_state_dict: StateDictHook = _no_state_dict_changes
    after_load: Callable[[SRNet], None] = _nothing_after_load
    weight_inits: Mapping[str, WeightInit] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.lower():
            raise ValueError(f"architecture names are lower case, got {self.name!r}")
        if not self.display_name:
            object.__setattr__(self, "display_name", self.network.__name__)
        if self.scale_argument not in self.parameters():
            raise ValueError(f"{self.network.__name__} has no constructor argument {self.scale_argument!r}")

    def parameters(self) -> dict[str, inspect.Parameter]:
        """The constructor's keyword arguments: the schema of ``network_g`` and of a spec."""
        signature = inspect.signature(self.network.__init__)
        return {name: p for name, p in signature.parameters.items()
                if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}

    def argument_types(self) -> dict[str, Any]:
        """Each constructor argument's annotation, resolved (string annotations included)."""
        hints = typing.get_type_hints(self.network.__init__)
        return {name: hints.get(name, Any) for name in self.parameters()}

    def defaults(self) -> dict[str, Any]:
        return {name: p.default for name, p in self.parameters().items() if p.default is not p.empty}

    def build(self, kwargs: Mapping[str, Any]) -> SRNet:
        return self.network(**kwargs)

    def served_scales(self, kwargs: Mapping[str, Any]) -> tuple[int, ...]:
        """The factors a network built from ``kwargs`` serves, without building it."""
        if self.multi_scale_argument and kwargs.get(self.multi_scale_argument):
            return self.scales
        scale = kwargs.get(self.scale_argument, self.defaults().get(self.scale_argument))
        return (scale,) if isinstance(scale, int) else ()

    def weight_init(self, scheme: str) -> WeightInit | None:
        """The training init ``scheme`` (None for ``official``: the constructor's own)."""
        if scheme == "official":
            return None
        if scheme not in self.weight_inits:
            available = ", ".join(["official", *self.weight_inits])
            raise LiteSRError(f"weight_init {scheme!r} is not implemented for {self.display_name}; "
                              f"available: {available}")
        return self.weight_inits[scheme]


_REGISTRY: dict[str, Architecture] = {}


def register(architecture: Architecture, *, replace: bool = False) -> Architecture:
    """Add a family; detection tries families in registration order.

    Registering a name twice is an error unless ``replace`` (for tests and plugins that
    deliberately override a family).
    """
    if architecture.name in _REGISTRY and not replace:
        raise ValueError(f"architecture {architecture.name!r} is already registered")
    _REGISTRY[architecture.name] = architecture
    return architecture


def unregister(name: str) -> None:
    """Remove a family (for tests that register a temporary one)."""
    _REGISTRY.pop(name, None)


def architectures() -> tuple[Architecture, ...]:
    """Every registered family, in detection order."""
    return tuple(_REGISTRY.values())


def registered() -> Mapping[str, Architecture]:
    """A read-only view of the registry by name."""
    return MappingProxyType(_REGISTRY)


def get_architecture(name: str) -> Architecture:
    """The family called ``name`` (its registry or display name, any case)."""
    key = str(name).lower()
    if key in _REGISTRY:
        return _REGISTRY[key]
    for architecture in _REGISTRY.values():
        if architecture.display_name.lower() == key:
            return architecture
    known = ", ".join(a.display_name for a in _REGISTRY.values())
    raise UnknownArchitectureError(f"unknown architecture {name!r}; LiteSR knows {known}")


def architecture_of(net: SRNet) -> Architecture:
    """The registered family a network instance belongs to (most specific class first)."""
    for cls in type(net).__mro__:
        for architecture in _REGISTRY.values():
            if architecture.network is cls:
                return architecture
    raise UnknownArchitectureError(f"{type(net).__name__} is not a registered architecture")
