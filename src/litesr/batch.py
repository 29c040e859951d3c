"""Upscaling files and folders: find the inputs, plan the outputs, run, and report.

A batch never stops at a bad file: each failure is recorded as ``(file, reason)`` and the
rest continue. Outputs are written atomically by :func:`write_image`, so an interrupted or
failed image leaves no file behind. Progress is reported through callbacks only (per image
and per tile), so a caller chooses how to show it and this module prints nothing. How the
stages of many images overlap (decoding, the network, encoding) is :mod:`litesr.pipeline`'s
business; which inputs a resumed run may skip is :mod:`litesr.manifest`'s.

Inputs come in *kinds* (:data:`INPUT_KINDS`): today only images. A kind says which file
suffixes it takes and how its outputs are named; every :class:`Job` carries its kind, so a
second kind (video) adds an entry there and its own runner, and input discovery, output
planning and collision checks serve it unchanged.

Two inputs must never silently end up as one output: :func:`distinct_jobs` refuses a plan
in which two inputs map to the same output file, and without ``--overwrite`` an output is
published only if no other run created it meanwhile (``replace=False``).
"""
from __future__ import annotations

import dataclasses
import errno
import glob
import itertools
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .errors import LiteSRError
from .imaging.atomic import os_error_reason
from .imaging.io import DEFAULT_MAX_PIXELS, LoadedImage, read_image, write_image
from .model import SRModel
from .video.formats import VIDEO_SUFFIXES, output_video_suffix
from .video.options import VideoOptions

if TYPE_CHECKING:
    from .manifest import RunJournal
    from .pipeline import JobOutcome

#: Suffixes treated as images when a folder is searched.
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".tga"})
#: Output format for ``--format same`` when the input's format cannot hold the result well.
SAME_FORMAT_FALLBACK = {".gif": ".png", ".ppm": ".png", ".pgm": ".png", ".tga": ".png"}
FORMAT_SUFFIXES = {"png": ".png", "jpg": ".jpg", "webp": ".webp"}


@dataclass(frozen=True)
class InputKind:
    """A kind of input file: which suffixes it takes and what its outputs are named.

    ``formats`` maps a ``--format`` choice to the output suffix; ``same_format_fallback``
    maps input suffixes that ``--format same`` cannot keep to the one used instead.
    """

    name: str
    suffixes: frozenset[str]
    formats: Mapping[str, str]
    same_format_fallback: Mapping[str, str]


IMAGE = InputKind("image", IMAGE_SUFFIXES, FORMAT_SUFFIXES, SAME_FORMAT_FALLBACK)
#: Videos keep their container (``--format`` is for images); one LiteSR cannot write becomes .mkv.
VIDEO = InputKind("video", VIDEO_SUFFIXES, {}, {suffix: output_video_suffix(Path(f"video{suffix}"))
                                                for suffix in VIDEO_SUFFIXES})
#: Every kind of input ``litesr upscale`` takes, by name; each suffix belongs to one kind.
INPUT_KINDS: dict[str, InputKind] = {IMAGE.name: IMAGE, VIDEO.name: VIDEO}


def input_kind(path: Path) -> InputKind | None:
    """The kind of input ``path`` is by its suffix, or None when it is no input at all."""
    suffix = path.suffix.lower()
    return next((kind for kind in INPUT_KINDS.values() if suffix in kind.suffixes), None)


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
    #: Encoder and segment settings for video inputs (scale, tiles, precision and
    #: ``existing`` above apply to them too).
    video: VideoOptions = field(default_factory=VideoOptions)


@dataclass(frozen=True)
class Job:
    """One input and the one output it becomes; ``kind`` names its :class:`InputKind`."""

    source: Path
    target: Path
    kind: str = IMAGE.name


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
            elif entry.is_file() and input_kind(path) is not None:
                files.append(path)
        pending += reversed(subfolders)  # walked depth-first in name order
    if not files:
        inputs.problems.append((root, "folder holds no images"))
    inputs.files.extend((file, file.relative_to(root)) for file in sorted(files))


