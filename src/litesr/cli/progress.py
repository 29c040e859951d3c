"""The one progress bar of ``litesr upscale``: images, advancing tile by tile within each.

Counting whole images only left the bar at 0 % for a minute or more on one large photo.
Here an image's share moves with its tiles (3 of 12 tiles done = 0.25 image), so the bar,
its percentage and its ETA move as soon as work is done, with no second bar. The count
beside it is of whole images finished ("1/3 img"), never a fraction like "0.2/1".

Images are written in the background while the next one runs (:mod:`litesr.pipeline`),
so an image's tiles may come before the previous image is reported done: its share starts
after every image whose tiles came before it. Under ``torchrun`` the count is of every
rank's images (:meth:`BatchProgress.set_finished`), and only rank 0 shows the bar.
"""
from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from tqdm import tqdm

from ..batch import Job

BAR_FORMAT = "{percentage:3.0f}%|{bar}| {images_done}/{total_fmt} img [{elapsed}<{remaining}]"


class _ImageBar(tqdm):
    """A tqdm bar whose position may be fractional but whose shown count is whole images."""

    images_done = 0

    @property
    def format_dict(self) -> dict[str, Any]:
        return {**super().format_dict, "images_done": self.images_done}


class BatchProgress:
    """A tqdm bar on stderr fed by :func:`litesr.batch.run_batch`'s callbacks; silent when disabled."""

    def __init__(self, images: int, *, disable: bool) -> None:
        self._bar = _ImageBar(total=images, unit="img", bar_format=BAR_FORMAT, disable=disable or images == 0,
                              file=sys.stderr)
        self._finished = 0
        self._position = 0.0
        self._tiled_job: Job | None = None  # the last image whose tiles were reported
        self._tiled_before = 0  # images whose tiles were reported before it

    def __enter__(self) -> BatchProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._bar.close()

    @property
    def position(self) -> float:
        """Images done so far, fractions included."""
        return self._position

    def on_tile(self, job: Job, done: int, total: int) -> None:
        """``done`` of ``total`` tiles of ``job``; never moves the bar back."""
        if self._tiled_job is not job:
            self._tiled_before += self._tiled_job is not None
            self._tiled_job = job
        self._advance_to(max(self._finished, self._tiled_before) + done / total)

    def on_done(self, job: Job) -> None:
        """An image is finished (written, skipped or failed)."""
        self.set_finished(self._finished + 1)

    def set_finished(self, images: int) -> None:
        """``images`` are finished in all (this process's and, under torchrun, the other ranks')."""
        self._finished = max(self._finished, images)
        self._bar.images_done = self._finished
        self._advance_to(self._finished)

    def _advance_to(self, position: float) -> None:
        if position > self._position:
            self._bar.update(position - self._position)
            self._position = position
