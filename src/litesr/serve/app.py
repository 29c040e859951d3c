"""The ASGI app of ``litesr serve``: the page, the JSON API and their error contract.

Every error leaves as ``{"error": "<one sentence>"}`` with the status its
:class:`~litesr.serve.errors.RequestError` class carries (400 bad image or parameter, 401
token, 413 upload or pixel limit, 503 queue full with ``Retry-After``), and anything
unexpected as a 500 of the same shape: a request can fail, the server goes on. The page
and its assets come from this package (no CDN); so do the OpenAPI docs at ``/docs``
when the ``swagger-ui-bundle`` package of the ``serve`` extra is present.
"""
from __future__ import annotations

import hmac
import json
import logging
from http import HTTPStatus
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
import torch
from fastapi import FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..batch import IMAGE_SUFFIXES
from .catalogue import ModelCatalogue
from .config import ServeConfig
from .errors import BadRequestError, NotFoundError, RequestError, UnauthorizedError
from .jobs import DeviceQueue
from .upscaling import FORM_FIELDS, FORMATS, input_path, parse_form, precisions_on, run_upscale
from .uploads import TempFiles, TemporaryFileResponse, copy_upload, limited_request, remove_folder

LOG = logging.getLogger("litesr.serve")
#: The page may load nothing from elsewhere: its own scripts, styles and the images it makes.
PAGE_SECURITY_POLICY = ("default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
                        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
_BEARER = HTTPBearer(auto_error=False, description="the server's --token")
_UPLOAD_SCHEMA: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["image"],
        "properties": {
            "image": {"type": "string", "format": "binary", "description": "the image file"},
            "model": {"type": "string", "description": "a name from GET /api/models (default: the server's)"},
            "scale": {"type": "integer", "description": "network scale, for multi-scale models"},
            "precision": {"type": "string", "description": "auto (default: measured per model), fp32, bf16 or fp16 (CUDA)"},
            "format": {"type": "string", "enum": list(FORMATS), "description": "output format (default: same)"},
            "progress_id": {"type": "string", "description": "8–64 of [A-Za-z0-9_-]: GET /api/progress/<id> "
                                                             "reports this job while it runs"},
        }}}}},
    "responses": {
        "200": {"description": "the upscaled image, as an attachment",
                "content": {f"image/{kind}": {} for kind in ("png", "jpeg", "webp")}},
        **{str(status): {"description": text, "content": {"application/json": {"example": {"error": "…"}}}}
           for status, text in ((400, "bad image or parameter"), (401, "missing or wrong token"),
                                (413, "upload or pixel limit"), (503, "queue full; see Retry-After"))},
    },
}


