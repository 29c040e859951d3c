"""Video upscaling (``litesr[video]``, built on PyAV): decode → model → encode, streams kept.

Importing this package needs no PyAV; :func:`upscale_video` and :func:`probe_video` say
how to install it when it is missing.
"""
from __future__ import annotations

from .errors import CorruptVideoError, VideoError, VideoOptionsError, VideoSupportMissingError
from .formats import VIDEO_SUFFIXES, is_video_file, output_video_suffix
from .options import ENCODERS, EncoderSettings, FrameRange, VideoOptions
from .pipeline import VideoReport, upscale_video
from .probe import VideoInfo, probe_video

__all__ = ["CorruptVideoError", "ENCODERS", "EncoderSettings", "FrameRange", "VIDEO_SUFFIXES", "VideoError",
           "VideoInfo", "VideoOptions", "VideoOptionsError", "VideoReport", "VideoSupportMissingError",
           "is_video_file", "output_video_suffix", "probe_video", "upscale_video"]
