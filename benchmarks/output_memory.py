"""Peak memory of upscaling large images: the integer output plus bounded working memory.

    python benchmarks/output_memory.py                              # 1000², 2000², 4000² ×4, scnet-t-x4.litesr
    python benchmarks/output_memory.py --sizes 1000,2000 --threads 2
    python benchmarks/output_memory.py --cli --sizes 1000,2000      # the whole `litesr upscale IN -o OUT.png`

Each size runs in a fresh process. By default that process loads the model, deploys it and
upscales a random RGB uint8 image with automatic tiles (``tile=0``, what ``litesr upscale``
does by default): the upscaling alone. With ``--cli`` it is the command a user runs,
``litesr upscale IN.png -o OUT.png``: reading, upscaling and writing the PNG, on a
photo-like input (smooth colour fields plus noise, so the PNG encoder meets realistic data,
not incompressible noise). Peak RSS is that process's high-water mark (VmHWM, or
``ru_maxrss`` from ``wait4`` for the CLI): interpreter, PyTorch, model, input, output and
encoder all included, which is what an operating system or a container limit sees.
LiteSR's target is a peak of at most the output's integer size + 1 GiB.
"""
from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, markdown_table  # noqa: E402

import litesr  # noqa: E402
from litesr.profile import peak_rss  # noqa: E402

GIB = 1 << 30
MIB = 1 << 20


def measure(model_name: str, side: int) -> dict[str, float]:
    """Upscale one random side×side RGB image in this process; what it cost."""
    model = litesr.load(model_name).deploy()
    image = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    start = time.perf_counter()
    output = model.upscale(image, tile=0)
    return {"seconds": time.perf_counter() - start, "output_bytes": output.nbytes, "peak_rss": peak_rss(),
            "output_height": output.shape[0], "output_width": output.shape[1]}


def photo_like(side: int) -> np.ndarray:
    """A side×side RGB image that compresses like a photo: smooth colour fields plus mild noise."""
    rng = np.random.default_rng(0)
    cells = max(2, side // 64)
    coarse = rng.integers(0, 256, (cells, cells, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((side, side), Image.BICUBIC)).astype(np.int16)
    smooth += rng.integers(-4, 5, smooth.shape, dtype=np.int16)
    return np.clip(smooth, 0, 255).astype(np.uint8)


def png_size(path: Path) -> tuple[int, int, int]:
    """(width, height, channels) from a PNG's header; Pillow would refuse a 16000² file as a bomb."""
    with open(path, "rb") as fh:
        header = fh.read(26)
    width, height, _depth, colour_type = struct.unpack(">IIBB", header[16:26])
    return width, height, {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]


def measure_cli(model_name: str, side: int, threads: int) -> dict[str, float]:
    """Run ``litesr upscale IN.png -o OUT.png`` in a fresh process; its peak RSS (``wait4``) and time."""
    with tempfile.TemporaryDirectory(prefix="litesr-output-memory-") as work:
        source, target = Path(work) / "in.png", Path(work) / "out.png"
        Image.fromarray(photo_like(side)).save(source)
        command = [sys.executable, "-m", "litesr", "upscale", str(source), "-o", str(target), "-m", model_name,
                   "--threads", str(threads), "-q"]
        start = time.perf_counter()
        with open(Path(work) / "stderr.txt", "w+") as stderr:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
            _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage, not all children's
            process.returncode = os.waitstatus_to_exitcode(status)
            seconds = time.perf_counter() - start
            stderr.seek(0)
            if process.returncode != 0:
                raise RuntimeError(f"`{' '.join(command)}` exited with {process.returncode}:\n{stderr.read()[-2000:]}")
        width, height, channels = png_size(target)
        return {"seconds": seconds, "output_bytes": width * height * channels, "peak_rss": usage.ru_maxrss * 1024,
                "output_height": height, "output_width": width, "file_bytes": target.stat().st_size}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="scnet-t-x4.litesr", help="zoo name or weights file")
    parser.add_argument("--sizes", default="1000,2000,4000", help="input sides, comma-separated")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--cli", action="store_true", help="measure the whole `litesr upscale IN -o OUT.png`")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # one measurement, as JSON
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child is not None:
        print(json.dumps(measure(args.model, args.child)))
        return 0
    rows = []
    for side in (int(text) for text in args.sizes.split(",")):
        try:
            result = measure_cli(args.model, side, args.threads) if args.cli else run_child(args, side)
        except RuntimeError as exc:
            print(f"{side}×{side} failed: {exc}", file=sys.stderr)
            return 1
        integer, peak = result["output_bytes"], result["peak_rss"]
        channels = integer // (result["output_width"] * result["output_height"])
        row = [f"{side}×{side}", f"{result['output_width']}×{result['output_height']}×{channels}",
               f"{integer / GIB:.2f} GiB", f"{peak / GIB:.2f} GiB", f"{(peak - integer) / GIB:.2f} GiB"]
        if args.cli:
            row.append(f"{result['file_bytes'] / MIB:.0f} MiB")
        rows.append([*row, f"{result['seconds']:.0f} s"])
        print(" | ".join(rows[-1]), file=sys.stderr, flush=True)  # progress, and a record if a later size is cut short
    facts = machine()
    what = "`litesr upscale IN.png -o OUT.png` (photo-like RGB input)" if args.cli else "SRModel.upscale"
    print(f"{facts['date']} · {what}, each size in a fresh process · model: {args.model}, tile auto, "
          f"{args.threads} thread(s) · CPU capability: {torch.backends.cpu.get_cpu_capability()} · "
          f"torch {torch.__version__} · {facts['cores']} cores, load average {facts['load_average']}\n")
    headers = ["input", "output", "integer size", "peak RSS", "RSS − integer size"]
    print(markdown_table([*headers, *(["PNG file"] if args.cli else []), "time"], rows))
    return 0


def run_child(args: argparse.Namespace, side: int) -> dict[str, float]:
    """:func:`measure` in a fresh interpreter, so each size's peak is its own."""
    done = subprocess.run([sys.executable, __file__, "--model", args.model, "--threads", str(args.threads),
                           "--child", str(side)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.exit(main())
