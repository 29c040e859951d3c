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
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ..errors import LiteSRError

__all__ = ["OutputExistsError", "WriteError", "atomic_write", "clean_stale_temp_files", "os_error_reason"]

#: A temp file of ours older than this is debris of a killed run (SIGKILL, power loss), not
#: a write in progress: no single output takes this long to encode.
STALE_TEMP_SECONDS = 15 * 60


class WriteError(LiteSRError):
    """An output file could not be written; the message is ``cannot write <path>: <reason>``."""


class OutputExistsError(WriteError):
    """``replace=False`` and the target appeared (another run wrote it first)."""


def _temp_files_by_target(directory: Path) -> dict[str, list[Path]]:
    """Temp files of our naming in ``directory``, by the target name they were for.

    Listed once per directory and process: a batch writes thousands of outputs into one
    folder, and listing it before each write would cost O(files²). Debris that appears
    later is left for the next run.
    """
    if directory not in _TEMP_FILES_SEEN:
        found: dict[str, list[Path]] = {}
        with contextlib.suppress(OSError):
            for entry in directory.iterdir():
                name = entry.name
                if not (name.startswith(".") and name.endswith(".tmp")):
                    continue
                target_name, _, middle = name[1:-len(".tmp")].rpartition(".")
                if target_name and middle:
                    found.setdefault(target_name, []).append(entry)
        _TEMP_FILES_SEEN[directory] = found
    return _TEMP_FILES_SEEN[directory]


_TEMP_FILES_SEEN: dict[Path, dict[str, list[Path]]] = {}


def clean_stale_temp_files(target: Path, older_than: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Remove ``.<name>.<random>.tmp`` files of ours for ``target`` left by a killed run.

    Only files of exactly our naming and older than ``older_than`` seconds go, so a
    concurrent writer's fresh temp file is never touched. Returns what was removed.
    """
    target = Path(target)
    removed = []
    now = time.time()
    for entry in _temp_files_by_target(target.parent).pop(target.name, []):
        with contextlib.suppress(OSError):
            if now - entry.lstat().st_mtime > older_than and entry.is_file():
                entry.unlink()
                removed.append(entry)
    return removed


def atomic_write(target: Path, write: Callable[[BinaryIO], None], *, replace: bool = True) -> None:
    """Create or replace ``target`` with what ``write`` puts into the binary file it is given.

    Data goes to a hidden ``.<name>.<random>.tmp`` file in the same directory, is
    fsynced, gets the permissions ``target`` has (or ``open()`` would give a new file),
    then is renamed over ``target``; the directory is fsynced so the rename persists.
    With ``replace=False`` the temp file is hard-linked to ``target`` instead, which fails
    if ``target`` exists — so a file another run created meanwhile is never clobbered
    (:class:`OutputExistsError`). Stale temp files of a killed earlier run are removed
    first. On any failure, Ctrl-C and SIGTERM included (the CLI turns SIGTERM into
    KeyboardInterrupt), the temp file is removed and ``target`` is left as it was.
    ``OSError`` (from the OS or from ``write``) becomes :class:`WriteError`; anything else
    ``write`` raises propagates unchanged.
    """
    target = Path(target)
    directory = target.parent
    clean_stale_temp_files(target)
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
        if replace:
            os.replace(tmp, target)
        else:
            _link_new(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, FileExistsError):
            raise OutputExistsError(f"cannot write {target}: it was created meanwhile (by another run?); "
                                    "left as it is") from exc
        if isinstance(exc, OSError):
            raise WriteError(f"cannot write {target}: {os_error_reason(exc)}") from exc
        raise
    _fsync_directory(directory)


def _link_new(tmp: Path, target: Path) -> None:
    """Publish ``tmp`` as ``target`` only if ``target`` does not exist (atomic, no clobber)."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: check-then-rename, the best it allows
        if target.exists():
            raise FileExistsError(target) from None
        os.replace(tmp, target)
        return
    tmp.unlink()


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
