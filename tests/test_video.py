"""Video upscaling (issue 17) on tiny videos made here with PyAV: sizes, timestamps, streams, failures."""
from __future__ import annotations

import argparse
import os
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import litesr
from litesr.archs import SCNet
from litesr.checkpoints import save_safetensors
from litesr.errors import LiteSRError
from litesr.video import (
    CorruptVideoError,
    FrameRange,
    VideoOptions,
    VideoOptionsError,
    is_video_file,
    output_video_suffix,
    probe_video,
    upscale_video,
)
from litesr.video.timecode import format_time, parse_time

av = pytest.importorskip("av")

WIDTH, HEIGHT = 32, 24
#: Variable frame rate on purpose: the gaps (40, 80 ms) must survive.
PTS_MS = (0, 40, 80, 160, 200, 280)
AUDIO_SECONDS = 0.32
MS = Fraction(1, 1000)


def make_video(path: Path, *, codec: str = "libx264", audio: str = "aac", subtitle: str | None = None,
               rotation: int = 0, pts: tuple[int, ...] = PTS_MS, size: tuple[int, int] = (WIDTH, HEIGHT)) -> Path:
    """A few noisy frames at ``pts`` (ms), a tone in ``audio``, and one subtitle when asked."""
    width, height = size
    with av.open(str(path), "w") as output:
        video = output.add_stream(codec, rate=25)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = video.codec_context.time_base = MS
        video.codec_context.color_range, video.codec_context.colorspace = 1, 1  # tv range, BT.709
        video.codec_context.color_primaries = video.codec_context.color_trc = 1
        if rotation:
            video.set_display_rotation(rotation)
        sound = output.add_stream(audio, rate=48000)
        sound.layout = "mono"
        text = output.add_mux_stream(subtitle) if subtitle else None
        rng = np.random.default_rng(0)
        for stamp in pts:
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
            frame.pts, frame.time_base = stamp, MS
            output.mux(video.encode(frame))
        output.mux(video.encode(None))
        chunk, total, done = sound.codec_context.frame_size or 960, round(AUDIO_SECONDS * 48000), 0
        while done < total:
            samples = (0.3 * np.sin(np.arange(done, done + chunk) / 20)).astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, done
            output.mux(sound.encode(frame))
            done += chunk
        output.mux(sound.encode(None))
        if text is not None:
            packet = av.Packet(b"\x00\x05Hello" if subtitle == "mov_text" else b"Hello")
            packet.stream, packet.pts, packet.dts, packet.duration, packet.time_base = text, 0, 0, 100, MS
            output.mux(packet)
    return path


def video_frames(path: Path) -> list[tuple[float, int, int, int]]:
    """(time in s, width, height, rotation) of every decoded frame."""
    with av.open(str(path)) as container:
        return [(float(frame.time), frame.width, frame.height, frame.rotation)
                for frame in container.decode(video=0)]


def stream_summary(path: Path) -> list[tuple[str, str, float]]:
    """(type, codec, duration in s) of each audio/subtitle stream, from its packets."""
    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type in ("audio", "subtitle")]
        ends = {s.index: 0.0 for s in streams}
        for packet in container.demux(*streams):
            if packet.pts is not None:
                end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                ends[packet.stream.index] = max(ends[packet.stream.index], end)
        return [(s.type, s.codec_context.name, round(ends[s.index], 3)) for s in streams]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    net = SCNet(num_feat=8, num_block=1, upscale=2, use_pixelshuffle=True)
    spec = litesr.ArchSpec("scnet", dict(num_feat=8, num_block=1, upscale=2, use_pixelshuffle=True))
    path = save_safetensors(tmp_path_factory.mktemp("weights") / "tiny_x2.safetensors", net, spec)
    return litesr.load(path).deploy()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_video(tmp_path_factory.mktemp("clips") / "clip.mp4", subtitle="mov_text", rotation=90)


def test_upscale_keeps_frames_timestamps_rotation_and_streams(model, clip, tmp_path):
    target = tmp_path / "out.mp4"
    progress: list[tuple[int, int]] = []
    report = upscale_video(model, clip, target, on_progress=lambda done, total: progress.append((done, total)))
    frames = video_frames(target)
    assert [(w, h, r) for _, w, h, r in frames] == [(WIDTH * 2, HEIGHT * 2, 90)] * len(PTS_MS)
    assert [round(t * 1000) for t, *_ in frames] == list(PTS_MS)  # variable frame rate kept
    assert stream_summary(target) == stream_summary(clip) == [("audio", "aac", AUDIO_SECONDS),
                                                              ("subtitle", "mov_text", 0.1)]
    assert report.frames == len(PTS_MS) and report.output_size == (WIDTH * 2, HEIGHT * 2)
    assert report.encoder == "libx264 crf 18 preset medium yuv420p"
    assert report.copied_streams == ["audio aac", "subtitle mov_text"]
    assert progress[-1] == (len(PTS_MS), len(PTS_MS))
    with av.open(str(target)) as container:
        context = container.streams.video[0].codec_context
        assert (context.color_range, context.colorspace, context.color_primaries, context.color_trc) == (1, 1, 1, 1)
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # no temp file left


