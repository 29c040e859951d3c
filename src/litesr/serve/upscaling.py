"""One ``POST /api/upscale``: its form checked, its job run exactly as ``litesr upscale`` runs a file.

The job is :func:`litesr.batch.upscale_file`, the command line's own function, so reading
(:func:`~litesr.imaging.io.read_image` with ``--max-pixels``), EXIF orientation, ICC
profiles, alpha, 16-bit and writing are the same code, not a copy. What this module adds
is the web side: form fields to options, names the client sees instead of the server's
temp paths, and the status each failure deserves.
"""
from __future__ import annotations

import mimetypes
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from starlette.datastructures import FormData, UploadFile

from ..batch import FORMAT_SUFFIXES, IMAGE_SUFFIXES, Job, UpscaleOptions, output_suffix, upscale_file
from ..devices import AUTO, PRECISION_CHOICES, PRECISIONS, check_precision
from ..errors import LiteSRError
from ..errors import PixelLimitError
from .catalogue import ModelCatalogue, ModelEntry
from .errors import BadRequestError, RequestError, TooLargeError
from .jobs import TileCallback
from .uploads import client_file_name

#: ``format`` values: the input's own format, or one of ``litesr upscale --format``'s.
FORMATS: tuple[str, ...] = ("same", *FORMAT_SUFFIXES)
#: Form fields ``POST /api/upscale`` reads; any other is refused, so a typo is not ignored.
FORM_FIELDS = frozenset({"image", "model", "scale", "precision", "format", "progress_id"})
#: A client-chosen id under which ``GET /api/progress/<id>`` reports the job.
PROGRESS_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
#: Suffix of a result whose input's suffix says nothing (``format=same`` of ``photo``).
FALLBACK_SUFFIX = ".png"


@dataclass(frozen=True)
class UpscaleRequest:
    """A checked ``POST /api/upscale``: everything but the file's bytes."""

    entry: ModelEntry
    scale: int | None
    precision: str
    format: str
    file_name: str
    progress_id: str | None


@dataclass(frozen=True)
class UpscaleResult:
    path: Path
    download_name: str
    media_type: str
    notes: list[str]


def precisions_on(device: torch.device) -> list[str]:
    """The precision names this device runs: ``auto`` first, fp16 only on CUDA; int8 is not
    served (it needs a calibrated, quantized copy of each model: ``litesr export --int8``)."""
    usable = [AUTO]
    for name in PRECISIONS:
        try:
            check_precision(name, device)
        except LiteSRError:
            continue
        usable.append(name)
    return usable


def parse_form(form: FormData, catalogue: ModelCatalogue, device: torch.device,
               default_precision: str) -> tuple[UpscaleRequest, UploadFile]:
    """The request and its upload, or :class:`BadRequestError` naming the field at fault."""
    unknown = sorted(set(form.keys()) - FORM_FIELDS)
    if unknown:
        raise BadRequestError(f"unknown form field(s) {', '.join(map(repr, unknown))}; "
                              f"expected {', '.join(sorted(FORM_FIELDS))}")
    upload = form.get("image")
    if not isinstance(upload, UploadFile):
        raise BadRequestError("the form has no 'image' file (multipart/form-data, field 'image')")
    entry = catalogue.entry(_text(form, "model"))
    scale = _scale(_text(form, "scale"), entry)
    precision = _text(form, "precision") or default_precision
    if precision not in precisions_on(device):
        known = "not available on this server" if precision in PRECISION_CHOICES else "unknown precision"
        raise BadRequestError(f"{known} {precision!r}: use {', '.join(precisions_on(device))}")
    output_format = _text(form, "format") or "same"
    if output_format not in FORMATS:
        raise BadRequestError(f"unknown format {output_format!r}: use {', '.join(FORMATS)}")
    progress_id = _text(form, "progress_id") or None
    if progress_id is not None and not PROGRESS_ID.fullmatch(progress_id):
        raise BadRequestError("progress_id must be 8 to 64 letters, digits, '-' or '_'")
    request = UpscaleRequest(entry, scale, precision, output_format, client_file_name(upload.filename), progress_id)
    return request, upload


def _text(form: FormData, field: str) -> str:
    value = form.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequestError(f"form field {field!r} must be text, not a file")
    return value.strip()


def _scale(text: str, entry: ModelEntry) -> int | None:
    if not text:
        return None
    served = "/".join(f"×{scale}" for scale in entry.scales)
    if not text.isdigit() or int(text) not in entry.scales:
        raise BadRequestError(f"scale {text!r} is not served by {entry.name} (it serves {served})")
    return int(text)


def input_path(folder: Path, request: UpscaleRequest) -> Path:
    """Where the upload is stored: a fixed name, keeping only a known image suffix of the client's name."""
    suffix = Path(request.file_name).suffix.lower()
    return folder / f"input{suffix if suffix in IMAGE_SUFFIXES else ''}"


def run_upscale(catalogue: ModelCatalogue, request: UpscaleRequest, source: Path, max_pixels: int,
                on_tile: TileCallback) -> UpscaleResult:
    """Upscale ``source`` into its folder as ``litesr upscale`` would; runs on the device's worker thread."""
    model = catalogue.model(request.entry)
    shown = {str(source): request.file_name}
    try:
        scale = model.check_scale(request.scale)
        options = UpscaleOptions(scale=scale, precision=request.precision, format=request.format,
                                 existing="overwrite", max_pixels=max_pixels)
        suffix = output_suffix(Path(request.file_name), options)
        suffix = suffix if suffix in IMAGE_SUFFIXES else FALLBACK_SUFFIX
        download_name = f"{Path(request.file_name).stem or 'image'}_x{scale}{suffix}"
        target = source.with_name(f"result{suffix}")
        shown[str(target)] = download_name
        notes = upscale_file(model, Job(source, target), options, on_tile)
    except (LiteSRError, MemoryError) as error:
        raise request_error(error, shown) from None
    except RuntimeError as error:
        if "out of memory" not in str(error).lower():
            raise
        raise request_error(error, shown) from None
    media_type = mimetypes.guess_type(download_name)[0] or "application/octet-stream"
    return UpscaleResult(target, download_name, media_type, [_show(note, shown) for note in notes])


def request_error(error: BaseException, shown: Mapping[str, str]) -> RequestError:
    """The client's view of a failed job: its status, and its message with the server's paths hidden."""
    if isinstance(error, (MemoryError, RuntimeError)):
        return TooLargeError("the server ran out of memory for this image; send a smaller one")
    message = _show(str(error), shown)
    if isinstance(error, PixelLimitError):
        return TooLargeError(message.replace("--max-pixels", "the server's --max-pixels"))
    return BadRequestError(message)


def _show(text: str, shown: Mapping[str, str]) -> str:
    for path, name in shown.items():
        text = text.replace(path, name)
    return text
