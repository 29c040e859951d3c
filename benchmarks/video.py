"""Frames per second of ``upscale_video`` (decode → model → encode) for a 320×180 clip at ×4.

    python benchmarks/video.py                                   # every installed ×4 zoo model, fp32
    python benchmarks/video.py --models span-x4.official --frames 24 --precision fp32,bf16 --threads 2

The clip (noise plus a moving gradient, AAC audio) is made in a temp folder with PyAV; the
model runs in its deploy form; the encoder is the default (libx264 crf 18 medium). Prints the
Markdown table of BENCHMARKS.md's "Video" section with the CPU capability PyTorch reports.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import markdown_table  # noqa: E402

import litesr  # noqa: E402
from litesr.video import VideoOptions, upscale_video  # noqa: E402
from litesr.video.formats import require_av  # noqa: E402


def make_clip(path: Path, frames: int, width: int = 320, height: int = 180) -> Path:
    """A 25 fps H.264 clip of ``frames`` frames with a silent AAC track."""
    av = require_av()
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    with av.open(str(path), "w") as output:
        video = output.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = output.add_stream("aac", rate=48000)
        for index in range(frames):
            pixels = np.clip(np.roll(ramp, index * 8, axis=1) + rng.normal(0, 20, (height, width, 3)), 0, 255)
            frame = av.VideoFrame.from_ndarray(pixels.astype(np.uint8))
            frame.pts, frame.time_base = index, Fraction(1, 25)
            output.mux(video.encode(frame))
        output.mux(video.encode(None))
        samples = np.zeros((1, 1024), np.float32)
        for index in range(round(frames / 25 * 48000 / 1024)):
            sound = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            sound.sample_rate, sound.pts = 48000, index * 1024
            output.mux(audio.encode(sound))
        output.mux(audio.encode(None))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="span-x4.official,span-x4-ch52.official,scnet-t-x4.litesr,"
                                            "lesrcnn-x4.official")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--precision", default="fp32", help="comma-separated: fp32,bf16 (fp16 on CUDA)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = litesr.devices.resolve_device(args.device)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        clip = make_clip(Path(folder) / "clip.mp4", args.frames)
        for name in args.models.split(","):
            try:
                model = litesr.load(name, device=device).deploy()
            except litesr.errors.ModelNotFoundError as error:
                print(f"skipped: {error}", file=sys.stderr)
                continue
            for precision in args.precision.split(","):
                upscale_video(model, clip, Path(folder) / "warm.mp4", VideoOptions(frames=litesr.video.FrameRange(0, 4),
                                                                                   precision=precision))
                report = upscale_video(model, clip, Path(folder) / "out.mp4", VideoOptions(precision=precision))
                rows.append([f"`{name}`", precision, f"{report.frames}", f"{report.fps:.2f}"])
                print(f"{name} {precision}: {report.fps:.2f} frames/s ({report.encoder})", file=sys.stderr)
    print(f"device {device}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, torch {torch.__version__}")
    print(markdown_table(["model", "precision", "frames", "frames/s (320×180 → 1280×720)"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