def _may_be_input(path: Path) -> bool:
    """Whether an entry that cannot be followed may have been an image or a folder (not ``notes.txt``)."""
    return not path.suffix or input_kind(path) is not None


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
    kind = input_kind(source) or IMAGE
    if options.format != "same" and options.format in kind.formats:
        return kind.formats[options.format]
    suffix = source.suffix.lower()
    return kind.same_format_fallback.get(suffix, suffix)


def output_is_file(output: Path, input_count: int) -> bool:
    """Whether ``output`` names the one result file rather than a folder of results.

    True only for a single input and an ``output`` named like an image that is not an
    existing folder; everything else is a folder (created when missing).
    """
    return input_count == 1 and input_kind(output) is not None and not output.is_dir()


def plan_jobs(inputs: list[tuple[Path, Path]], output: Path, options: UpscaleOptions, scale_label: str) -> list[Job]:
    """Map each input to its output path.

    A single input with an image suffix on ``output`` writes exactly that file; otherwise
    ``output`` is a folder mirroring the inputs' sub-folders, with names
    ``<stem><suffix><ext>`` (suffix ``_x4`` by default so outputs never shadow inputs).
    """
    if output_is_file(output, len(inputs)):
        return [Job(inputs[0][0], output, _kind_name(inputs[0][0]))]
    suffix = f"_{scale_label}" if options.suffix is None else options.suffix
    return [Job(source, output / relative.parent / f"{relative.stem}{suffix}{output_suffix(source, options)}",
                _kind_name(source))
            for source, relative in inputs]


def _kind_name(source: Path) -> str:
    return (input_kind(source) or IMAGE).name


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
#: Background threads that decode and encode while the network runs (0: one thing at a time).
DEFAULT_IO_WORKERS = 2


def read_job(job: Job, options: UpscaleOptions) -> LoadedImage:
    """The input of ``job``, decoded (the first stage of a job; thread-safe)."""
    if job.target.resolve() == job.source.resolve():
        raise LiteSRError("output would overwrite the input")
    return read_image(job.source, max_pixels=options.max_pixels)


def model_pixels(image: LoadedImage) -> np.ndarray:
    """The array :meth:`SRModel.upscale` takes: colour with alpha as a last channel, if any."""
    if image.alpha is None:
        return image.pixels
    return np.dstack([image.pixels if image.pixels.ndim == 3 else image.pixels[..., None], image.alpha])


def upscale_pixels(model: SRModel, pixels: np.ndarray, options: UpscaleOptions,
                   on_tile: TileCallback | None = None) -> np.ndarray:
    """The network stage of a job: ``pixels`` upscaled as ``options`` say."""
    return model.upscale(pixels, options.scale, tile=options.tile, tile_pad=options.tile_pad,
                         precision=options.precision, alpha=options.alpha, outscale=options.outscale,
                         on_tile=on_tile)


def write_job(job: Job, image: LoadedImage, result: np.ndarray, options: UpscaleOptions) -> list[str]:
    """The last stage of a job: ``result`` written atomically with ``image``'s metadata; returns notes."""
    job.target.parent.mkdir(parents=True, exist_ok=True)
    notes = write_image(job.target, result, icc_profile=image.icc_profile, exif=image.exif, quality=options.quality,
                        replace=options.existing == "overwrite")
    return [*image.warnings, *notes]


def upscale_file(model: SRModel, job: Job, options: UpscaleOptions, on_tile: TileCallback | None = None) -> list[str]:
    """Read, upscale and write one image; returns notes (warnings) about what was not kept.

    ``on_tile`` is passed to :meth:`SRModel.upscale`; with ``--alpha model`` the tiles of
    the alpha pass are counted again from 1, so a progress display should not go backwards.
    """
    image = read_job(job, options)
    return write_job(job, image, upscale_pixels(model, model_pixels(image), options, on_tile), options)


