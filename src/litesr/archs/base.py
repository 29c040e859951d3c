"""The contract every LiteSR network honours, whatever its family."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from ..errors import ScaleError


class SRNet(nn.Module):
    """Base class of the architectures: exposes the scales served and a one-way deploy switch.

    ``scales`` lists every factor the network can produce (one for single-scale models);
    ``scale`` is the default one. :meth:`fuse` turns the training form into the deploy form
    in place and is idempotent; both forms compute the same function.
    """

    scales: tuple[int, ...]

    #: Keep activations fp32 between layers under bf16/fp16 autocast even when not compiled
    #: (where it costs an extra cast per layer): for networks measurably hurt otherwise.
    float_activations_in_reduced_precision: bool = False

    def precision_sensitive_layers(self) -> list[nn.Module]:
        """Layers to keep in fp32 under reduced precision besides the image-facing ones."""
        return []

    @property
    def scale(self) -> int:
        return self.scales[-1]

    @property
    def receptive_radius(self) -> int:
        """How far (in input pixels) an output pixel can see; tiles padded by this are seamless."""
        raise NotImplementedError

    @property
    def deployed(self) -> bool:
        return getattr(self, "_deployed", False)

    def current_kwargs(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Constructor arguments that rebuild this network in its *current* form.

        Architectures whose deploy form is a different structure (SPAN's fused convs)
        override this; for the others the form does not change the arguments.
        """
        return dict(kwargs)

    def fuse(self) -> "SRNet":
        """Switch to the inference form once (subclasses fold what they can)."""
        self._deployed = True
        return self

    def check_scale(self, scale: int | None) -> int:
        """Resolve a requested scale, refusing one the network cannot produce."""
        return served_scale(self.scales, scale, type(self).__name__)


def served_scale(scales: tuple[int, ...], scale: int | None, owner: str) -> int:
    """``scale`` if ``owner`` serves it (its default, the last of ``scales``, for ``None``).

    The one rule for networks and for runners without one (ONNX Runtime).
    """
    if scale is None:
        return scales[-1]
    if scale not in scales:
        raise ScaleError(f"{owner} serves {', '.join(f'×{s}' for s in scales)}, not ×{scale}")
    return scale
