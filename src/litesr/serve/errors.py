"""The errors a request can end with, each carrying the HTTP status a client should see.

One class per status, so the app has a single handler that turns any of them into
``{"error": "..."}`` and nothing else decides a status code. They are
:class:`~litesr.errors.LiteSRError` subclasses like every error a user can cause.
"""
from __future__ import annotations

from collections.abc import Mapping

from ..errors import LiteSRError


class RequestError(LiteSRError):
    """A request the server refuses; ``status`` and ``headers`` go into the JSON response."""

    status: int = 400

    def __init__(self, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = dict(headers or {})


class BadRequestError(RequestError):
    """A bad image or parameter (400)."""

    status = 400


class UnauthorizedError(RequestError):
    """A missing or wrong token (401)."""

    status = 401


class NotFoundError(RequestError):
    """Nothing by that name (404): an unknown route or a finished job."""

    status = 404


class TooLargeError(RequestError):
    """An upload above ``--max-upload-mb`` or an image above ``--max-pixels`` (413)."""

    status = 413


class QueueFullError(RequestError):
    """Every slot of the job queue is taken (503); the client should retry after ``Retry-After`` seconds."""

    status = 503


class ServeSetupError(LiteSRError):
    """``litesr serve`` cannot start as asked (an unsafe address, a busy port, a missing extra): one ``error:`` line."""
