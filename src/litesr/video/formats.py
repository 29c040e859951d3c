"""Which files are videos, which container formats LiteSR writes, and importing PyAV.

Importing this module needs no PyAV, so the upscale command can sort a folder's images
from its videos (and tell the user what to install) on a machine without the extra.
"""
from __future__ import annotations

from pathlib import Path
from types import ModuleType

from .errors import VideoOptionsError, VideoSupportMissingError

#: Suffixes read as videos (what FFmpeg demuxes and users commonly have).
VIDEO_SUFFIXES: frozenset[str] = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg", ".flv", ".wmv",
     ".3gp", ".ogv"})
#: Output suffix → FFmpeg muxer. The temp file LiteSR writes first has no such suffix, so the
#: muxer cannot be guessed from the name; these containers hold the encoders offered and
#: audio/subtitle streams copied unchanged.
MUXERS: dict[str, str] = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
#: Output suffix for inputs whose own container is not written (``clip.avi`` → ``clip_x4.mkv``).
FALLBACK_SUFFIX = ".mkv"
INSTALL_HINT = "pip install 'litesr[video]'"


def is_video_file(path: str | Path) -> bool:
    """Whether ``path`` is named like a video (by its suffix; the file is not opened)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def output_video_suffix(source: str | Path) -> str:
    """The suffix an upscaled copy of ``source`` gets: its own when LiteSR writes it, else ``.mkv``."""
    suffix = Path(source).suffix.lower()
    return suffix if suffix in MUXERS else FALLBACK_SUFFIX


def muxer_for(target: Path) -> str:
    """The FFmpeg muxer for an output file name, or VideoOptionsError naming the ones offered."""
    try:
        return MUXERS[target.suffix.lower()]
    except KeyError:
        raise VideoOptionsError(f"{target}: cannot write {target.suffix or 'suffix-less'} videos; "
                                f"name the output {', '.join(sorted(MUXERS))}") from None


def require_av() -> ModuleType:
    """The ``av`` module (PyAV), or a one-line error saying how to install it."""
    try:
        import av
    except ImportError:
        raise VideoSupportMissingError(f"video needs PyAV, which is not installed: {INSTALL_HINT}") from None
    return av