def create_app(catalogue: ModelCatalogue, device: torch.device, config: ServeConfig,
               allowed_hosts: tuple[str, ...] = ()) -> FastAPI:
    """The app serving ``catalogue`` on ``device`` within ``config``'s limits.

    ``allowed_hosts`` (bare host names) refuses requests whose ``Host`` header names any
    other, which stops a web page from reaching a loopback server through DNS rebinding;
    empty allows any.
    """
    queue = DeviceQueue(config.queue)
    temp_files = TempFiles(config.temp_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            queue.shutdown()
            temp_files.close()

    app = FastAPI(title="LiteSR", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan,
                  description="Lightweight single-image super-resolution: upscale images over HTTP.")
    app.state.queue = queue
    app.state.temp_files = temp_files
    _add_error_handlers(app)
    if allowed_hosts:
        _check_host_header(app, allowed_hosts)

    async def require_token(credentials: HTTPAuthorizationCredentials | None = Security(_BEARER)) -> None:
        if config.token is None:
            return
        given = credentials.credentials if credentials is not None else ""
        if not hmac.compare_digest(given.encode(), config.token.encode()):
            raise UnauthorizedError("missing or wrong token: send 'Authorization: Bearer <token>'"
                                    if given else "this server needs a token: send 'Authorization: Bearer <token>'")

    guarded = [Security(require_token)]

    @app.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(_asset("index.html"), headers={"Content-Security-Policy": PAGE_SECURITY_POLICY})

    app.mount("/static", StaticFiles(packages=[("litesr.serve", "static")]), name="static")

    @app.get("/healthz", summary="liveness and queue occupancy (no token needed)")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "queue": queue.status()}

    @app.get("/api/models", dependencies=guarded, summary="the models served here, from the zoo cards")
    async def models() -> dict[str, Any]:
        described = await anyio.to_thread.run_sync(catalogue.describe)
        return {"models": described, "default": catalogue.default_name, "device": str(device),
                "precisions": precisions_on(device), "default_precision": config.default_precision,
                "formats": list(FORMATS), "max_upload_bytes": config.max_upload_bytes,
                "max_pixels": config.max_pixels, "accept": sorted(IMAGE_SUFFIXES)}

    @app.get("/api/progress/{progress_id}", dependencies=guarded, summary="tile progress of a running request")
    async def progress(progress_id: str) -> dict[str, Any]:
        found = queue.progress(progress_id)
        if found is None:
            raise NotFoundError(f"no job with progress id {progress_id!r} is queued or running")
        return found.as_json()

    @app.post("/api/upscale", dependencies=guarded, openapi_extra=_UPLOAD_SCHEMA, response_class=Response,
              summary="upscale one image (multipart field 'image'); the result comes back as the body")
    async def upscale(request: Request) -> Response:
        with queue.admit() as ticket:  # before the upload is read: a full server reads nothing
            folder = temp_files.request_folder()
            try:
                limited = limited_request(request, config.max_upload_bytes)
                async with limited.form(max_files=1, max_fields=len(FORM_FIELDS)) as form:
                    job, upload = parse_form(form, catalogue, device, config.default_precision)
                    if job.progress_id:
                        queue.track(ticket, job.progress_id)
                    source = input_path(folder, job)
                    await anyio.to_thread.run_sync(copy_upload, upload.file, source, config.max_upload_bytes)
                result = await ticket.run(partial(run_upscale, catalogue, job, source, config.max_pixels))
            except BaseException:
                remove_folder(folder)
                raise
        headers = {"Cache-Control": "no-store", "X-LiteSR-Notes": json.dumps(result.notes, ensure_ascii=True)}
        return TemporaryFileResponse(result.path, folder, media_type=result.media_type,
                                     filename=result.download_name, headers=headers)

    _add_docs(app)
    return app


def _asset(name: str) -> str:
    return (resources.files("litesr.serve") / "static" / name).read_text(encoding="utf-8")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    """Every failure as ``{"error": ...}``; a bug is a 500 with its traceback in the log, never a dead server."""

    async def request_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestError)
        return _error(error.status, str(error), error.headers)

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        detail = error.detail if isinstance(error.detail, str) else json.dumps(error.detail)
        if detail == HTTPStatus(error.status_code).phrase:  # Starlette's default: say what was asked
            detail = f"{detail.lower()}: {request.method} {request.url.path}"
        return _error(error.status_code, detail, dict(error.headers or {}))

    async def invalid_request(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        problems = "; ".join(f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors())
        return _error(BadRequestError.status, f"invalid request: {problems}")

    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        LOG.error("internal error on %s %s", request.method, request.url.path, exc_info=error)
        return _error(500, f"internal error: {type(error).__name__} (a bug in LiteSR {__version__}; "
                           "the server log has the details)")

    app.add_exception_handler(RequestError, request_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(Exception, internal_error)


def _check_host_header(app: FastAPI, allowed_hosts: tuple[str, ...]) -> None:
    allowed = {host.lower() for host in allowed_hosts}

    @app.middleware("http")
    async def check_host(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        host = request.headers.get("host", "").rsplit(":", 1)[0].lower()
        if host not in allowed:
            return _error(BadRequestError.status, f"unexpected Host header {host!r}: this server answers "
                                                  f"{', '.join(sorted(allowed))} only")
        return await call_next(request)


def _add_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI from the ``swagger-ui-bundle`` package, so it works offline too."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # not installed: FastAPI's default page, whose assets come from a CDN
        swagger_ui_path = None
    if swagger_ui_path is not None:
        app.mount("/docs/assets", StaticFiles(directory=Path(swagger_ui_path)), name="docs-assets")
    assets = "/docs/assets" if swagger_ui_path is not None else None

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        if assets is None:
            return get_swagger_ui_html(openapi_url="/openapi.json", title="LiteSR API")
        return get_swagger_ui_html(openapi_url="/openapi.json", title="LiteSR API",
                                   swagger_js_url=f"{assets}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{assets}/swagger-ui.css",
                                   swagger_favicon_url=f"{assets}/favicon-32x32.png")
