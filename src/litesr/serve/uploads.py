"""Uploads and results on disk: bounded while they arrive, private while they exist, gone afterwards.

* The request body is counted as it arrives (:func:`limited_request`), so an upload above
  the limit is stopped at the limit, whether or not it declared its length.
* Every request gets its own folder inside the server's private temp folder
  (:class:`TempFiles`); the upload is copied there under a name the server chooses, the
  result is written next to it, and the folder is removed when the response has been sent
  or has failed. The client's file name is only ever *shown* (:func:`client_file_name`),
  never used as a path.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import unicodedata
from pathlib import Path
from typing import BinaryIO

from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.types import Message, Receive, Scope, Send

from .errors import TooLargeError

#: Room for the form's other fields and its boundaries, on top of the image's own limit.
FORM_OVERHEAD_BYTES = 64 * 1024
#: Longest client file name shown back (in messages and the download's name).
MAX_SHOWN_NAME = 120
_COPY_CHUNK = 1024 * 1024


def upload_limit_message(limit: int) -> str:
    return f"the upload is larger than this server's limit of {limit / 2**20:g} MiB (--max-upload-mb)"


def limited_request(request: Request, max_bytes: int) -> Request:
    """``request`` whose body raises :class:`TooLargeError` once more than ``max_bytes`` (+ form overhead) arrive."""
    allowed = max_bytes + FORM_OVERHEAD_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > allowed:
        raise TooLargeError(upload_limit_message(max_bytes))
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > allowed:
            raise TooLargeError(upload_limit_message(max_bytes))
        return message

    return Request(request.scope, receive)


def client_file_name(raw: str | None, fallback: str = "image") -> str:
    """The last component of a client's file name, printable and short: for display only."""
    name = re.split(r"[\\/]", raw or "")[-1]
    name = "".join(char for char in name if unicodedata.category(char)[0] != "C").strip()
    if len(name) > MAX_SHOWN_NAME:
        stem, suffix = os.path.splitext(name)
        name = stem[:MAX_SHOWN_NAME - len(suffix[:16])] + suffix[:16]
    return name if name not in ("", ".", "..") else fallback


def copy_upload(source: BinaryIO, target: Path, max_bytes: int) -> int:
    """Copy an uploaded file to ``target`` in chunks; :class:`TooLargeError` past ``max_bytes``."""
    written = 0
    with open(target, "xb") as handle:
        while chunk := source.read(_COPY_CHUNK):
            written += len(chunk)
            if written > max_bytes:
                raise TooLargeError(upload_limit_message(max_bytes))
            handle.write(chunk)
    return written


class TempFiles:
    """The server's private temp folder: one sub-folder per request, all removed by :meth:`close`."""

    def __init__(self, parent: Path | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="litesr-serve-", dir=parent))

    def request_folder(self) -> Path:
        """A new empty folder (mode 700) for one request's upload and result."""
        return Path(tempfile.mkdtemp(dir=self.root))

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def remove_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


class TemporaryFileResponse(FileResponse):
    """A file response that removes the request's folder afterwards, even if the client left mid-way.

    Starlette runs a response's background task only after a successful send; a client
    that disconnects would leave the result on disk until the server stops.
    """

    def __init__(self, path: Path, folder: Path, **kwargs: object) -> None:
        super().__init__(path, **kwargs)  # type: ignore[arg-type]
        self._folder = folder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            remove_folder(self._folder)
