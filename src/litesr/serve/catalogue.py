"""Which models a server offers, what the page shows about each, and loading each once.

A client names a model only by a name from this catalogue: the installed zoo models plus
the one the server was started with (``-m``/``-w``). Nothing a client sends is ever
treated as a path, so a zoo model is loaded from its card (:func:`load_card`), never
through :func:`litesr.load`, which would first look for a file of that name.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from .. import load_card as load_zoo_card
from ..errors import ModelNotFoundError
from ..model import SRModel
from ..spec import ArchSpec
from ..tracing import count_parameters, trace_shapes
from ..zoo import ZOO, ModelCard, list_models, resolve
from .errors import BadRequestError

#: (upper bound of multiply-accumulates per input pixel, class): the page's speed hint.
#: SCNet-T and SPAN-ch28 are "fast", the paper-size SPANs "medium", LESRCNN "slow".
SPEED_CLASSES: tuple[tuple[int, str], ...] = ((250_000, "fast"), (1_000_000, "medium"))
SLOWEST_CLASS = "slow"
#: Models kept loaded besides the server's default one (least recently used goes first).
LOADED_MODELS = 4
#: Side of the (shape-only) input traced to count a network's cost.
_TRACE_SIDE = 8


def speed_class(macs_per_pixel: float) -> str:
    """``fast``, ``medium`` or ``slow`` for a network's multiply-accumulates per input pixel."""
    return next((name for bound, name in SPEED_CLASSES if macs_per_pixel < bound), SLOWEST_CLASS)


@dataclass(frozen=True)
class NetworkFacts:
    """What building a network tells: its size, its default scale and its cost at each scale."""

    parameters: int
    default_scale: int
    macs_per_pixel: dict[int, float]


@lru_cache(maxsize=64)
def _network_facts(spec_json: str) -> NetworkFacts:
    """Facts of a spec, computed once per process (tracing is on the meta device, no weights)."""
    net = ArchSpec.from_json(spec_json).build()
    area = _TRACE_SIDE * _TRACE_SIDE
    costs = {scale: sum(record.macs for record in trace_shapes(net, (_TRACE_SIDE, _TRACE_SIDE), scale)) / area
             for scale in net.scales}
    return NetworkFacts(count_parameters(net), net.check_scale(None), costs)


@dataclass(frozen=True)
class ModelEntry:
    """One model a client may ask for: its name, its architecture and the card's facts."""

    name: str
    spec: ArchSpec
    card: ModelCard | None = None

    @property
    def scales(self) -> tuple[int, ...]:
        return self.spec.scales

    def describe(self, *, default: bool) -> dict[str, Any]:
        """The JSON of ``GET /api/models``: name, scales, Set5 PSNR and a speed class per scale."""
        facts = _network_facts(self.spec.to_json())
        return {
            "name": self.name,
            "arch": self.spec.arch,
            "scales": list(facts.macs_per_pixel),
            "default_scale": facts.default_scale,
            "parameters": facts.parameters,
            "set5_psnr": self.card.set5_psnr if self.card else None,
            "speed": speed_class(facts.macs_per_pixel[facts.default_scale]),
            "speed_by_scale": {str(scale): speed_class(cost) for scale, cost in facts.macs_per_pixel.items()},
            "macs_per_pixel": {str(scale): round(cost) for scale, cost in facts.macs_per_pixel.items()},
            "license": self.card.license if self.card else None,
            "source": self.card.source if self.card else None,
            "notes": self.card.notes if self.card else "",
            "default": default,
        }


def load_card(card: ModelCard, device: torch.device) -> SRModel:
    """A zoo model from its card alone, deployed on ``device``."""
    return load_zoo_card(card, device=device).deploy()


class ModelCatalogue:
    """The models a server offers, loaded on first use and kept (a few at a time).

    The default model is loaded before the server starts (a bad ``-m`` fails at once) and
    never evicted. :meth:`model` is meant to be called on the device's worker thread, so
    loading, like running, happens one at a time; the lock only guards the cache itself.
    """

    def __init__(self, default_model: SRModel, default_name: str, device: torch.device,
                 *, loaded_models: int = LOADED_MODELS) -> None:
        self.default_name = default_name
        self._device = device
        self._capacity = loaded_models
        self._entries: dict[str, ModelEntry] = {
            name: ModelEntry(name, ZOO[name].spec, ZOO[name]) for name in list_models(installed_only=True)}
        self._entries[default_name] = ModelEntry(default_name, default_model.spec, ZOO.get(default_name))
        self._default_model = default_model
        self._loaded: OrderedDict[str, SRModel] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return list(self._entries)

    def entry(self, name: str | None) -> ModelEntry:
        """The entry a client asked for (the default for an empty name); 400 for anything else.

        A bare zoo name (``scnet-t-x2``) picks the best installed tag, as ``litesr.load`` does.
        """
        if not name:
            return self._entries[self.default_name]
        if name in self._entries:
            return self._entries[name]
        try:
            card = resolve(name)
        except ModelNotFoundError:
            card = None
        if card is not None and card.name in self._entries:
            return self._entries[card.name]
        raise BadRequestError(f"unknown model {name!r}: GET /api/models lists the {len(self._entries)} served here")

    def describe(self) -> list[dict[str, Any]]:
        return [entry.describe(default=name == self.default_name) for name, entry in self._entries.items()]

    def model(self, entry: ModelEntry) -> SRModel:
        """The loaded model of ``entry``: from the cache, or loaded now (least recently used evicted)."""
        if entry.name == self.default_name:
            return self._default_model
        with self._lock:
            if entry.name in self._loaded:
                self._loaded.move_to_end(entry.name)
                return self._loaded[entry.name]
        assert entry.card is not None  # every entry but the default one comes from the zoo
        model = load_card(entry.card, self._device)
        with self._lock:
            self._loaded[entry.name] = model
            while len(self._loaded) > self._capacity:
                self._loaded.popitem(last=False)
        return model
