"""A zoo card: a named model, its architecture, where its weights live and what to know about them."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..checkpoints import Checkpoint
from ..errors import ModelNotFoundError
from ..spec import ArchSpec
from .locations import WeightsLocation


@dataclass(frozen=True)
class ModelCard:
    """A named model (``name.tag``, timm style) and everything a user should know before trusting it."""

    name: str
    spec: ArchSpec
    weights: WeightsLocation
    source: str
    license: str
    training_data: str
    set5_psnr: float | None = None
    notes: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def base_name(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def tag(self) -> str:
        return self.name.split(".", 1)[1]

    def installed(self) -> bool:
        return self.weights.locate() is not None

    def load_checkpoint(self) -> Checkpoint:
        path = self.weights.locate()
        if path is None:
            raise ModelNotFoundError(f"model {self.name} is not installed: {self.weights.install_hint()}")
        return self.weights.read(path)
