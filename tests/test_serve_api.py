"""``litesr serve``'s HTTP API, in process: statuses, sizes, limits, errors, concurrency, cleanup.

The app runs under httpx's ASGI transport (no socket), with a tiny SCNet (8 features, one
block) served through ``-w``'s path, so each request costs milliseconds.
"""
from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

import litesr  # noqa: E402
from litesr.archs import SCNet  # noqa: E402
from litesr.batch import Job, UpscaleOptions, upscale_file  # noqa: E402
from litesr.checkpoints import save_safetensors  # noqa: E402
from litesr.serve import ModelCatalogue, ServeConfig, create_app  # noqa: E402
from litesr.spec import ArchSpec  # noqa: E402

TINY = "tiny_x2.safetensors"
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> litesr.SRModel:
    torch.manual_seed(0)
    kwargs = dict(num_feat=8, num_block=1, upscale=2, use_pixelshuffle=True)
    path = tmp_path_factory.mktemp("weights") / TINY
    save_safetensors(path, SCNet(**kwargs), ArchSpec("scnet", kwargs))
    return litesr.load(path).deploy()


def png_bytes(height: int = 12, width: int = 20, mode: str = "RGB", **save: object) -> bytes:
    rng = np.random.default_rng(height * 1000 + width)
    channels = {"RGB": 3, "RGBA": 4}.get(mode)
    shape = (height, width) if channels is None else (height, width, channels)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(buffer, "PNG", **save)
    return buffer.getvalue()


