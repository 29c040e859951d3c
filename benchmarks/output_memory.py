"""Peak memory of upscaling large images: the integer output plus bounded working memory.

    python benchmarks/output_memory.py                              # 1000², 2000², 4000² ×4, scnet-t-x4.litesr
    python benchmarks/output_memory.py --sizes 1000,2000 --threads 2

Each size runs in a fresh process that loads the model, deploys it and upscales a random
RGB uint8 image with automatic tiles (``tile=0``, what ``litesr upscale`` does by
default). Peak RSS is that process's high-water mark (VmHWM): interpreter, PyTorch, model,
input and output all included, which is what an operating system or a container limit
sees. LiteSR's target is a peak of at most the output's integer size + 1 GiB.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import markdown_table  # noqa: E402

import litesr  # noqa: E402
from litesr.profile import peak_rss  # noqa: E402

GIB = 1 << 30


def measure(model_name: str, side: int) -> dict[str, float]:
    """Upscale one random side×side RGB image in this process; what it cost."""
    model = litesr.load(model_name).deploy()
    image = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    start = time.perf_counter()
    output = model.upscale(image, tile=0)
    return {"seconds": time.perf_counter() - start, "output_bytes": output.nbytes, "peak_rss": peak_rss(),
            "output_height": output.shape[0], "output_width": output.shape[1]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="scnet-t-x4.litesr", help="zoo name or weights file")
    parser.add_argument("--sizes", default="1000,2000,4000", help="input sides, comma-separated")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # one measurement, as JSON
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child is not None:
        print(json.dumps(measure(args.model, args.child)))
        return 0
    rows = []
    for side in (int(text) for text in args.sizes.split(",")):
        done = subprocess.run([sys.executable, __file__, "--model", args.model, "--threads", str(args.threads),
                               "--child", str(side)], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{side}×{side} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
            return 1
        result = json.loads(done.stdout.strip().splitlines()[-1])
        integer, peak = result["output_bytes"], result["peak_rss"]
        rows.append([f"{side}×{side}", f"{result['output_width']}×{result['output_height']}×3",
                     f"{integer / GIB:.2f} GiB", f"{peak / GIB:.2f} GiB", f"{(peak - integer) / GIB:.2f} GiB",
                     f"{result['seconds']:.0f} s"])
    print(f"model: {args.model}, tile auto, {args.threads} thread(s), "
          f"CPU capability: {torch.backends.cpu.get_cpu_capability()}, torch {torch.__version__}\n")
    print(markdown_table(["input", "output", "integer size", "peak RSS", "RSS − integer size", "time"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
