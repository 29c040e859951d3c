"""Shared test helpers: where ../shared lives and how to skip cleanly without it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

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
