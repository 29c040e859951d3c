"""Upscaling files and folders: find the inputs, plan the outputs, run, and report.

A batch never stops at a bad file: each failure is recorded as ``(file, reason)`` and the
rest continue. Outputs are written atomically by :func:`write_image`, so an interrupted or
failed image leaves no file behind.
"""
from __future__ import annotations

import glob
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import LiteSRError
from .imaging.io import DEFAULT_MAX_PIXELS, read_image, write_image
from .model import SRModel

#: Suffixes treated as images when a folder is searched.
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".tga"})
#: Output format for ``--format same`` when the input's format cannot hold the result well.
SAME_FORMAT_FALLBACK = {".gif": ".png", ".ppm": ".png", ".pgm": ".png", ".tga": ".png"}
FORMAT_SUFFIXES = {"png": ".png", "jpg": ".jpg", "webp": ".webp"}


@dataclass(frozen=True)
class UpscaleOptions:
    """Everything about one batch except the model and the files."""

    scale: int | None = None
    outscale: float | None = None
    tile: int | None = 0
    tile_pad: int | None = None
    precision: str = "fp32"
    alpha: str = "bicubic"
    format: str = "same"
    suffix: str | None = None
    existing: str = "error"  # or "overwrite" / "skip"
    max_pixels: int = DEFAULT_MAX_PIXELS
    quality: int = 95


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


@dataclass
class BatchReport:
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    warnings: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0


def collect_inputs(arguments: Iterable[str]) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """Expand files, folders (recursively) and globs into (file, path relative to its root).

    The relative path lets an output folder mirror the input's sub-folders. Arguments that
    match nothing are returned as failures rather than raised, so the batch still runs.
    """
    found: list[tuple[Path, Path]] = []
    problems: list[tuple[Path, str]] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                problems.append((path, "folder holds no images"))
            found += [(p, p.relative_to(path)) for p in files]
        elif path.exists():
            found.append((path, Path(path.name)))
        elif glob.has_magic(argument):
            matches = sorted(Path(m) for m in glob.glob(argument, recursive=True) if Path(m).is_file())
            if not matches:
                problems.append((path, "pattern matches no files"))
            found += [(m, Path(m.name)) for m in matches]
        else:
            problems.append((path, "no such file or folder"))
    unique = list(dict.fromkeys(found))
    return unique, problems


def output_suffix(source: Path, options: UpscaleOptions) -> str:
    if options.format != "same":
        return FORMAT_SUFFIXES[options.format]
    suffix = source.suffix.lower()
    return SAME_FORMAT_FALLBACK.get(suffix, suffix)


def plan_jobs(inputs: list[tuple[Path, Path]], output: Path, options: UpscaleOptions, scale_label: str) -> list[Job]:
    """Map each input to its output path.

    A single input with an image suffix on ``output`` writes exactly that file; otherwise
    ``output`` is a folder mirroring the inputs' sub-folders, with names
    ``<stem><suffix><ext>`` (suffix ``_x4`` by default so outputs never shadow inputs).
    """
    if len(inputs) == 1 and output.suffix.lower() in IMAGE_SUFFIXES and not output.is_dir():
        return [Job(inputs[0][0], output)]
    suffix = f"_{scale_label}" if options.suffix is None else options.suffix
    return [Job(source, output / relative.parent / f"{relative.stem}{suffix}{output_suffix(source, options)}")
            for source, relative in inputs]


def upscale_file(model: SRModel, job: Job, options: UpscaleOptions) -> list[str]:
    """Read, upscale and write one image; returns notes (warnings) about what was not kept."""
    if job.target.resolve() == job.source.resolve():
        raise LiteSRError("output would overwrite the input")
    image = read_image(job.source, max_pixels=options.max_pixels)
    pixels = image.pixels if image.alpha is None else np.dstack(
        [image.pixels if image.pixels.ndim == 3 else image.pixels[..., None], image.alpha])
    result = model.upscale(pixels, options.scale, tile=options.tile, tile_pad=options.tile_pad,
                           precision=options.precision, alpha=options.alpha, outscale=options.outscale)
    job.target.parent.mkdir(parents=True, exist_ok=True)
    notes = write_image(job.target, result, icc_profile=image.icc_profile, exif=image.exif, quality=options.quality)
    return [*image.warnings, *notes]


def run_batch(model: SRModel, jobs: list[Job], options: UpscaleOptions,
              on_done: Callable[[Job], None] | None = None) -> BatchReport:
    """Upscale every job, continuing past failures; Ctrl-C propagates after the current file."""
    report = BatchReport()
    start = time.perf_counter()
    for job in jobs:
        try:
            if job.target.exists() and options.existing != "overwrite":
                if options.existing == "skip":
                    report.skipped.append(job.target)
                    continue
                raise LiteSRError(f"{job.target} exists (use --overwrite or --skip-existing)")
            notes = upscale_file(model, job, options)
            report.written.append(job.target)
            report.warnings += [(job.source, note) for note in notes]
        except (LiteSRError, ValueError, OSError, RuntimeError, MemoryError) as error:
            report.failed.append((job.source, _reason(error)))
        finally:
            if on_done:
                on_done(job)
    report.seconds = time.perf_counter() - start
    return report


def _reason(error: BaseException) -> str:
    """One line for the user: our own errors as they are, others prefixed with their kind."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if isinstance(error, LiteSRError):
        return text
    if isinstance(error, MemoryError) or "out of memory" in text.lower():
        return "out of memory (try a smaller --tile)"
    return f"{type(error).__name__}: {text}"
