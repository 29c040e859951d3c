"""Crash-safe training checkpoints: everything needed to continue exactly, written atomically.

A checkpoint holds the network, its EMA, the optimiser and scheduler, the iteration, the
best validation score and the RNG states. It is written to a temp file and renamed, so a
process killed at any moment — even mid-save — leaves the previous checkpoint intact, and
it contains only tensors and plain containers, so it loads with ``weights_only=True``.
"""
from __future__ import annotations

import io
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError
from ..imaging.atomic import atomic_write

STATE_NAME = "iter_{:08d}.state"
STATE_PATTERN = re.compile(r"iter_(\d{8})\.state")
#: The temp file of a save that was killed before its rename (see :func:`~litesr.imaging.atomic.atomic_write`).
INTERRUPTED_SAVE_PATTERN = re.compile(r"\.iter_\d{8}\.state\.[^.]+\.tmp")


def rng_states() -> dict[str, Any]:
    """Python, NumPy and torch RNG states as tensors/plain values (weights_only-loadable)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }


def restore_rng_states(states: dict[str, Any]) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = states["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32), numpy_state["position"],
                         numpy_state["has_gauss"], numpy_state["cached"]))
    torch.set_rng_state(states["torch"])


def save_state(folder: Path, iteration: int, payload: dict[str, Any], keep: int = 2) -> Path:
    """Write ``payload`` as ``iter_<N>.state`` atomically, then prune all but the newest ``keep``."""
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({"iteration": iteration, **payload, "rng": rng_states()}, buffer)
    path = folder / STATE_NAME.format(iteration)
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()))
    for old in list_states(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def list_states(folder: Path) -> list[Path]:
    """Complete checkpoints in ``folder``, oldest first (temp files of an interrupted save are ignored)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if STATE_PATTERN.fullmatch(p.name))


def remove_interrupted_saves(folder: Path) -> list[Path]:
    """Delete the temp files of saves killed mid-write (each as large as a state); returns them.

    Only the one process that owns the experiment calls this, when a run starts, so no
    save can be in progress.
    """
    if not folder.is_dir():
        return []
    removed = [path for path in folder.iterdir() if INTERRUPTED_SAVE_PATTERN.fullmatch(path.name)]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def load_state(path: Path) -> dict[str, Any]:
    """Read a training checkpoint safely; a damaged file is a one-line error."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any failure to read means the same thing to the user
        raise CheckpointError(f"{path}: cannot resume from this training state ({type(error).__name__})") from None
