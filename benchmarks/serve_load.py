"""Load on a live ``litesr serve``: requests/s and p50/p95 latency with 1, 4 and 16 clients.

Starts the server on a free loopback port, sends ``--requests`` uploads of one 64×64 PNG
per concurrency level (bounded in count and in ``--seconds`` per level), and prints a
Markdown table plus the server's peak RSS (Linux: VmHWM). Requests answered 503 (queue
full) are counted, not retried. Nothing but 127.0.0.1 is contacted.

    python benchmarks/serve_load.py [-m span-x4.official] [--clients 1 4 16] [--requests 48] [--queue 16]
"""
from __future__ import annotations

import argparse
import io
import re
import statistics
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image


def sample_png(side: int) -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def start_server(model: str, queue: int, threads: int | None) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "litesr", "serve", "-m", model, "--port", "0", "--queue", str(queue)]
    if threads:
        command += ["--threads", str(threads)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    for line in process.stderr:
        found = re.search(r"open (http://127\.0\.0\.1:\d+)/", line)
        if found:
            return process, found.group(1)
    raise SystemExit(f"the server did not start (exit {process.wait()})")


def peak_rss_mib(pid: int) -> float | None:
    status = Path(f"/proc/{pid}/status")
    if not status.exists():
        return None
    match = re.search(r"VmHWM:\s+(\d+) kB", status.read_text())
    return int(match.group(1)) / 1024 if match else None


def run_level(url: str, image: bytes, clients: int, requests: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    refused = failed = 0
    lock = threading.Lock()
    remaining = iter(range(requests))
    deadline = time.monotonic() + seconds

    def client() -> None:
        nonlocal refused, failed
        with httpx.Client(base_url=url, timeout=120) as http:
            while time.monotonic() < deadline:
                with lock:
                    if next(remaining, None) is None:
                        return
                started = time.perf_counter()
                response = http.post("/api/upscale", files={"image": ("bench.png", image, "image/png")})
                elapsed = time.perf_counter() - started
                with lock:
                    if response.status_code == 200:
                        latencies.append(elapsed)
                    elif response.status_code == 503:
                        refused += 1
                    else:
                        failed += 1

    workers = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - started
    ordered = sorted(latencies)
    percentile = (lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000) if ordered else \
        (lambda q: float("nan"))
    return {"clients": clients, "ok": len(latencies), "refused": refused, "failed": failed,
            "rps": len(latencies) / wall, "p50": percentile(0.5), "p95": percentile(0.95),
            "mean": statistics.fmean(ordered) * 1000 if ordered else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", default="span-x4.official")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=48, help="per concurrency level")
    parser.add_argument("--seconds", type=float, default=60.0, help="time cap per level")
    parser.add_argument("--queue", type=int, default=16, help="the server's --queue")
    parser.add_argument("--size", type=int, default=64, help="side of the square input")
    parser.add_argument("--threads", type=int, help="the server's --threads")
    args = parser.parse_args()
    image = sample_png(args.size)
    process, url = start_server(args.model, args.queue, args.threads)
    try:
        with httpx.Client(base_url=url, timeout=120) as http:  # warm-up: first forward, allocator
            for _ in range(3):
                http.post("/api/upscale", files={"image": ("bench.png", image, "image/png")}).raise_for_status()
        rows = [run_level(url, image, clients, args.requests, args.seconds) for clients in args.clients]
        rss = peak_rss_mib(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=60)
    print(f"{date.today()} · {args.model} · {args.size}×{args.size} → ×4 PNG · server --queue {args.queue} · "
          f"torch {torch.__version__} · CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print("\n| clients | ok | 503 | other errors | requests/s | p50 ms | p95 ms |\n|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['clients']} | {row['ok']} | {row['refused']} | {row['failed']} | {row['rps']:.1f} | "
              f"{row['p50']:.0f} | {row['p95']:.0f} |")
    print(f"\nserver peak RSS: {rss:.0f} MiB" if rss is not None else "\nserver peak RSS: not available here")


if __name__ == "__main__":
    main()
