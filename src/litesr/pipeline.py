"""Many images through one model: decoding, the network and encoding overlapped.

On a stream of small images the network is only part of the time: decoding the next PNG
and encoding (zlib) the last result take about as long again, and Pillow and zlib release
the GIL while they work. So ``io_workers`` threads decode the next images and encode the
finished ones while the calling thread runs the network. Both queues are bounded (images
read ahead, output bytes waiting for their write), so memory stays near a few images'.

Same-size RGB images that fit whole are stacked into one forward pass (``batch_size``):
per image, a forward over a batch computes exactly what it computes alone (each output
pixel's sum runs in the same order), and on small images it runs faster (fewer, larger
kernels). A batch that fails (out of memory) is redone image by image, so one
bad image never fails its neighbours.

Outcomes come back in job order, and on the calling thread, so progress displays and the
report need no locking. The last write of a run happens on the calling thread too: nothing
is left to overlap it with, and Ctrl-C then abandons it (its temp file removed) instead of
waiting for it. Writes already handed to a worker finish, atomically, before Ctrl-C returns.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from .batch import (
    Job,
    UpscaleOptions,
    existing_output_outcome,
    failure_reason,
    model_pixels,
    read_job,
    upscale_pixels,
    write_job,
)
from .errors import LiteSRError
from .imaging.atomic import OutputExistsError
from .imaging.io import LoadedImage, from_float_tensor, to_float_tensor
from .inference import auto_tile_size
from .model import SRModel
from .precision import resolve_precision

if TYPE_CHECKING:
    from .manifest import RunJournal

#: Output bytes that may wait for their write before the network waits for the writers.
MAX_PENDING_WRITE_BYTES = 256 << 20
#: What a failing job raises that is the job's fault (or the machine's), not a bug.
JOB_ERRORS = (LiteSRError, ValueError, OSError, RuntimeError, MemoryError)


@dataclass
class JobOutcome:
    """What became of one job: written, skipped or failed (with a one-line reason)."""

    WRITTEN: ClassVar[str] = "written"
    SKIPPED: ClassVar[str] = "skipped"
    FAILED: ClassVar[str] = "failed"

    job: Job
    status: str
    reason: str = ""
    warnings: list[tuple[Any, str]] = field(default_factory=list)


def early_outcome(job: Job, options: UpscaleOptions) -> JobOutcome | None:
    """The outcome of a job decided before any work (its output exists and may not be replaced)."""
    early = existing_output_outcome(job, options)
    if early is None:
        return None
    return JobOutcome(job, JobOutcome.SKIPPED) if early == "skip" else JobOutcome(job, JobOutcome.FAILED, early)


def run_pipeline(model: SRModel, jobs: list[Job], options: UpscaleOptions, *,
                 on_tile: Callable[[Job, int, int], None] | None = None, journal: RunJournal | None = None,
                 io_workers: int = 2, batch_size: int = 1) -> Iterator[JobOutcome]:
    """Yield each job's :class:`JobOutcome`, in the order of ``jobs``, as the stages finish."""
    pool: ThreadPoolExecutor | _Inline = ThreadPoolExecutor(io_workers, "litesr-io") if io_workers > 0 else _Inline()
    scheduler = _Scheduler(model, jobs, options, pool, on_tile, journal, max(batch_size, 1), io_workers)
    try:
        yield from scheduler.run()
    finally:
        scheduler.cancel_reads()
        pool.shutdown(wait=True)  # writes handed to a worker finish (atomically)