def existing_output_outcome(job: Job, options: UpscaleOptions) -> str | None:
    """``"skip"`` or a failure reason when ``job``'s output exists and may not be replaced; else None."""
    if options.existing == "overwrite" or not job.target.exists():
        return None
    return "skip" if options.existing == "skip" else f"{job.target} exists (use --overwrite or --skip-existing)"


def run_batch(model: SRModel, jobs: list[Job], options: UpscaleOptions,
              on_done: Callable[[Job], None] | None = None,
              on_tile: Callable[[Job, int, int], None] | None = None, *,
              journal: RunJournal | None = None, io_workers: int = DEFAULT_IO_WORKERS,
              batch_size: int = 1) -> BatchReport:
    """Upscale every job, continuing past failures; Ctrl-C stops at once (atomic writes leave nothing).

    ``on_done(job)`` follows each job, written, skipped or failed, in the order of ``jobs``;
    ``on_tile(job, done, total)`` follows each tile of it, so one large image still shows
    progress. Both are called on the calling thread. Unless ``options.existing`` is
    ``"overwrite"``, an output another run created while this one was upscaling is left as
    it is: a failure, or skipped (with a warning) under ``"skip"``. ``io_workers`` threads
    decode the next images and encode the previous ones while the network runs;
    ``batch_size`` > 1 lets same-size small images share one forward pass
    (:mod:`litesr.pipeline`). ``journal`` records each job as it starts and once written
    (:mod:`litesr.manifest`), so a re-run can skip what is done.
    """
    from .pipeline import JobOutcome, run_pipeline  # the pipeline builds on this module's stages

    report = BatchReport()
    start = time.perf_counter()
    images = [job for job in jobs if job.kind != VIDEO.name]
    outcomes = itertools.chain(
        run_pipeline(model, images, options, on_tile=on_tile, journal=journal, io_workers=io_workers,
                     batch_size=batch_size),
        (upscale_video_job(model, job, options, on_tile, journal) for job in jobs if job.kind == VIDEO.name))
    for outcome in outcomes:
        job = outcome.job
        if outcome.status == JobOutcome.WRITTEN:
            report.written.append(job.target)
        elif outcome.status == JobOutcome.SKIPPED:
            report.skipped.append(job.target)
        else:
            report.failed.append((job.source, outcome.reason))
        report.warnings += outcome.warnings
        if on_done:
            on_done(job)
    report.seconds = time.perf_counter() - start
    return report


def upscale_video_job(model: SRModel, job: Job, options: UpscaleOptions,
                      on_tile: Callable[[Job, int, int], None] | None = None,
                      journal: RunJournal | None = None) -> JobOutcome:
    """One video through :func:`litesr.video.upscale_video`; its frames report progress as an image's tiles do."""
    from .pipeline import JobOutcome, early_outcome
    from .video import upscale_video

    if (early := early_outcome(job, options)) is not None:
        return early
    video_options = dataclasses.replace(
        options.video, scale=options.scale, outscale=options.outscale, tile=options.tile, tile_pad=options.tile_pad,
        precision=options.precision, replace=options.existing == "overwrite")
    progress = (lambda done, total: on_tile(job, done, max(total, done, 1))) if on_tile else None
    try:
        job.target.parent.mkdir(parents=True, exist_ok=True)
        if journal is not None:
            journal.started(job)
        done = upscale_video(model, job.source, job.target, video_options, on_progress=progress)
    except (LiteSRError, OSError) as error:
        return JobOutcome(job, JobOutcome.FAILED, failure_reason(error))
    if journal is not None:
        journal.done(job)
    return JobOutcome(job, JobOutcome.WRITTEN, warnings=[(job.source, warning) for warning in done.warnings])


def failure_reason(error: BaseException) -> str:
    """One line for the user: our own errors as they are, others prefixed with their kind."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if isinstance(error, LiteSRError):
        return text
    if isinstance(error, MemoryError) or "out of memory" in text.lower():
        return "out of memory (try a smaller --tile)"
    return f"{type(error).__name__}: {text}"
