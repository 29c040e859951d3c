"""Reading an ncnn model file into memory, with every OS failure turned into a one-line error."""
from __future__ import annotations

from pathlib import Path

from ..errors import CheckpointError


def read_model_file(path: Path, what: str) -> bytes:
    """The bytes of ``path`` (an ncnn ``.param`` or ``.bin``); CheckpointError naming it otherwise.

    Why not let ``open`` raise: a missing or unreadable model file is a user's mistake, and
    the CLI shows LiteSR errors as one line instead of a traceback.
    """
    if not path.exists():
        raise CheckpointError(f"{path}: no such ncnn {what} file")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file (expected an ncnn {what} file)")
    try:
        return path.read_bytes()
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read the ncnn {what} file ({error.strerror or error})") from None
