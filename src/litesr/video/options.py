"""What a video upscale may be asked: the segment, the encoder, and the image options.

Encoder defaults are chosen per codec so that the result looks like the input upscaled,
not like a re-encode: a low CRF (x264 18, x265 20, VP9 30: visually near-lossless),
the codecs' own ``medium`` speed preset, and the input's pixel format when the encoder
can write it (else ``yuv420p``, which every player reads). :func:`resolve_encoder` says
which settings apply, so the command can print them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType

from .errors import VideoOptionsError

#: x264/x265 speed presets (both codecs use the same names).
X26X_PRESETS: tuple[str, ...] = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                                 "slower", "veryslow", "placebo")
#: The pixel format used when the input's cannot be written by the encoder.
FALLBACK_PIX_FMT = "yuv420p"


@dataclass(frozen=True)
class EncoderProfile:
    """What LiteSR knows about one encoder: its quality scale and speed presets."""

    crf_range: tuple[int, int] | None  # None: lossless, no CRF
    default_crf: int | None
    presets: tuple[str, ...] = ()
    default_preset: str | None = None
    #: Options always passed (VP9 needs ``b=0`` for CRF to mean constant quality).
    fixed_options: dict[str, str] = field(default_factory=dict)


ENCODERS: dict[str, EncoderProfile] = {
    "libx264": EncoderProfile((0, 51), 18, X26X_PRESETS, "medium"),
    "libx265": EncoderProfile((0, 51), 20, X26X_PRESETS, "medium"),
    "libvpx-vp9": EncoderProfile((0, 63), 30, fixed_options={"b": "0", "row-mt": "1"}),
    "ffv1": EncoderProfile(None, None),
}
#: Encoder used when none is asked for, per muxer (anything not listed: libx264).
DEFAULT_CODECS: dict[str, str] = {"webm": "libvpx-vp9"}


@dataclass(frozen=True)
class FrameRange:
    """Frames ``start`` (inclusive) to ``stop`` (exclusive; ``None``: to the end), counted from 0."""

    start: int = 0
    stop: int | None = None

    @classmethod
    def parse(cls, text: str) -> "FrameRange":
        """``A:B``, ``A:`` or ``:B`` (Python slice style), as ``--frames`` takes it."""
        first, colon, last = text.partition(":")
        try:
            if not colon:
                raise ValueError
            start = int(first) if first.strip() else 0
            stop = int(last) if last.strip() else None
        except ValueError:
            raise VideoOptionsError(f"frames must be A:B, A: or :B (frame numbers from 0, B excluded), "
                                    f"got {text!r}") from None
        if start < 0 or (stop is not None and stop <= start):
            raise VideoOptionsError(f"frames {text!r}: need 0 <= A < B")
        return cls(start, stop)


@dataclass(frozen=True)
class VideoOptions:
    """Everything about one video upscale except the model and the files.

    ``scale``/``outscale``/``tile``/``tile_pad``/``precision`` mean what they mean for
    images (:meth:`litesr.model.SRModel.upscale`). A segment is ``frames`` or
    ``start``/``duration`` (seconds), not both. ``codec``/``crf``/``preset``/``pix_fmt``
    left ``None`` take the defaults of :func:`resolve_encoder`. ``batch`` is frames per
    forward (``None``: automatic). ``replace=False`` refuses to clobber an output another
    run created meanwhile.
    """

    scale: int | None = None
    outscale: float | None = None
    tile: int | None = 0
    tile_pad: int | None = None
    precision: str = "fp32"
    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    frames: FrameRange | None = None
    start: float | None = None
    duration: float | None = None
    batch: int | None = None
    replace: bool = True

    def __post_init__(self) -> None:
        if self.frames is not None and (self.start is not None or self.duration is not None):
            raise VideoOptionsError("give a segment as frames A:B or as start/duration, not both")
        if self.start is not None and self.start < 0 or self.duration is not None and self.duration <= 0:
            raise VideoOptionsError("start must be >= 0 and duration > 0 seconds")
        if self.batch is not None and self.batch < 1:
            raise VideoOptionsError(f"batch must be at least 1 frame, got {self.batch}")
        if self.codec is not None and self.codec not in ENCODERS:
            raise VideoOptionsError(f"unknown codec {self.codec!r} (use {', '.join(ENCODERS)})")

    @property
    def has_segment(self) -> bool:
        return self.frames is not None or self.start is not None or self.duration is not None


@dataclass(frozen=True)
class EncoderSettings:
    """The encoder that will run, with every option resolved."""

    codec: str
    pix_fmt: str
    options: dict[str, str]

    def describe(self) -> str:
        """``libx264 crf 18 preset medium yuv420p``: what the command tells the user."""
        shown = " ".join(f"{key} {value}" for key, value in self.options.items() if key in ("crf", "preset"))
        lossless = " lossless" if self.codec == "ffv1" else ""
        return " ".join(part for part in (self.codec + lossless, shown, self.pix_fmt) if part)


def resolve_encoder(av: ModuleType, options: VideoOptions, muxer: str, input_pix_fmt: str) -> EncoderSettings:
    """The encoder settings for ``options`` writing into ``muxer``; VideoOptionsError when they cannot apply."""
    codec = options.codec or DEFAULT_CODECS.get(muxer, "libx264")
    profile = ENCODERS[codec]
    encoder_options = dict(profile.fixed_options)
    if options.crf is not None and profile.crf_range is None:
        raise VideoOptionsError(f"{codec} is lossless: it takes no --crf")
    if profile.crf_range is not None:
        crf = profile.default_crf if options.crf is None else options.crf
        low, high = profile.crf_range
        if not low <= crf <= high:
            raise VideoOptionsError(f"{codec} takes a crf from {low} to {high}, got {crf}")
        encoder_options["crf"] = str(crf)
    if options.preset is not None and options.preset not in profile.presets:
        offered = f"one of {', '.join(profile.presets)}" if profile.presets else "no --preset"
        raise VideoOptionsError(f"{codec} takes {offered}, not preset {options.preset!r}")
    if profile.presets:
        encoder_options["preset"] = options.preset or str(profile.default_preset)
    writable = [pixel_format.name for pixel_format in av.Codec(codec, "w").video_formats or ()]
    if options.pix_fmt is not None and options.pix_fmt not in writable:
        raise VideoOptionsError(f"{codec} cannot write pixel format {options.pix_fmt!r} "
                                f"(it writes {', '.join(writable)})")
    pix_fmt = options.pix_fmt or (input_pix_fmt if input_pix_fmt in writable else FALLBACK_PIX_FMT)
    return EncoderSettings(codec, pix_fmt, encoder_options)
