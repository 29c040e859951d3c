"""``litesr serve`` as a command: refusals before starting, and a live server stopped by signals."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("fastapi")

from litesr.archs import SCNet  # noqa: E402
from litesr.checkpoints import save_safetensors  # noqa: E402
from litesr.cli import main  # noqa: E402
from litesr.spec import ArchSpec  # noqa: E402


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    kwargs = dict(num_feat=8, num_block=1, upscale=2, use_pixelshuffle=True)
    path = tmp_path_factory.mktemp("weights") / "tiny_x2.safetensors"
    save_safetensors(path, SCNet(**kwargs), ArchSpec("scnet", kwargs))
    return path


def test_other_addresses_need_a_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--host", "0.0.0.0"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: --host 0.0.0.0") and "--token" in error and "--insecure-no-token" in error
    assert error.count("\n") == 1


def test_a_busy_port_is_one_error_line(tiny_weights: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", "-w", str(tiny_weights), "--port", str(port)]) == 1
    error = capsys.readouterr().err
    assert re.fullmatch(rf"error: cannot listen on 127\.0\.0\.1:{port}: .+\n", error)


def test_a_bad_port_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--port", "70000"])
    assert exit_.value.code == 2 and "port number" in capsys.readouterr().err


def start_server(model_args: list[str], temp: Path) -> tuple[subprocess.Popen[str], str]:
    """A live ``litesr serve`` on a free loopback port, and its base URL (from its start-up line)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "litesr", "serve", *model_args, "--port", "0", "--queue", "2"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(temp)})
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        found = re.search(r"open (http://127\.0\.0\.1:\d+)/", line)
        if found:
            return process, found.group(1)
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError(f"the server did not start: {process.stderr.read()}")


@pytest.mark.slow
@pytest.mark.parametrize("signal_number, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_live_server_answers_then_stops_cleanly_on_a_signal(tiny_weights: Path, tmp_path: Path,
                                                            signal_number: int, status: int) -> None:
    import httpx

    process, url = start_server(["-w", str(tiny_weights)], tmp_path)
    try:
        assert httpx.get(f"{url}/healthz", timeout=10).json()["status"] == "ok"
        response = httpx.post(f"{url}/api/upscale", files={"image": ("x.png", _png(), "image/png")}, timeout=30)
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        process.send_signal(signal_number)
        assert process.wait(timeout=30) == status
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not list(tmp_path.glob("litesr-serve-*")), "the server left its temp folder behind"


def _png() -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()
