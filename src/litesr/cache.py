"""LiteSR's per-user cache folder: measurements and derived models worth keeping between runs.

What lives here is always re-creatable (a precision measurement, a quantized graph), so a
missing or unwritable cache costs time, never correctness.
"""
from __future__ import annotations

import os
from pathlib import Path

#: Overrides the cache location (tests point it at a temporary folder).
CACHE_ENV = "LITESR_CACHE_DIR"


def cache_dir() -> Path:
    """``$LITESR_CACHE_DIR``, else ``$XDG_CACHE_HOME/litesr``, else ``~/.cache/litesr``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "litesr"
