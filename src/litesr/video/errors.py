"""The video errors a user can cause, each a :class:`~litesr.errors.LiteSRError` naming the file."""
from __future__ import annotations

from ..errors import LiteSRError


class VideoError(LiteSRError):
    """A video could not be read, upscaled or written; the message names the file."""


class VideoSupportMissingError(VideoError):
    """PyAV (the optional ``litesr[video]`` extra) is not installed."""


class VideoOptionsError(VideoError, ValueError):
    """An encoder setting or a segment that cannot apply to this video or output format."""


class CorruptVideoError(VideoError):
    """The file is not a readable video, or its data breaks off; names the time position."""
