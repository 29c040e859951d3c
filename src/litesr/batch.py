"""Upscaling files and folders: find the inputs, plan the outputs, run, and report.

A batch never stops at a bad file: each failure is recorded as ``(file, reason)`` and the
rest continue. Outputs are written atomically by :func:`write_image`, so an interrupted or
failed image leaves no file behind. Progress is reported through callbacks only (per image
and per tile), so a caller chooses how to show it and this module prints nothing.

Two inputs must never silently end up as one output: :func:`distinct_jobs` refuses a plan
in which two inputs map to the same output file, and without ``--overwrite`` an output is
published only if no other run created it meanwhile (``replace=False``).
"""
from __future__ import annotations

import errno
import glob
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .errors import LiteSRError
from .imaging.atomic import OutputExistsError, os_error_reason
from .imaging.io import DEFAULT_MAX_PIXELS, read_image, write_image
from .model import SRModel

#: Suffixes treated as images when a folder is searched.
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".tga"})
#: Output format for ``--format same`` when the input's format cannot hold the result well.
SAME_FORMAT_FALLBACK = {".gif": ".png", ".ppm": ".png", ".pgm": ".png", ".tga": ".png"}
FORMAT_SUFFIXES = {"png": ".png", "jpg": ".jpg", "webp": ".webp"}


class OutputCollisionError(LiteSRError):
    """Two inputs would be written to the same output file; raised before any work."""


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


class Inputs(NamedTuple):
    """What :func:`collect_inputs` found: files, failures (exit 1) and warnings."""

    #: (file, path relative to its root): the relative path lets an output folder mirror sub-folders.
    files: list[tuple[Path, Path]]
    #: (path, reason): an argument or link that gives no image, reported as an error.
    problems: list[tuple[Path, str]]
    #: (path, note): nothing lost, but the user should know (a folder reached twice).
    warnings: list[tuple[Path, str]]


def collect_inputs(arguments: Iterable[str]) -> Inputs:
    """Expand files, folders (recursively, following links) and globs into input files.

    Arguments that match nothing, dangling links and link loops are returned as problems
    rather than raised, so the batch still runs and the user hears about each of them.
    """
    inputs = Inputs([], [], [])
    for argument in arguments:
        path = Path(argument)
        broken = _broken_link_reason(path) if path.is_symlink() else None
        if broken:
            inputs.problems.append((path, broken))
        elif path.is_dir():
            _collect_folder(path, inputs)
        elif path.exists():
            inputs.files.append((path, Path(path.name)))
        elif glob.has_magic(argument):
            _collect_glob(argument, inputs)
        else:
            inputs.problems.append((path, "no such file or folder"))
    inputs.files[:] = dict.fromkeys(inputs.files)
    return inputs


def _collect_folder(root: Path, inputs: Inputs) -> None:
    """Add the images under ``root``, walking each real folder once.

    Links are followed, but a folder already being walked (a link to a parent, or a second
    link to the same folder) is not walked again: that would list its images twice or never
    end. Its images are all upscaled once, so this is a warning, not a failure. A link that
    leads nowhere (dangling, or a loop) is a problem when it may have been an image or a
    folder; other files, links or not, are not inputs and are ignored.
    """
    walking: dict[tuple[int, int], Path] = {_identity(root): root}
    files: list[Path] = []
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as scan:
                # real folders first, so a link to one of them is the repeat, not the folder itself
                entries = sorted(scan, key=lambda entry: (entry.is_symlink(), entry.name))
        except OSError as error:
            inputs.problems.append((folder, f"cannot read the folder: {os_error_reason(error)}"))
            continue
        subfolders = []
        for entry in entries:
            path = Path(entry.path)
            broken = _broken_link_reason(path) if entry.is_symlink() else None
            if broken:
                if _may_be_input(path):
                    inputs.problems.append((path, broken))
            elif entry.is_dir():
                first = walking.setdefault(_identity(path), path)
                if first is path:
                    subfolders.append(path)
                else:
                    inputs.warnings.append((path, _repeat_note(path, first)))
            elif entry.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                files.append(path)
        pending += reversed(subfolders)  # walked depth-first in name order
    if not files:
        inputs.problems.append((root, "folder holds no images"))
    inputs.files.extend((file, file.relative_to(root)) for file in sorted(files))