def test_frames_match_the_model_on_each_frame(model, clip, tmp_path):
    """The video path (batched forwards, RGB conversions) upscales like SRModel.upscale, up to coding loss."""
    target = upscale_video(model, clip, tmp_path / "lossless.mkv", VideoOptions(codec="ffv1", pix_fmt="yuv444p")).target
    with av.open(str(clip)) as source, av.open(str(target)) as result:
        first_in = next(source.decode(video=0)).to_ndarray(format="rgb24")
        first_out = next(result.decode(video=0)).to_ndarray(format="rgb24")
    expected = model.upscale(first_in).astype(int)
    assert np.abs(first_out.astype(int) - expected).mean() < 2.0  # only yuv444 rounding differs


def test_matroska_copies_opus_and_subrip(model, tmp_path):
    source = make_video(tmp_path / "in.mkv", audio="libopus", subtitle="subrip")
    report = upscale_video(model, source, tmp_path / "out.mkv", VideoOptions(batch=1))
    assert report.copied_streams == ["audio opus", "subtitle srt"]  # FFmpeg names its SubRip decoder srt
    assert stream_summary(report.target) == stream_summary(source)
    assert len(video_frames(report.target)) == len(PTS_MS)


def test_segment_by_frames_starts_at_zero(model, clip, tmp_path):
    report = upscale_video(model, clip, tmp_path / "part.mp4", VideoOptions(frames=FrameRange(2, 5)))
    times = [round(t * 1000) for t, *_ in video_frames(report.target)]
    assert times == [stamp - PTS_MS[2] for stamp in PTS_MS[2:5]]
    (kind, codec, seconds), _ = stream_summary(report.target)
    assert (kind, codec) == ("audio", "aac") and seconds < AUDIO_SECONDS


def test_segment_by_time_and_outscale(model, clip, tmp_path):
    options = VideoOptions(start=0.1, duration=0.15, outscale=1.5)
    report = upscale_video(model, clip, tmp_path / "part.mp4", options)
    frames = video_frames(report.target)
    assert [round(t * 1000) for t, *_ in frames] == [0, 40]  # frames at 160 and 200 ms
    assert {(w, h) for _, w, h, _ in frames} == {(48, 36)}


def test_empty_segment_is_an_error(model, clip, tmp_path):
    with pytest.raises(VideoOptionsError, match="holds no frames"):
        upscale_video(model, clip, tmp_path / "none.mp4", VideoOptions(frames=FrameRange(50, 60)))
    assert not list(tmp_path.iterdir())


def test_subtitles_a_container_cannot_hold_are_reported(model, tmp_path):
    source = make_video(tmp_path / "in.mkv", subtitle="subrip")
    report = upscale_video(model, source, tmp_path / "out.mp4")
    assert report.copied_streams == ["audio aac"]
    assert len(report.warnings) == 1 and "subtitle srt" in report.warnings[0] and ".mkv" in report.warnings[0]


def test_not_a_video_is_one_line_naming_the_file(model, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    with pytest.raises(CorruptVideoError) as caught:
        upscale_video(model, broken, tmp_path / "out.mp4")
    assert str(broken) in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "out.mp4").exists()


def test_damaged_stream_names_the_time_position(model, tmp_path):
    source = make_video(tmp_path / "in.mkv", pts=tuple(range(0, 1200, 40)), size=(64, 48))
    data = bytearray(source.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 400] = os.urandom(400)
    damaged = tmp_path / "damaged.mkv"
    damaged.write_bytes(bytes(data))
    try:
        report = upscale_video(model, damaged, tmp_path / "out.mkv")
    except LiteSRError as error:
        assert str(damaged) in str(error) and "0:00:0" in str(error) and "\n" not in str(error)
        assert not (tmp_path / "out.mkv").exists()
    else:  # FFmpeg concealed the damage: the frames that decoded are all there, at full size
        assert report.frames == len(video_frames(report.target)) > 0


def test_interrupted_run_leaves_no_file_and_no_threads(model, clip, tmp_path):
    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        upscale_video(model, clip, tmp_path / "out.mp4", VideoOptions(batch=1), on_progress=interrupt)
    assert not list(tmp_path.iterdir())
    assert not [t for t in threading.enumerate() if t.name.startswith("litesr-video")]


def test_existing_output_is_kept_without_replace(model, clip, tmp_path):
    target = tmp_path / "out.mp4"
    target.write_bytes(b"theirs")
    with pytest.raises(LiteSRError, match="created meanwhile"):
        upscale_video(model, clip, target, VideoOptions(replace=False))
    assert target.read_bytes() == b"theirs"


