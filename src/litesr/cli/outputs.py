"""Output locations checked before any work starts.

A destination that cannot be written (``-o notes.txt/sub``, a read-only folder, ``--json``
into a missing folder) would otherwise surface after minutes of computation, or once per
image as an ``[Errno 20]``. Each check raises :class:`~litesr.imaging.atomic.WriteError`,
the error of every failed write, with the flag and path the user typed.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..imaging.atomic import WriteError


def check_output_file(path: str | os.PathLike[str], flag: str, *, make_folders: bool = False) -> Path:
    """A file to create or replace: not a folder, in a writable folder.

    The folder must exist unless ``make_folders`` (the writer then creates missing levels).
    """
    target = Path(path)
    if target.is_dir():
        raise WriteError(f"cannot write {flag} {target}: it is a folder; give a file name")
    folder = target.parent
    if not make_folders and not folder.is_dir():
        problem = "is a file, not a folder" if folder.exists() else "does not exist"
        raise WriteError(f"cannot write {flag} {target}: the folder {folder} {problem}")
    _check_folder_can_be_written(folder, flag, target)
    return target


def check_output_folder(path: str | os.PathLike[str], flag: str, hint: str = "") -> Path:
    """A folder that exists or can be created (missing levels are made when writing)."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise WriteError(f"cannot write {flag} {folder}: it is a file, not a folder{hint}")
    _check_folder_can_be_written(folder, flag, folder)
    return folder


def _check_folder_can_be_written(folder: Path, flag: str, shown: Path) -> None:
    """``folder`` exists and is writable, or its nearest existing ancestor is a writable folder."""
    existing = next(parent for parent in (folder, *folder.absolute().parents) if parent.exists())
    if not existing.is_dir():
        raise WriteError(f"cannot write {flag} {shown}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise WriteError(f"cannot write {flag} {shown}: the folder {existing} is not writable")