class _Inline:
    """An executor that runs each task at once on the calling thread (``io_workers=0``)."""

    def submit(self, function: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(function(*args))
        except BaseException as error:  # handed back through the future, like a thread's
            if not isinstance(error, Exception):
                raise
            future.set_exception(error)
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def _settled(outcome: JobOutcome) -> Future:
    future: Future = Future()
    future.set_result(outcome)
    return future


class _Scheduler:
    """The read-ahead, the network and the write-behind of one run (see the module docstring)."""

    def __init__(self, model: SRModel, jobs: list[Job], options: UpscaleOptions, pool: Any,
                 on_tile: Callable[[Job, int, int], None] | None, journal: RunJournal | None,
                 batch_size: int, io_workers: int) -> None:
        self.model, self.options, self.pool = model, options, pool
        self.on_tile, self.journal, self.batch_size = on_tile, journal, batch_size
        self.read_ahead = batch_size + io_workers
        self.queue = iter(jobs)
        self.exhausted = False
        #: jobs in order, each with its early outcome or the future of its decoded image
        self.reads: deque[tuple[Job, JobOutcome | Future]] = deque()
        #: jobs in order, each with the future of its outcome and the bytes it holds meanwhile
        self.settling: deque[tuple[Future, int]] = deque()

    def run(self) -> Iterator[JobOutcome]:
        self._fill()
        while self.reads:
            job, item = self.reads.popleft()
            if isinstance(item, JobOutcome):
                self.settling.append((_settled(item), 0))
            else:
                self._process(job, item)
            self._fill()
            yield from self._harvest(block=False)
        yield from self._harvest(block=True)

    def cancel_reads(self) -> None:
        """Drop the decoding not yet started: an interrupted run reads nothing more."""
        for _, item in self.reads:
            if isinstance(item, Future):
                item.cancel()

    def _fill(self) -> None:
        while not self.exhausted and len(self.reads) < self.read_ahead:
            job = next(self.queue, None)
            if job is None:
                self.exhausted = True
                return
            self.reads.append((job, early_outcome(job, self.options) or self.pool.submit(read_job, job, self.options)))

    def _process(self, job: Job, read: Future) -> None:
        try:
            image = read.result()
        except JOB_ERRORS as error:
            self.settling.append((_settled(JobOutcome(job, JobOutcome.FAILED, failure_reason(error))), 0))
            return
        group = self._group(job, image)
        if self.journal is not None:
            for member, _ in group:
                self.journal.started(member)
        for (member, loaded), result in zip(group, self._upscale(group)):
            if isinstance(result, BaseException):
                self.settling.append((_settled(JobOutcome(member, JobOutcome.FAILED, failure_reason(result))), 0))
            elif self.exhausted and not self.reads and member is group[-1][0]:
                self.settling.append((_settled(self._write(member, loaded, result)), 0))  # see the module docstring
            else:
                self.settling.append((self.pool.submit(self._write, member, loaded, result), result.nbytes))

    def _group(self, job: Job, image: LoadedImage) -> list[tuple[Job, LoadedImage]]:
        """``job`` and the images read next that can share its forward pass."""
        group = [(job, image)]
        key = self._batch_key(image)
        while key is not None and len(group) < self.batch_size and self.reads:
            next_job, item = self.reads[0]
            if isinstance(item, JobOutcome) or item.exception() is not None:
                break
            following = item.result()
            same_kind = following.alpha is None and (following.pixels.shape, following.pixels.dtype) == key
            if not same_kind or not self._fits_whole(following.pixels, len(group) + 1):
                break
            self.reads.popleft()
            group.append((next_job, following))
            self._fill()
        return group

    def _batch_key(self, image: LoadedImage) -> tuple[Any, ...] | None:
        """What images must share to be batched; None for an image that runs alone."""
        pixels, options = image.pixels, self.options
        if (self.batch_size == 1 or options.tile not in (None, 0) or image.alpha is not None or pixels.ndim != 3
                or pixels.shape[2] != 3 or options.outscale not in (None, options.scale)
                or not self._fits_whole(pixels, 1)):
            return None
        return pixels.shape, pixels.dtype

    def _fits_whole(self, pixels: np.ndarray, count: int) -> bool:
        """Whether ``count`` images of this size run untiled as :meth:`SRModel.upscale` would run one."""
        height, width = pixels.shape[:2]
        tile, scale = self.options.tile, self.model.check_scale(self.options.scale)
        if tile is None:
            return True
        output_bytes = count * pixels.nbytes * scale * scale
        return auto_tile_size(self.model.runner, scale, self.model.device, height * count, width,
                              reserved_host=output_bytes) is None

    def _upscale(self, group: list[tuple[Job, LoadedImage]]) -> list[np.ndarray | BaseException]:
        if len(group) > 1:
            try:
                results = upscale_same_size(self.model, [image.pixels for _, image in group], self.options)
            except (RuntimeError, MemoryError):
                pass  # redone one by one below, so a failure names its own image
            else:
                for job, _ in group:
                    if self.on_tile:
                        self.on_tile(job, 1, 1)
                return list(results)
        results: list[np.ndarray | BaseException] = []
        for job, image in group:
            on_tile = None if self.on_tile is None else partial(self.on_tile, job)
            try:
                results.append(upscale_pixels(self.model, model_pixels(image), self.options, on_tile))
            except JOB_ERRORS as error:
                results.append(error)
        return results

    def _write(self, job: Job, image: LoadedImage, result: np.ndarray) -> JobOutcome:
        try:
            notes = write_job(job, image, result, self.options)
        except OutputExistsError as error:
            if self.options.existing != "skip":
                return JobOutcome(job, JobOutcome.FAILED, failure_reason(error))
            return JobOutcome(job, JobOutcome.SKIPPED,
                              warnings=[(job.target, "created meanwhile (by another run?); skipped, left as it is")])
        except JOB_ERRORS as error:
            return JobOutcome(job, JobOutcome.FAILED, failure_reason(error))
        if self.journal is not None:
            self.journal.done(job)
        return JobOutcome(job, JobOutcome.WRITTEN, warnings=[(job.source, note) for note in notes])

    def _harvest(self, *, block: bool) -> Iterator[JobOutcome]:
        """Outcomes at the head of the line; waits while too many output bytes wait for writers."""
        while self.settling:
            future, _ = self.settling[0]
            pending = sum(size for _, size in self.settling)
            if not future.done() and not block and pending <= MAX_PENDING_WRITE_BYTES:
                return
            self.settling.popleft()
            yield future.result()


def upscale_same_size(model: SRModel, images: list[np.ndarray], options: UpscaleOptions) -> list[np.ndarray]:
    """Same-size RGB integer images through the network in one forward pass, untiled.

    Each result equals :meth:`SRModel.upscale` of that image alone whenever the image runs
    untiled there (the caller checks): the same float conversion, forward and rounding.
    """
    scale = model.check_scale(options.scale)
    batch = torch.cat([to_float_tensor(pixels) for pixels in images])
    precision = resolve_precision(options.precision, model.runner, scale).precision
    output = model.runner(batch.to(model.device), scale, precision).cpu()
    return [from_float_tensor(output[index:index + 1], pixels.dtype) for index, pixels in enumerate(images)]