def _may_be_input(path: Path) -> bool:
    """Whether an entry that cannot be followed may have been an image or a folder (not ``notes.txt``)."""
    return not path.suffix or path.suffix.lower() in IMAGE_SUFFIXES


def _repeat_note(path: Path, first: Path) -> str:
    if path.is_symlink():
        return f"symbolic link to {first}, a folder already searched; not searched again"
    return f"the same folder as {first}; not searched again"


def _collect_glob(pattern: str, inputs: Inputs) -> None:
    """Add the files a glob matches (``**`` for any depth of sub-folders)."""
    try:
        paths = _glob(pattern)
    except ValueError as error:  # pathlib: "Invalid pattern: '**' can only be an entire path component"
        inputs.problems.append((Path(pattern), str(error)[:1].lower() + str(error)[1:]))
        return
    matched = False
    for path in paths:
        broken = _broken_link_reason(path) if path.is_symlink() else None
        if broken:
            inputs.problems.append((path, broken))
            matched = True
        elif path.is_file():
            inputs.files.append((path, Path(path.name)))
            matched = True
    if not matched:
        inputs.problems.append((Path(pattern), "pattern matches no files"))


def _glob(pattern: str) -> list[Path]:
    """The sorted paths matching ``pattern``.

    :mod:`pathlib`'s ``**`` does not enter links to folders, where :func:`glob.glob`'s
    does and, in a link loop, multiplies its work at every level until the OS gives up:
    a few links made it run for many minutes. A folder argument follows links instead.
    """
    parts = Path(pattern).parts
    fixed = next(index for index, part in enumerate(parts) if glob.has_magic(part))
    return sorted(Path(*parts[:fixed]).glob(str(Path(*parts[fixed:]))))


def _identity(folder: Path) -> tuple[int, int]:
    """The same for every path (link or not) that reaches this folder."""
    status = folder.stat()
    return status.st_dev, status.st_ino


def _broken_link_reason(link: Path) -> str | None:
    """Why following the symbolic link ``link`` fails, or None when it leads somewhere."""
    try:
        link.stat()
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "symbolic link loop"
        if error.errno in (errno.ENOENT, errno.ENOTDIR):
            return "dangling symbolic link"
        return os_error_reason(error)
    return None


def output_suffix(source: Path, options: UpscaleOptions) -> str:
    if options.format != "same":
        return FORMAT_SUFFIXES[options.format]
    suffix = source.suffix.lower()
    return SAME_FORMAT_FALLBACK.get(suffix, suffix)


def output_is_file(output: Path, input_count: int) -> bool:
    """Whether ``output`` names the one result file rather than a folder of results.

    True only for a single input and an ``output`` named like an image that is not an
    existing folder; everything else is a folder (created when missing).
    """
    return input_count == 1 and output.suffix.lower() in IMAGE_SUFFIXES and not output.is_dir()


def plan_jobs(inputs: list[tuple[Path, Path]], output: Path, options: UpscaleOptions, scale_label: str) -> list[Job]:
    """Map each input to its output path.

    A single input with an image suffix on ``output`` writes exactly that file; otherwise
    ``output`` is a folder mirroring the inputs' sub-folders, with names
    ``<stem><suffix><ext>`` (suffix ``_x4`` by default so outputs never shadow inputs).
    """
    if output_is_file(output, len(inputs)):
        return [Job(inputs[0][0], output)]
    suffix = f"_{scale_label}" if options.suffix is None else options.suffix
    return [Job(source, output / relative.parent / f"{relative.stem}{suffix}{output_suffix(source, options)}")
            for source, relative in inputs]


def distinct_jobs(jobs: list[Job], *, case_insensitive: bool) -> list[Job]:
    """``jobs`` with one job per output file, or :class:`OutputCollisionError` naming a clash.

    Two inputs mapping to one output (``pic.png`` in two folders, ``same.png`` and
    ``same.jpg`` under ``--format png``) would make the second overwrite the first, or fail
    after the first was written: refused before any work. The same file listed twice (``a.png``
    and ``./in/../a.png``) is not a clash: it is upscaled once. With ``case_insensitive``
    (the output folder's file system ignores case) ``A.png`` and ``a.png`` are one file.
    """
    kept: dict[str, Job] = {}
    clashes: list[tuple[Job, Job]] = []
    for job in jobs:
        key = os.path.abspath(job.target)
        first = kept.setdefault(key.casefold() if case_insensitive else key, job)
        if first is not job and not _same_file(first.source, job.source):
            clashes.append((first, job))
    if clashes:
        first, second = clashes[0]
        where = str(first.target) if first.target == second.target else \
            f"{first.target} and {second.target}, one file on this case-insensitive file system"
        more = f" (and {len(clashes) - 1} more clash(es))" if len(clashes) > 1 else ""
        raise OutputCollisionError(f"{first.source} and {second.source} would both be written to {where}{more}; "
                                   "nothing was written: upscale them to separate -o folders, or rename one")
    return list(kept.values())


