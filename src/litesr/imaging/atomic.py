"""Atomic file output: a result file appears complete or not at all.

An interrupted run (Ctrl-C, a full disk, a crash) must never leave a half-written file
that looks like a finished result, nor temp-file debris beside the user's outputs.
:func:`atomic_write` is the one way LiteSR writes output files (images today; JSON, CSV
and checkpoint outputs can use it too), and it turns OS failures into a one-line
:class:`WriteError`.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ..errors import LiteSRError

__all__ = ["WriteError", "atomic_write", "os_error_reason"]


class WriteError(LiteSRError):
    """An output file could not be written; the message is ``cannot write <path>: <reason>``."""


def atomic_write(target: Path, write: Callable[[BinaryIO], None]) -> None:
    """Create or replace ``target`` with what ``write`` puts into the binary file it is given.

    Data goes to a hidden ``.<name>.<random>.tmp`` file in the same directory, is
    fsynced, gets the permissions ``target`` has (or ``open()`` would give a new file),
    then is renamed over ``target``; the directory is fsynced so the rename persists.
    On any failure, Ctrl-C included, the temp file is removed and ``target`` is left as
    it was.  ``OSError`` (from the OS or from ``write``) becomes :class:`WriteError`;
    anything else ``write`` raises propagates unchanged.
    """
    target = Path(target)
    directory = target.parent
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except FileNotFoundError as exc:
        raise WriteError(f"cannot write {target}: the folder {directory} does not exist") from exc
    except OSError as exc:
        raise WriteError(f"cannot write {target}: {os_error_reason(exc)}") from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _new_file_mode(target))  # mkstemp's 0600 would surprise users
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise WriteError(f"cannot write {target}: {os_error_reason(exc)}") from exc
        raise
    _fsync_directory(directory)


def _new_file_mode(target: Path) -> int:
    """Keep an existing file's permissions; otherwise what open() would give (0666 & ~umask)."""
    with contextlib.suppress(OSError):
        return target.stat().st_mode & 0o7777
    return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_directory(directory: Path) -> None:
    """Persist the rename itself (POSIX); silently skipped where directories can't be opened."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def os_error_reason(exc: OSError) -> str:
    """The OS's words for an error ("permission denied"), not Python's repr, for messages."""
    return exc.strerror.lower() if exc.strerror else str(exc)
