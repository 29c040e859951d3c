"""``litesr serve``: a local web page and HTTP API for upscaling (the ``serve`` extra).

The pieces, one job each:

* :mod:`.app` — the FastAPI app: routes, the token, the ``{"error": ...}`` contract;
* :mod:`.catalogue` — which models a client may name, their cards, loading each once;
* :mod:`.jobs` — the device's bounded queue: one forward at a time, 503 when full;
* :mod:`.upscaling` — one request's form checked and run through ``litesr upscale``'s own
  per-file function;
* :mod:`.uploads` — uploads and results in a private temp folder, size-limited, removed;
* ``static/`` — the page (HTML, CSS, JavaScript; nothing loaded from elsewhere).

The app needs FastAPI, which only the extra installs, so this package imports it on first
use of :func:`create_app` (and :mod:`.config`/:mod:`.errors` need nothing): ``litesr``'s
other commands, and ``litesr serve --help``, work without the extra.
"""
from __future__ import annotations

from typing import Any

__all__ = ["ModelCatalogue", "ServeConfig", "create_app"]
_HOMES = {"create_app": "app", "ModelCatalogue": "catalogue", "ServeConfig": "config"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{_HOMES[name]}", __name__), name)
