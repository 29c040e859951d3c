"""Decode → model → encode, overlapped, with bounded memory, into an atomically written file.

Three stages run at once: a reader thread demuxes and decodes, the calling thread runs
the network, a writer thread encodes and muxes. Two queues of :data:`QUEUE_FRAMES`
items join them, so memory stays the same for a clip and for a feature film. Audio and
subtitle packets travel through the same queues, untouched, and are muxed beside the
new video (stream copy). The output goes to a temp file renamed at the end
(:func:`litesr.imaging.atomic.atomic_write`), so Ctrl-C, SIGTERM (a KeyboardInterrupt in
the CLI) or an error leaves no partial video.

Timestamps are the input's own (variable frame rates stay variable); a segment
(``frames``/``start``/``duration``) is shifted to start at 0, its audio cut at packet
boundaries. Rotation metadata and colour tags (range, matrix, primaries, transfer) are
carried over, and RGB conversion in both directions uses the input's matrix and range,
so colours do not shift.
"""
from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

import numpy as np

from ..errors import LiteSRError
from ..imaging.atomic import atomic_write
from ..model import SRModel
from .errors import CorruptVideoError, VideoError, VideoOptionsError
from .formats import muxer_for, require_av
from .frames import FrameUpscaler
from .options import EncoderSettings, VideoOptions, resolve_encoder
from .probe import VideoInfo, describe_video, ffmpeg_reason, open_video
from .timecode import format_time

#: Items each hand-over queue holds (decoded frames waiting for the network, upscaled
#: frames waiting for the encoder): enough to keep both threads busy, few enough that a
#: 4K×4 frame queue stays within a few GiB.
QUEUE_FRAMES = 8
#: How often a blocked stage checks whether another one has stopped (seconds).
POLL_SECONDS = 0.1
#: ``on_progress(frames_done, frames_expected)``; ``frames_expected`` is 0 when unknown.
ProgressCallback = Callable[[int, int], None]
#: FFmpeg's "unspecified" value of each colour tag carried from the input to the output.
UNSPECIFIED_COLOUR = {"color_range": 0, "colorspace": 2, "color_primaries": 2, "color_trc": 2}


@dataclass
class VideoReport:
    """What :func:`upscale_video` did."""

    source: Path
    target: Path
    frames: int
    seconds: float
    #: The encoder with its settings (``libx264 crf 18 preset medium yuv420p``).
    encoder: str
    input_size: tuple[int, int]  # (width, height)
    output_size: tuple[int, int]
    #: ``audio aac``, ``subtitle subrip``: streams copied unchanged.
    copied_streams: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class _Frame:
    """A decoded frame on its way to the encoder (``pixels`` replaced once upscaled)."""

    pixels: np.ndarray
    pts: int
    duration: int
    rotation: int


@dataclass(frozen=True)
class _Packet:
    """An audio/subtitle packet copied as it is, timestamps shifted by ``shift`` (its time base)."""

    packet: Any
    shift: int


class _End:
    """The stream of items is over."""


class _Stopped(Exception):
    """Another stage failed or the run was interrupted: this one stops quietly."""


class _Channel:
    """A bounded queue between two stages that gives up as soon as ``stop`` is set."""

    def __init__(self, stop: threading.Event) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_FRAMES)
        self._stop = stop

    def put(self, item: Any) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                self._queue.put(item, timeout=POLL_SECONDS)
                return
        raise _Stopped

    def __iter__(self) -> Iterator[Any]:
        while True:
            try:
                item = self._queue.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if self._stop.is_set():
                    raise _Stopped from None
                continue
            if isinstance(item, _End):
                return
            yield item


@dataclass
class _Segment:
    """Which decoded frames are kept, and where the kept part starts and ends (seconds)."""

    options: VideoOptions
    origin: float | None = None  # time of the first kept frame
    end: float | None = None  # time of the first frame after the segment

    def keeps(self, index: int, seconds: float) -> bool | None:
        """True to keep the frame, False to skip it, None once past the segment (stop reading)."""
        frames, start, duration = self.options.frames, self.options.start, self.options.duration
        if frames is not None:
            if frames.stop is not None and index >= frames.stop:
                return None
            return index >= frames.start
        if duration is not None and self.origin is not None and seconds >= (start or 0.0) + duration:
            return None
        return start is None or seconds >= start - 1e-6


