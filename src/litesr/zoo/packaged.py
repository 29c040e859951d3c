"""Cards of the weights this project trained and ships (``litesr/weights/<name>.json``)."""
from __future__ import annotations

import json
from importlib import resources

from ..spec import ArchSpec
from .card import ModelCard
from .locations import WeightsLocation

#: JSON keys that fill a card's fields; any other key is kept in ``ModelCard.extra``.
CARD_FIELDS = frozenset({"name", "arch", "kwargs", "file", "source", "license", "training_data", "set5_psnr", "notes"})


def packaged_cards() -> list[ModelCard]:
    """Cards of the weights shipped inside litesr, one JSON file each.

    Each JSON card names its safetensors file and records how the weights were made
    (recipe, iterations, hardware, hours) and what they measure; see scripts/ship_weights.py.
    """
    folder = resources.files("litesr") / "weights"
    if not folder.is_dir():
        return []
    cards = []
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if not entry.name.endswith(".json"):
            continue
        data = json.loads(entry.read_text())
        extra = {key: json.dumps(value) if not isinstance(value, str) else value
                 for key, value in data.items() if key not in CARD_FIELDS}
        cards.append(ModelCard(
            data["name"], ArchSpec(data["arch"], data["kwargs"]), WeightsLocation("packaged", data["file"]),
            data["source"], data["license"], data["training_data"], data.get("set5_psnr"), data.get("notes", ""),
            extra,
        ))
    return cards