class Server:
    """The app, an async client on it, and the app's private temp folder."""

    def __init__(self, app: object, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client

    @property
    def temp_entries(self) -> list[Path]:
        return list(self.app.state.temp_files.root.iterdir())  # type: ignore[attr-defined]

    async def upscale(self, image: bytes, name: str = "photo.png", headers: dict | None = None,
                      **fields: str) -> httpx.Response:
        return await self.client.post("/api/upscale", files={"image": (name, image, "image/png")}, data=fields,
                                      headers=headers)


@pytest.fixture
def make_server(tiny_model: litesr.SRModel, tmp_path: Path):
    """``async with make_server(queue=4, ...) as server``: the app with its lifespan running."""
    @asynccontextmanager
    async def start(**config: object) -> AsyncIterator[Server]:
        catalogue = ModelCatalogue(tiny_model, TINY, CPU)
        app = create_app(catalogue, CPU, ServeConfig(temp_dir=tmp_path, **config))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                yield Server(app, client)
        assert not list(tmp_path.iterdir()), "the server left its temp folder behind"

    return start


def run(coroutine):  # noqa: ANN001, ANN201 - a tiny local helper
    return asyncio.run(coroutine)


def test_upscale_returns_the_image_with_its_type_name_and_size(make_server) -> None:
    async def scenario() -> None:
        async with make_server() as server:
            response = await server.upscale(png_bytes(12, 20), name="holiday photo.png")
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == "image/png"
            assert "holiday%20photo_x2.png" in response.headers["content-disposition"]
            assert Image.open(io.BytesIO(response.content)).size == (40, 24)
            assert json.loads(response.headers["x-litesr-notes"]) == []
            assert server.temp_entries == []

            jpeg = await server.upscale(png_bytes(8, 8), name="a.png", format="jpg")
            assert jpeg.headers["content-type"] == "image/jpeg"
            assert "a_x2.jpg" in jpeg.headers["content-disposition"]
            assert Image.open(io.BytesIO(jpeg.content)).format == "JPEG"

    run(scenario())


def test_results_equal_litesr_upscale_alpha_and_icc_included(make_server, tiny_model, tmp_path) -> None:
    """The CLI's own per-file function on the same file gives the same pixels, alpha and ICC profile."""
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image = png_bytes(10, 14, "RGBA", icc_profile=icc)

    async def scenario() -> bytes:
        async with make_server() as server:
            response = await server.upscale(image)
            assert response.status_code == 200, response.text
            return response.content

    served = Image.open(io.BytesIO(run(scenario())))
    source, target = tmp_path / "cli-in.png", tmp_path / "cli-out.png"
    source.write_bytes(image)
    upscale_file(tiny_model, Job(source, target), UpscaleOptions(scale=2, precision="auto"))  # the CLI's default
    cli = Image.open(target)
    assert served.mode == cli.mode == "RGBA" and served.size == (28, 20)
    assert served.info.get("icc_profile") == cli.info.get("icc_profile") == icc
    assert np.array_equal(np.asarray(served), np.asarray(cli))
    source.unlink(), target.unlink()


def test_models_healthz_page_and_docs(make_server) -> None:
    async def scenario() -> None:
        async with make_server() as server:
            health = await server.client.get("/healthz")
            assert health.json()["status"] == "ok"
            listing = (await server.client.get("/api/models")).json()
            assert listing["default"] == TINY
            names = [model["name"] for model in listing["models"]]
            assert TINY in names and "scnet-t-x2.litesr" in names
            tiny = next(model for model in listing["models"] if model["name"] == TINY)
            assert tiny["scales"] == [2] and tiny["speed"] == "fast" and tiny["default"]
            assert listing["precisions"][:2] == ["auto", "fp32"] and "fp16" not in listing["precisions"]
            assert listing["default_precision"] == "auto" and "int8" not in listing["precisions"]
            page = await server.client.get("/")
            assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
            assert "http" not in page.text.replace("http-equiv", "")  # nothing loaded from elsewhere
            for asset in ("static/app.js", "static/zip.js", "static/style.css"):
                assert (await server.client.get(f"/{asset}")).status_code == 200
            docs = await server.client.get("/docs")
            assert docs.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in docs.text
            schema = (await server.client.get("/openapi.json")).json()
            assert "/api/upscale" in schema["paths"]

    run(scenario())


@pytest.mark.parametrize("fields, message", [
    ({"model": "../../etc/passwd"}, "unknown model"),
    ({"scale": "3"}, "not served"),
    ({"precision": "fp16"}, "fp16"),
    ({"precision": "fp64"}, "unknown precision"),
    ({"precision": "int8"}, "not available on this server"),
    ({"format": "gif"}, "unknown format"),
    ({"progress_id": "../x"}, "progress_id"),
    ({"colour": "red"}, "unknown form field"),
])
def test_bad_parameters_are_400_with_a_json_error(make_server, fields: dict, message: str) -> None:
    async def scenario() -> None:
        async with make_server() as server:
            response = await server.upscale(png_bytes(), **fields)
            assert response.status_code == 400
            assert message in response.json()["error"]

    run(scenario())


def test_bad_images_are_400_naming_the_clients_file_not_the_servers(make_server) -> None:
    async def scenario() -> None:
        async with make_server() as server:
            for content in (b"not an image at all", b"", png_bytes()[:60]):
                response = await server.upscale(content, name="../../secret/holiday.png")
                assert response.status_code == 400
                error = response.json()["error"]
                assert "holiday.png" in error and str(server.app.state.temp_files.root) not in error
            missing = await server.client.post("/api/upscale", data={"model": TINY})
            assert missing.status_code == 400 and "'image'" in missing.json()["error"]
            assert server.temp_entries == []

    run(scenario())


def test_upload_and_pixel_limits_are_413(make_server) -> None:
    async def scenario() -> None:
        async with make_server(max_upload_bytes=4096, max_pixels=100) as server:
            too_big = await server.upscale(np.random.default_rng(0).bytes(20_000))
            assert too_big.status_code == 413 and "MiB" in too_big.json()["error"]
            too_many = await server.upscale(png_bytes(11, 10))
            assert too_many.status_code == 413 and "110 pixels" in too_many.json()["error"]
            assert (await server.upscale(png_bytes(10, 10))).status_code == 200

            async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
                yield (b'--b\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n'
                       b"Content-Type: image/png\r\n\r\n")
                for _ in range(20):
                    yield b"x" * 8192

            streamed = await server.client.post("/api/upscale", content=chunks(),
                                                headers={"content-type": "multipart/form-data; boundary=b"})
            assert streamed.status_code == 413
            assert server.temp_entries == []

    run(scenario())


def test_token_is_required_on_the_api_only(make_server) -> None:
    async def scenario() -> None:
        async with make_server(token="s3cret-token") as server:
            assert (await server.client.get("/healthz")).status_code == 200
            assert (await server.client.get("/")).status_code == 200
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                denied = await server.client.get("/api/models", headers=headers)
                assert denied.status_code == 401 and "token" in denied.json()["error"]
                assert (await server.upscale(png_bytes(), headers=headers)).status_code == 401
            good = {"Authorization": "Bearer s3cret-token"}
            assert (await server.upscale(png_bytes(), headers=good)).status_code == 200

    run(scenario())


def test_sixteen_simultaneous_requests_with_queue_4(make_server) -> None:
    """Every request is answered 200 or 503 (with Retry-After); the server lives on; nothing is left on disk."""
    async def scenario() -> None:
        async with make_server(queue=4) as server:
            image = png_bytes(32, 32)
            responses = await asyncio.gather(*(server.upscale(image, progress_id=f"job-{n:04d}")
                                               for n in range(16)))
            statuses = [response.status_code for response in responses]
            assert set(statuses) <= {200, 503} and statuses.count(200) >= 4 and 503 in statuses
            for response in responses:
                if response.status_code == 503:
                    assert int(response.headers["retry-after"]) >= 1 and "busy" in response.json()["error"]
                else:
                    assert Image.open(io.BytesIO(response.content)).size == (64, 64)
            health = (await server.client.get("/healthz")).json()
            assert health["queue"] == {"capacity": 4, "admitted": 0, "running": 0}
            assert (await server.upscale(image)).status_code == 200
            assert server.temp_entries == []

    run(scenario())


def test_progress_is_reported_while_a_job_runs_and_gone_after(make_server) -> None:
    async def scenario() -> None:
        async with make_server() as server:
            seen: list[dict] = []
            upload = asyncio.create_task(server.upscale(png_bytes(64, 64), progress_id="watch-me-1"))
            while not upload.done():
                response = await server.client.get("/api/progress/watch-me-1")
                if response.status_code == 200:
                    seen.append(response.json())
                await asyncio.sleep(0.002)
            assert (await upload).status_code == 200
            assert all(entry["state"] in ("waiting", "running", "finished") for entry in seen)
            gone = await server.client.get("/api/progress/watch-me-1")
            assert gone.status_code == 404 and "error" in gone.json()

    run(scenario())


def test_unknown_routes_and_methods_are_json_errors(make_server) -> None:
    async def scenario() -> None:
        async with make_server() as server:
            missing = await server.client.get("/nothing-here")
            assert missing.status_code == 404 and missing.json() == {"error": "not found: GET /nothing-here"}
            wrong = await server.client.get("/api/upscale")
            assert wrong.status_code == 405 and "error" in wrong.json()

    run(scenario())