class _Reader:
    """The reader thread's work: demux, decode, select the segment, convert frames to RGB arrays."""

    def __init__(self, av: ModuleType, container: Any, source: Path, options: VideoOptions,
                 copied: dict[int, Any], output: _Channel) -> None:
        self.av, self.container, self.source, self.output = av, container, source, output
        self.video = container.streams.video[0]
        self.copied = copied
        self.segment = _Segment(options)
        self.has_segment = options.has_segment
        self.seek_to = options.start
        start_time = self.video.start_time
        self.start_seconds = float(start_time * self.video.time_base) if start_time is not None else 0.0
        self.position = 0.0  # the last time position read, for error messages
        self.frames = 0
        self.pending: list[tuple[float, Any]] = []  # copied packets read before the segment's origin
        high_depth = self.video.codec_context.format.components[0].bits > 8
        self.rgb_format = "rgb48le" if high_depth else "rgb24"

    def run(self) -> None:
        try:
            self._read()
        except self.av.FFmpegError as error:
            raise CorruptVideoError(f"{self.source}: corrupt video data at {format_time(self.position)} "
                                    f"(after {self.frames} frame(s)): {ffmpeg_reason(error)}") from None

    def _read(self) -> None:
        if self.seek_to:
            target = int((self.seek_to + self.start_seconds) / self.video.time_base)
            self.container.seek(target, stream=self.video, backward=True)
        video_done = False
        finished_copies: set[int] = set()
        for packet in self.container.demux(self.video, *self.copied.values()):
            if packet.pts is not None and packet.time_base:
                self.position = max(float(packet.pts * packet.time_base) - self.start_seconds, 0.0)
            if packet.stream.index == self.video.index:
                if not video_done:
                    video_done = self._decode(packet)
            elif packet.size and packet.stream.index not in finished_copies:
                if not self._copy(packet):
                    finished_copies.add(packet.stream.index)
            if video_done and len(finished_copies) == len(self.copied):
                break
        self.output.put(_End())

    def _decode(self, packet: Any) -> bool:
        """Decode one packet's frames; True once the segment is complete."""
        for frame in packet.decode():
            seconds = float(frame.pts * frame.time_base) - self.start_seconds if frame.pts is not None else 0.0
            self.position = max(seconds, 0.0)
            if frame.is_corrupt:
                raise CorruptVideoError(f"{self.source}: corrupt video frame at {format_time(self.position)}")
            keep = self.segment.keeps(self.frames, seconds)
            self.frames += 1
            if keep is None:
                self.segment.end = seconds
                return True
            if keep:
                self._emit(frame, seconds)
            else:
                self._drop_pending_before(seconds)
        return False

    def _emit(self, frame: Any, seconds: float) -> None:
        if self.segment.origin is None:
            self.segment.origin = seconds
            for when, packet in self.pending:
                self._copy_at(when, packet)
            self.pending.clear()
        origin_pts = round((self.segment.origin + self.start_seconds) / self.video.time_base) \
            if self.has_segment else 0
        pts = frame.pts if frame.pts is not None else origin_pts + self.frames - 1
        pixels = frame.to_ndarray(format=self.rgb_format, src_color_range=frame.color_range or None)
        self.output.put(_Frame(pixels, pts - origin_pts, frame.duration or 0, int(frame.rotation or 0)))

    def _copy(self, packet: Any) -> bool:
        """Pass a copied stream's packet on; False once that stream is past the segment."""
        if not self.has_segment:
            self.output.put(_Packet(packet, 0))
            return True
        when = self.position
        if self.segment.end is not None and when >= self.segment.end:
            return False
        if self.segment.origin is None:
            self.pending.append((when, packet))
        else:
            self._copy_at(when, packet)
        return True

    def _copy_at(self, when: float, packet: Any) -> None:
        origin = self.segment.origin or 0.0
        if when < origin - 1e-6 or (self.segment.end is not None and when >= self.segment.end):
            return
        shift = round((origin + self.start_seconds) / packet.time_base) if packet.time_base else 0
        self.output.put(_Packet(packet, shift))

    def _drop_pending_before(self, seconds: float) -> None:
        """Forget packets that end before a skipped frame: the segment starts later still."""
        self.pending = [(when, packet) for when, packet in self.pending
                        if when + float((packet.duration or 0) * packet.time_base) > seconds]


