"""Opening a video and describing it: size, frames, rate, duration and the other streams."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from .errors import CorruptVideoError, VideoError
from .formats import require_av


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds, read from its headers (nothing is decoded)."""

    path: Path
    width: int
    height: int
    pix_fmt: str
    #: Frames the container declares (0 when it does not say, as Matroska does).
    frames: int
    #: Average frame rate, or ``None`` when unknown.
    rate: Fraction | None
    #: Seconds, or ``None`` when unknown.
    duration: float | None
    time_base: Fraction
    #: ``(index, type, codec)`` of each audio and subtitle stream.
    other_streams: tuple[tuple[int, str, str], ...]

    @property
    def estimated_frames(self) -> int:
        """The declared frame count, else duration × rate (0 when neither is known)."""
        if self.frames:
            return self.frames
        if self.duration and self.rate:
            return round(self.duration * self.rate)
        return 0


def open_video(path: Path) -> Any:
    """An opened ``av`` input container whose first stream is video; errors name the file."""
    av = require_av()
    if not path.exists():
        raise VideoError(f"{path}: no such file")
    if path.is_dir():
        raise VideoError(f"{path}: is a folder, not a video")
    try:
        container = av.open(str(path), "r")
    except av.FFmpegError as error:
        raise CorruptVideoError(f"{path}: not a readable video ({ffmpeg_reason(error)})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: holds no video stream")
    return container


def describe_video(path: Path, container: Any) -> VideoInfo:
    """The :class:`VideoInfo` of an opened container."""
    stream = container.streams.video[0]
    context = stream.codec_context
    if not context.width or not context.height or context.format is None:
        raise CorruptVideoError(f"{path}: the video stream has no frame size or pixel format (damaged header?)")
    duration = (float(stream.duration * stream.time_base) if stream.duration
                else container.duration / 1_000_000 if container.duration else None)
    others = tuple((s.index, s.type, s.codec_context.name) for s in container.streams
                   if s.type in ("audio", "subtitle"))
    return VideoInfo(path=path, width=context.width, height=context.height, pix_fmt=context.format.name,
                     frames=stream.frames or 0, rate=stream.average_rate or stream.guessed_rate,
                     duration=duration, time_base=stream.time_base, other_streams=others)


def probe_video(path: str | Path) -> VideoInfo:
    """Describe the video at ``path`` (a LiteSRError when it is not a readable video)."""
    path = Path(path)
    container = open_video(path)
    try:
        return describe_video(path, container)
    finally:
        container.close()


def ffmpeg_reason(error: BaseException) -> str:
    """FFmpeg's own words for an error, without PyAV's errno and call details."""
    text = getattr(error, "strerror", None) or str(error)
    return str(text).split(":")[0].strip().rstrip(".").lower() or type(error).__name__
