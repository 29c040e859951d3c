"""LiteSR: lightweight single-image super-resolution (SCNet, SPAN, LESRCNN).

Three lines do the main job::

    import litesr
    model = litesr.load("span-x4")          # a zoo name, or the path of any checkpoint
    big = model.upscale(image)              # numpy H×W×3 uint8 or PIL image
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .checkpoints import CHECKPOINT_SUFFIXES, build_network, read_checkpoint
from .errors import CheckpointError, LiteSRError, ModelNotFoundError
from .model import SRModel
from .spec import ArchSpec
from .zoo import ModelCard, list_models, resolve

__version__ = "0.1.0"


def load(path_or_name: str | os.PathLike[str], device: str | torch.device = "cpu", scale: int | None = None) -> SRModel:
    """Load a model from a checkpoint file (any supported format) or a zoo name.

    A path that exists is read as a checkpoint and its architecture is detected from the
    weights; anything else is looked up in the zoo (``span-x4`` picks the best installed
    weights for that name, ``span-x4.official`` a specific one). ``scale`` is needed only
    for the rare checkpoint whose weights do not fix it.
    """
    path = Path(path_or_name)
    if path.exists():
        net, spec = build_network(read_checkpoint(path), scale=scale)
        return SRModel(net, spec, source=str(path)).to(device)
    if path.suffix.lower() in CHECKPOINT_SUFFIXES or len(path.parts) > 1:
        raise CheckpointError(f"{path}: no such file")
    return load_card(resolve(str(path_or_name)), device=device, scale=scale)


def load_card(card: ModelCard, device: str | torch.device = "cpu", scale: int | None = None) -> SRModel:
    """Load a zoo model from its card alone — never a file a caller names (what a server needs)."""
    net, spec = build_network(card.load_checkpoint(), scale=scale)
    return SRModel(net, spec, name=card.name, source=card.source).to(device)


__all__ = [
    "ArchSpec", "CheckpointError", "LiteSRError", "ModelCard", "ModelNotFoundError", "SRModel",
    "list_models", "load", "load_card", "__version__",
]