class _Writer:
    """The writer thread's work: RGB arrays → encoder frames, and muxing every stream."""

    def __init__(self, av: ModuleType, output: Any, stream: Any, encoder: EncoderSettings, info: VideoInfo,
                 colour: dict[str, int], copied: dict[int, Any], target: Path) -> None:
        self.av, self.output, self.stream, self.encoder, self.info = av, output, stream, encoder, info
        self.colour = colour
        self.copied = copied  # input stream index → output stream
        self.target = target
        self.started = False
        self.waiting: list[_Packet] = []  # copied packets held until the first frame sets the rotation

    def run(self, items: _Channel) -> None:
        try:
            for item in items:
                if isinstance(item, _Packet):
                    self._mux_copy(item) if self.started else self.waiting.append(item)
                else:
                    self._encode(item)
            self.output.mux(self.stream.encode(None))
            self.output.close()
        except self.av.FFmpegError as error:
            raise VideoError(f"{self.target}: cannot encode the video: {ffmpeg_reason(error)}") from None

    def _encode(self, item: _Frame) -> None:
        if not self.started:
            self._start(item)
        frame = self.av.VideoFrame.from_ndarray(item.pixels, format="rgb24" if item.pixels.dtype == np.uint8
                                                else "rgb48le")
        frame = frame.reformat(format=self.encoder.pix_fmt, dst_colorspace=self.colour.get("colorspace"),
                               dst_color_range=self.colour.get("color_range"))
        frame.pts = item.pts
        frame.time_base = self.info.time_base
        if item.duration:
            frame.duration = item.duration
        self.output.mux(self.stream.encode(frame))

    def _start(self, first: _Frame) -> None:
        """Tag the rotation (known from the first frame), then mux the packets that waited for it."""
        if first.rotation:
            self.stream.set_display_rotation(first.rotation)
        self.started = True
        for packet in self.waiting:
            self._mux_copy(packet)
        self.waiting.clear()

    def _mux_copy(self, item: _Packet) -> None:
        packet = item.packet
        if item.shift:
            if packet.pts is not None:
                packet.pts -= item.shift
            if packet.dts is not None:
                packet.dts -= item.shift
        packet.stream = self.copied[packet.stream.index]
        self.output.mux(packet)


def upscale_video(model: SRModel, source: str | Path, target: str | Path, options: VideoOptions | None = None,
                  on_progress: ProgressCallback | None = None) -> VideoReport:
    """Upscale the video ``source`` into ``target`` (its suffix picks the container).

    Audio and subtitle streams are copied unchanged (a stream the output container cannot
    hold is left out with a warning in the report); errors are
    :class:`~litesr.errors.LiteSRError` subclasses naming the file, and the time position
    for corrupt data. ``on_progress(done, expected)`` follows each batch of frames.
    """
    av = require_av()
    options = options or VideoOptions()
    source, target = Path(source), Path(target)
    if target.exists() and source.exists() and target.resolve() == source.resolve():
        raise VideoError(f"{target}: output would overwrite the input")
    muxer = muxer_for(target)
    start = time.perf_counter()
    container = open_video(source)
    try:
        info = describe_video(source, container)
        upscaler = FrameUpscaler(model, options, info.height, info.width)
        encoder = resolve_encoder(av, options, muxer, info.pix_fmt)
        _check_frame_size(av, target, encoder, upscaler.output_size)
        report = VideoReport(source, target, 0, 0.0, encoder.describe(), (info.width, info.height),
                             upscaler.output_size[::-1])

        def write(file: BinaryIO) -> None:
            report.frames = _run(av, container, file, muxer, info, upscaler, encoder, options, report,
                                 _expected_frames(info, options), on_progress)

        atomic_write(target, write, replace=options.replace)
    finally:
        container.close()
    report.seconds = time.perf_counter() - start
    return report


def _run(av: ModuleType, container: Any, file: BinaryIO, muxer: str, info: VideoInfo, upscaler: FrameUpscaler,
         encoder: EncoderSettings, options: VideoOptions, report: VideoReport, expected: int,
         on_progress: ProgressCallback | None) -> int:
    """The three overlapped stages; returns the number of frames written."""
    try:
        output = av.open(file, "w", format=muxer)
    except av.FFmpegError as error:
        raise VideoError(f"{report.target}: cannot write a {muxer} file: {ffmpeg_reason(error)}") from None
    stop = threading.Event()
    decoded, upscaled = _Channel(stop), _Channel(stop)
    failures: list[BaseException] = []
    colour = _colour_tags(container.streams.video[0].codec_context)
    stream = _add_video_stream(output, encoder, info, upscaler.output_size, colour)
    copied = _add_copied_streams(output, container, report)
    reader = _Reader(av, container, info.path, options, {index: container.streams[index] for index in copied},
                     decoded)
    writer = _Writer(av, output, stream, encoder, info, colour, copied, report.target)
    threads = [threading.Thread(target=_stage, args=(reader.run, failures, stop), name="litesr-video-read",
                                daemon=True),
               threading.Thread(target=_stage, args=(lambda: writer.run(upscaled), failures, stop),
                                name="litesr-video-write", daemon=True)]
    for thread in threads:
        thread.start()
    done = 0
    try:
        batch: list[_Frame] = []
        for item in decoded:
            if isinstance(item, _Packet):
                upscaled.put(item)
                continue
            batch.append(item)
            if len(batch) >= upscaler.batch:
                done += _upscale_batch(upscaler, batch, upscaled)
                _report_progress(on_progress, done, expected)
        if batch:
            done += _upscale_batch(upscaler, batch, upscaled)
            _report_progress(on_progress, done, expected)
        if done == 0:
            raise VideoOptionsError(f"{info.path}: the segment asked for holds no frames "
                                    f"(the video has {_length(info)})")
        upscaled.put(_End())
        threads[1].join()
    except _Stopped:
        pass
    finally:
        if failures or done == 0 or threads[1].is_alive():
            stop.set()
        for thread in threads:
            thread.join()
        if stop.is_set():
            with contextlib.suppress(Exception):
                output.close()
    if failures:
        raise failures[0]
    if info.frames and not options.has_segment and done < info.frames:
        report.warnings.append(f"the video data ended after {done} of the {info.frames} frames its header "
                               f"declares (a truncated file?)")
    return done


