"""Shared test helpers: where ../shared lives and how to skip cleanly without it."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Measurements (--precision auto) and quantized models are cached per user; tests, and the
# CLI processes they start, use a private cache so they neither read nor leave one.
os.environ.setdefault("LITESR_CACHE_DIR", tempfile.mkdtemp(prefix="litesr-test-cache-"))

#: The project's read-only material (fixtures, released weights, benchmark images) sits
#: beside the checkout in CI; a user's clone has no such folder, so tests needing it skip.
SHARED_DIR = Path(os.environ.get("LITESR_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def shared_path(*parts: str) -> Path:
    """Return a path under ../shared, skipping the calling test when it is absent."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the project's ../shared material is not beside this checkout)")
    return path


@pytest.fixture
def shared() -> Path:
    return shared_path()


FIXTURE_DIR = ("fixtures", "arch")


def load_fixture(name: str) -> tuple[dict, dict, dict]:
    """(state_dict, io tensors, json card) of an official-implementation fixture.

    The ``*_released`` fixtures store no weights of their own: their JSON names the
    released LESRCNN checkpoint under ../shared/weights, read here the safe way.
    """
    import json

    import torch
    from safetensors.torch import load_file

    folder = shared_path(*FIXTURE_DIR)
    card = json.loads((folder / f"{name}.json").read_text())
    io = load_file(folder / f"{name}.io.safetensors")
    weights = folder / f"{name}.safetensors"
    if weights.exists():
        state_dict = load_file(weights)
    else:
        scale = card["kwargs"]["scale"]
        path = shared_path("weights", "lesrcnn", f"lesrcnn_x{scale}.pth")
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    return state_dict, io, card


def max_abs_diff(a, b) -> float:
    return (a - b).abs().max().item()