@pytest.mark.parametrize(("options", "message"), [
    (VideoOptions(crf=70), "crf from 0 to 51"),
    (VideoOptions(codec="libvpx-vp9", preset="fast"), "no --preset"),
    (VideoOptions(codec="ffv1", crf=10), "lossless"),
    (VideoOptions(pix_fmt="rgb565"), "cannot write pixel format"),
    (VideoOptions(outscale=1.3), "odd sides"),
])
def test_bad_encoder_settings_fail_before_work(model, clip, tmp_path, options, message):
    with pytest.raises(VideoOptionsError, match=message):
        upscale_video(model, clip, tmp_path / "out.mp4", options)
    assert not list(tmp_path.iterdir())


def test_unwritable_container_suffix(model, clip, tmp_path):
    with pytest.raises(VideoOptionsError, match=r"out\.avi.*\.mkv"):
        upscale_video(model, clip, tmp_path / "out.avi")


def test_options_and_names():
    assert FrameRange.parse("3:") == FrameRange(3, None) and FrameRange.parse(":7") == FrameRange(0, 7)
    for bad in ("5:2", "x:3", "4", "-1:3"):
        with pytest.raises(VideoOptionsError):
            FrameRange.parse(bad)
    with pytest.raises(VideoOptionsError, match="not both"):
        VideoOptions(frames=FrameRange(0, 2), start=1.0)
    with pytest.raises(VideoOptionsError, match="unknown codec"):
        VideoOptions(codec="h264")
    assert parse_time("1:23.5") == 83.5 and parse_time("0:01:00") == 60 and format_time(83.4567) == "0:01:23.457"
    with pytest.raises(ValueError):
        parse_time("1:75")
    assert is_video_file("a/Clip.MP4") and not is_video_file("a/clip.png")
    assert output_video_suffix("clip.avi") == ".mkv" and output_video_suffix("clip.webm") == ".webm"


def test_probe_describes_the_clip(clip):
    info = probe_video(clip)
    assert (info.width, info.height, info.frames, info.pix_fmt) == (WIDTH, HEIGHT, len(PTS_MS), "yuv420p")
    assert [kind for _, kind, _ in info.other_streams] == ["audio", "subtitle"]


def test_cli_arguments_become_video_options():
    from litesr.video.cli import add_video_arguments, video_options_from_args

    parser = argparse.ArgumentParser()
    parser.add_argument("--outscale", type=float)
    parser.add_argument("--overwrite", action="store_true")
    add_video_arguments(parser)
    args = parser.parse_args(["--codec", "libx265", "--crf", "22", "--preset", "slow", "--pix-fmt", "yuv420p10le",
                              "--frames", "10:20", "--outscale", "3"])
    options = video_options_from_args(args)
    assert (options.codec, options.crf, options.preset, options.pix_fmt) == ("libx265", 22, "slow", "yuv420p10le")
    assert options.frames == FrameRange(10, 20) and options.outscale == 3 and options.replace is False
    timed = video_options_from_args(parser.parse_args(["--start", "1:02.5", "--duration", "4"]))
    assert (timed.start, timed.duration, timed.frames) == (62.5, 4.0, None)
    with pytest.raises(SystemExit):
        parser.parse_args(["--frames", "3:1"])


def test_litesr_upscale_takes_a_folder_mixing_images_and_videos(clip, tmp_path, capsys):
    """The command line: videos go through the video pipeline, images through the image one."""
    from PIL import Image

    from litesr.cli import main

    weights = tmp_path / "tiny_x2.safetensors"
    save_safetensors(weights, SCNet(num_feat=8, num_block=1, upscale=2, use_pixelshuffle=True),
                     litesr.ArchSpec("scnet", dict(num_feat=8, num_block=1, upscale=2, use_pixelshuffle=True)))
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "clip.mp4").write_bytes(clip.read_bytes())
    Image.new("RGB", (10, 6), (200, 30, 30)).save(folder / "still.png")
    code = main(["upscale", str(folder), "-o", str(tmp_path / "out"), "-w", str(weights), "--crf", "30", "-q"])
    assert code == 0, capsys.readouterr().err
    assert Image.open(tmp_path / "out" / "still_x2.png").size == (20, 12)
    source, result = probe_video(clip), probe_video(tmp_path / "out" / "sub" / "clip_x2.mp4")
    assert (result.width, result.height) == (2 * source.width, 2 * source.height)
    assert result.frames == source.frames
    code = main(["upscale", str(clip), "-o", str(tmp_path / "seg.mkv"), "-w", str(weights), "--frames", "1:3",
                 "--duration", "1", "-q"])
    assert code == 2 or code == 1
    assert "cannot be combined" in capsys.readouterr().err
    assert not (tmp_path / "seg.mkv").exists()
