"""The in-memory form of an ncnn model: layers in file order, each with its parameters and weights.

Kept apart from the parsers so that code which only walks a graph (the SPAN converter)
depends on this shape, not on how the ``.param``/``.bin`` bytes were decoded.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np

#: The first line of every text ``.param`` file.
NCNN_MAGIC = 7767517

ParamValue = Union[int, float, str, list]


@dataclass
class NcnnLayer:
    """One line of a ``.param`` graph plus the weights the ``.bin`` holds for it.

    ``params`` maps the ncnn parameter id to its value; array parameters (written with
    keys ``-23300 - id`` in the file) are stored under their decoded id as Python lists.
    ``weights`` maps a role (``"weight"``, ``"bias"``, ``"data"``) to a float32 numpy array;
    ``storage`` records how each was stored in the file (``"float16"`` or ``"float32"``),
    because fp16 storage limits the precision of anything derived from it.
    """

    type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[int, ParamValue] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    storage: dict[str, str] = field(default_factory=dict)

    def p(self, key: int, default: ParamValue) -> ParamValue:
        """Parameter ``key`` with ncnn's default when the line omits it."""
        return self.params.get(key, default)


@dataclass
class NcnnGraph:
    """A parsed ncnn model: its layers in file order and the blob count from the header."""

    layers: list[NcnnLayer]
    blob_count: int
    param_path: Path | None = None
    bin_path: Path | None = None

    @property
    def source(self) -> str:
        """What to name in an error about this graph: its ``.param`` file when it has one."""
        return str(self.param_path) if self.param_path is not None else "ncnn graph"

    def producer(self) -> dict[str, NcnnLayer]:
        """Map each blob name to the layer that writes it."""
        return {b: layer for layer in self.layers for b in layer.outputs}

    def consumers(self) -> dict[str, list[NcnnLayer]]:
        """Map each blob name to the layers that read it (in graph order)."""
        out: dict[str, list[NcnnLayer]] = {}
        for layer in self.layers:
            for b in layer.inputs:
                out.setdefault(b, []).append(layer)
        return out

    def layer(self, name: str) -> NcnnLayer:
        """The layer called ``name`` (KeyError if there is none)."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)