def _stage(work: Callable[[], None], failures: list[BaseException], stop: threading.Event) -> None:
    """Run one thread's work; its failure (not a quiet stop) is kept for the caller and stops the others."""
    try:
        work()
    except _Stopped:
        pass
    except BaseException as error:  # noqa: BLE001 - handed to the calling thread, which raises it
        failures.append(error if isinstance(error, LiteSRError) else
                        VideoError(f"{type(error).__name__}: {error}"))
        stop.set()


def _upscale_batch(upscaler: FrameUpscaler, batch: list[_Frame], upscaled: _Channel) -> int:
    results = upscaler([item.pixels for item in batch])
    for item, pixels in zip(batch, results):
        upscaled.put(_Frame(pixels, item.pts, item.duration, item.rotation))
    count = len(batch)
    batch.clear()
    return count


def _report_progress(on_progress: ProgressCallback | None, done: int, expected: int) -> None:
    if on_progress is not None:
        on_progress(done, max(expected, done) if expected else 0)


def _add_video_stream(output: Any, encoder: EncoderSettings, info: VideoInfo, size: tuple[int, int],
                      colour: dict[str, int]) -> Any:
    """The output's first stream: the encoder, in the input's time base, rate and colour tags."""
    stream = output.add_stream(encoder.codec, rate=info.rate, options=dict(encoder.options))
    stream.height, stream.width = size
    stream.pix_fmt = encoder.pix_fmt
    stream.time_base = stream.codec_context.time_base = info.time_base
    for tag, value in colour.items():
        setattr(stream.codec_context, tag, value)
    return stream


def _add_copied_streams(output: Any, container: Any, report: VideoReport) -> dict[int, Any]:
    """Output streams for the input's audio and subtitle streams (input index → output stream)."""
    copied: dict[int, Any] = {}
    supported = output.supported_codecs
    for stream in container.streams:
        if stream.type not in ("audio", "subtitle"):
            continue
        names = {stream.codec_context.name, getattr(stream.codec_context.codec, "name", None)}
        label = f"{stream.type} {stream.codec_context.name}"
        if not names & supported:
            report.warnings.append(f"{label} stream #{stream.index} cannot be stored in a "
                                   f"{report.target.suffix} file; not copied (write .mkv to keep it)")
            continue
        copied[stream.index] = output.add_stream_from_template(stream)
        report.copied_streams.append(label)
    return copied


def _colour_tags(context: Any) -> dict[str, int]:
    """The input's colour tags that say something (FFmpeg's "unspecified" values are left out)."""
    return {tag: int(getattr(context, tag)) for tag, unspecified in UNSPECIFIED_COLOUR.items()
            if getattr(context, tag) is not None and int(getattr(context, tag)) != unspecified}


def _check_frame_size(av: ModuleType, target: Path, encoder: EncoderSettings, size: tuple[int, int]) -> None:
    """Refuse, before any work, a frame size the pixel format cannot hold (odd sides in 4:2:0)."""
    height, width = size
    pixel_format = av.VideoFormat(encoder.pix_fmt)
    halves_width, halves_height = pixel_format.chroma_width(2) == 1, pixel_format.chroma_height(2) == 1
    if halves_width and width % 2 or halves_height and height % 2:
        raise VideoOptionsError(f"{target}: upscaled frames would be {width}×{height}, which {encoder.pix_fmt} "
                                "cannot hold (odd sides); choose another -s/--outscale or --pix-fmt yuv444p")


def _expected_frames(info: VideoInfo, options: VideoOptions) -> int:
    total = info.estimated_frames
    if options.frames is not None:
        stop = options.frames.stop if options.frames.stop is not None else total
        return max(min(stop, total or stop) - options.frames.start, 0)
    if (options.start is not None or options.duration is not None) and info.rate and info.duration:
        remaining = max(info.duration - (options.start or 0.0), 0.0)
        return round(min(remaining, options.duration or remaining) * info.rate)
    return total


def _length(info: VideoInfo) -> str:
    parts = [f"{info.frames} frames"] if info.frames else []
    if info.duration:
        parts.append(f"lasts {format_time(info.duration)}")
    return ", ".join(parts) or "no frames"
