"""The data directory: where a bare set name such as ``Set5`` is looked up.

``litesr eval --data Set5`` and ``evaluate(model, "Set5", 4)`` should work from any
folder once the sets are downloaded, without spelling out their path every time.  So an
argument that is not an existing path but a bare name (no ``/`` or ``\\``) is looked up
in the data directory: ``$LITESR_DATA`` when set, else ``~/.cache/litesr/data`` (beside
the weights cache, ``~/.cache/litesr/weights``).  The name is tried as given, then
matched case-insensitively against the folder names there (``set5`` finds ``Set5``).
docs/data.md says where to get the sets and how to lay them out.
"""
from __future__ import annotations

import os
from pathlib import Path

from .files import DataError, PathLike

__all__ = ["DATA_DIR_ENV", "DEFAULT_DATA_DIR", "data_dir", "is_bare_name", "resolve_data_path"]

#: Environment variable naming the data directory.
DATA_DIR_ENV = "LITESR_DATA"
#: The data directory when :data:`DATA_DIR_ENV` is unset or empty.
DEFAULT_DATA_DIR = Path("~/.cache/litesr/data")

_DOCS_HINT = "see docs/data.md for where to get it and the folder layout"


def data_dir() -> Path:
    """The data directory: ``$LITESR_DATA`` (``~`` expanded) or ``~/.cache/litesr/data``.

    Read on every call, so a changed environment (tests, notebooks) takes effect at once.
    """
    configured = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(configured or DEFAULT_DATA_DIR).expanduser()


def is_bare_name(data: PathLike) -> bool:
    """True for a plain name like ``Set5``: no path separator, not ``.``/``..``/``~...``."""
    text = os.fspath(data)
    has_separator = "/" in text or "\\" in text
    return bool(text) and not has_separator and text not in (".", "..") and not text.startswith("~")


def resolve_data_path(data: PathLike, what: str = "benchmark set") -> Path:
    """``data`` as a path: itself if it exists or is not a bare name, else its folder in :func:`data_dir`.

    A bare name that is neither here nor in the data directory raises :class:`DataError`
    saying where it looked, how to point ``LITESR_DATA`` elsewhere and where the
    instructions are.  Anything else that does not exist is returned unchanged, for the
    caller's own "does not exist" message.
    """
    path = Path(data)
    if path.exists() or not is_bare_name(data):
        return path
    name = os.fspath(data)
    base = data_dir()
    exact = base / name
    if exact.exists():
        return exact
    matches = _case_insensitive_matches(base, name)
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        shown = ", ".join(m.name for m in matches)
        raise DataError(f"{what} {name!r} is ambiguous in the data directory {base}: {shown}; give the exact name")
    raise DataError(
        f"{what} {name!r} not found: there is no {name} in the current folder {Path.cwd()} "
        f"nor in the data directory {base}{_where_data_dir_comes_from(base)}; "
        f"download it to {exact} or pass its path ({_DOCS_HINT})"
    )


def _case_insensitive_matches(base: Path, name: str) -> list[Path]:
    try:
        entries = list(base.iterdir())
    except OSError:  # missing or unreadable data directory: nothing to match
        return []
    wanted = name.casefold()
    return sorted(p for p in entries if p.name.casefold() == wanted)


def _where_data_dir_comes_from(base: Path) -> str:
    from_env = bool(os.environ.get(DATA_DIR_ENV, "").strip())
    origin = f"from {DATA_DIR_ENV}" if from_env else "the default"
    missing = ", which does not exist" if not base.is_dir() else ""
    change = "" if from_env else f"; set {DATA_DIR_ENV} to use another"
    return f" ({origin}{missing}{change})"