def _same_file(first: Path, second: Path) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def is_case_insensitive(folder: Path) -> bool:
    """Whether the file system that will hold ``folder``'s files ignores the case of names.

    Probed without writing anything: an existing entry of ``folder`` (or of its nearest
    existing parent) is looked up with the case of its name swapped. With no such entry,
    the platform's usual answer (macOS and Windows ignore case).
    """
    existing = next((parent for parent in (folder, *folder.absolute().parents) if parent.is_dir()), None)
    candidates: list[Path] = []
    if existing is not None:
        try:
            with os.scandir(existing) as scan:
                candidates = [Path(entry.path) for entry in scan]
        except OSError:
            pass
        candidates.append(existing)  # the folder itself, within its parent
    for candidate in candidates:
        name = candidate.name
        if name.isascii() and name.swapcase() != name:
            return _same_file(candidate, candidate.with_name(name.swapcase()))
    return sys.platform in ("darwin", "win32")


#: ``on_tile(done, total)``: ``done`` of ``total`` tiles of the current image are finished.
TileCallback = Callable[[int, int], None]


def upscale_file(model: SRModel, job: Job, options: UpscaleOptions, on_tile: TileCallback | None = None) -> list[str]:
    """Read, upscale and write one image; returns notes (warnings) about what was not kept.

    ``on_tile`` is passed to :meth:`SRModel.upscale`; with ``--alpha model`` the tiles of
    the alpha pass are counted again from 1, so a progress display should not go backwards.
    """
    if job.target.resolve() == job.source.resolve():
        raise LiteSRError("output would overwrite the input")
    image = read_image(job.source, max_pixels=options.max_pixels)
    pixels = image.pixels if image.alpha is None else np.dstack(
        [image.pixels if image.pixels.ndim == 3 else image.pixels[..., None], image.alpha])
    result = model.upscale(pixels, options.scale, tile=options.tile, tile_pad=options.tile_pad,
                           precision=options.precision, alpha=options.alpha, outscale=options.outscale,
                           on_tile=on_tile)
    job.target.parent.mkdir(parents=True, exist_ok=True)
    notes = write_image(job.target, result, icc_profile=image.icc_profile, exif=image.exif, quality=options.quality,
                        replace=options.existing == "overwrite")
    return [*image.warnings, *notes]


def run_batch(model: SRModel, jobs: list[Job], options: UpscaleOptions,
              on_done: Callable[[Job], None] | None = None,
              on_tile: Callable[[Job, int, int], None] | None = None) -> BatchReport:
    """Upscale every job, continuing past failures; Ctrl-C stops at once (atomic writes leave nothing).

    ``on_done(job)`` follows each job, written, skipped or failed; ``on_tile(job, done,
    total)`` follows each tile of it, so one large image still shows progress. Unless
    ``options.existing`` is ``"overwrite"``, an output another run created while this one
    was upscaling is left as it is: a failure, or skipped (with a warning) under ``"skip"``.
    """
    report = BatchReport()
    start = time.perf_counter()
    for job in jobs:
        try:
            if job.target.exists() and options.existing != "overwrite":
                if options.existing == "skip":
                    report.skipped.append(job.target)
                    continue
                raise LiteSRError(f"{job.target} exists (use --overwrite or --skip-existing)")
            notes = upscale_file(model, job, options, None if on_tile is None else partial(on_tile, job))
            report.written.append(job.target)
            report.warnings += [(job.source, note) for note in notes]
        except OutputExistsError as error:
            if options.existing == "skip":
                report.skipped.append(job.target)
                report.warnings.append((job.target, "created meanwhile (by another run?); skipped, left as it is"))
            else:
                report.failed.append((job.source, _reason(error)))
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
