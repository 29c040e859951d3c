"""The video options of ``litesr upscale``, and its frame progress bar.

Declared here, next to what they configure, so the upscale command adds them with one
call (:func:`add_video_arguments`) and turns them into :class:`VideoOptions` with another
(:func:`video_options_from_args`); the image options it already has (``--scale``,
``-s/--outscale``, ``--tile``, ``--tile-pad``, ``--precision``, ``--overwrite``) apply to
videos unchanged.
"""
from __future__ import annotations

import argparse
import sys
from types import TracebackType

from tqdm import tqdm

from .errors import VideoOptionsError
from .options import ENCODERS, X26X_PRESETS, FrameRange, VideoOptions
from .timecode import parse_time


def _frame_range(text: str) -> FrameRange:
    try:
        return FrameRange.parse(text)
    except VideoOptionsError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _seconds(text: str) -> float:
    try:
        return parse_time(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _crf(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--codec --crf --preset --pix-fmt --frames --start --duration`` (they apply to video inputs)."""
    group = parser.add_argument_group("video inputs (pip install 'litesr[video]')")
    group.add_argument("--codec", choices=list(ENCODERS),
                       help="video encoder (default: libvpx-vp9 for .webm, else libx264)")
    group.add_argument("--crf", type=_crf, metavar="N",
                       help="constant quality, lower is better (default: x264 18, x265 20, vp9 30; ffv1 is lossless)")
    group.add_argument("--preset", metavar="P", help=f"x264/x265 speed preset: {', '.join(X26X_PRESETS)} "
                                                      "(default medium)")
    group.add_argument("--pix-fmt", metavar="P",
                       help="output pixel format (default: the input's when the encoder writes it, else yuv420p)")
    segment = group.add_mutually_exclusive_group()
    segment.add_argument("--frames", type=_frame_range, metavar="A:B",
                         help="upscale frames A to B-1 only (counted from 0; A: or :B for open ends)")
    segment.add_argument("--start", type=_seconds, metavar="T", help="start at T seconds (or [H:]MM:SS.mmm)")
    group.add_argument("--duration", type=_seconds, metavar="T", help="upscale T seconds (with or without --start)")


def video_options_from_args(args: argparse.Namespace) -> VideoOptions:
    """:class:`VideoOptions` from parsed arguments; options a command does not declare keep their defaults."""
    if getattr(args, "frames", None) is not None and getattr(args, "duration", None) is not None:
        raise VideoOptionsError("--frames and --duration cannot be combined (use --start/--duration or --frames)")
    defaults = VideoOptions()
    return VideoOptions(
        scale=getattr(args, "scale", defaults.scale), outscale=getattr(args, "outscale", defaults.outscale),
        tile=getattr(args, "tile", defaults.tile), tile_pad=getattr(args, "tile_pad", defaults.tile_pad),
        precision=getattr(args, "precision", defaults.precision), codec=getattr(args, "codec", None),
        crf=getattr(args, "crf", None), preset=getattr(args, "preset", None), pix_fmt=getattr(args, "pix_fmt", None),
        frames=getattr(args, "frames", None), start=getattr(args, "start", None),
        duration=getattr(args, "duration", None), replace=bool(getattr(args, "overwrite", True)),
    )


class VideoProgress:
    """A tqdm bar in frames (with frames/s and ETA) on stderr, fed by ``upscale_video``'s ``on_progress``."""

    def __init__(self, label: str, *, disable: bool) -> None:
        self._bar = tqdm(desc=label, unit="frame", disable=disable, file=sys.stderr, dynamic_ncols=True)

    def __enter__(self) -> VideoProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._bar.close()

    def __call__(self, done: int, expected: int) -> None:
        if expected and self._bar.total != expected:
            self._bar.total = expected
        self._bar.update(done - self._bar.n)
