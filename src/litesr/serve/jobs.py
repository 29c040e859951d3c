"""The device's job queue: one job on the device at a time, a bounded number admitted.

A network forward uses every core (or the whole GPU) by itself, so running two at once
only makes both slower and doubles the memory. Requests therefore take a :class:`Ticket`
first: at most ``capacity`` tickets exist at a time (the running job plus the waiting
ones), and a request that finds none free is answered 503 at once, before its upload is
read, which is what keeps a flood of requests from filling memory or disk. Each job then
runs on the queue's single worker thread, and its tile progress is kept on its ticket for
the page to poll.
"""
from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import count
from typing import Any, TypeVar

from .errors import BadRequestError, QueueFullError

Result = TypeVar("Result")
#: ``on_tile(done, total)``, as :func:`litesr.batch.upscale_file` calls it.
TileCallback = Callable[[int, int], None]
#: Weight of the newest job in the running mean of job durations (behind ``Retry-After``).
_DURATION_SMOOTHING = 0.2


@dataclass
class Progress:
    """What the page polls for one job: waiting (``ahead`` jobs before it), then tile by tile."""

    state: str = "waiting"
    done: int = 0
    total: int = 0
    ahead: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"state": self.state, "done": self.done, "total": self.total, "ahead": self.ahead}


class Ticket:
    """One admitted request's slot in the queue; released when the request ends (``with``)."""

    def __init__(self, queue: DeviceQueue, number: int) -> None:
        self._queue = queue
        self.number = number
        self.progress = Progress()
        self.progress_id: str | None = None

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._queue.release(self)

    async def run(self, job: Callable[[TileCallback], Result]) -> Result:
        """Run ``job(on_tile)`` on the device's worker thread and wait for it without blocking the server.

        If the request is cancelled while its job still waits, the job is dropped.
        """
        future = self._queue.submit(self, job)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            raise


class DeviceQueue:
    """At most ``capacity`` admitted jobs, run one at a time on one worker thread."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a queue needs room for at least one job, got {capacity}")
        self.capacity = capacity
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="litesr-serve-device")
        self._lock = threading.Lock()
        self._tickets: dict[int, Ticket] = {}  # admitted, in order of arrival
        self._by_progress_id: dict[str, Ticket] = {}
        self._numbers = count()
        self._mean_seconds = 1.0

    def admit(self) -> Ticket:
        """A slot for one request, or :class:`QueueFullError` (503 with ``Retry-After``)."""
        with self._lock:
            if len(self._tickets) >= self.capacity:
                wait = max(1, math.ceil(self._mean_seconds * len(self._tickets)))
                raise QueueFullError(f"the server is busy: all {self.capacity} job slots are taken; "
                                     f"retry in about {wait} s", headers={"Retry-After": str(wait)})
            ticket = Ticket(self, next(self._numbers))
            self._tickets[ticket.number] = ticket
            return ticket

    def release(self, ticket: Ticket) -> None:
        with self._lock:
            self._tickets.pop(ticket.number, None)
            if ticket.progress_id is not None:
                self._by_progress_id.pop(ticket.progress_id, None)

    def track(self, ticket: Ticket, progress_id: str) -> None:
        """Let ``GET /api/progress/<progress_id>`` find this ticket until it is released."""
        with self._lock:
            if progress_id in self._by_progress_id:
                raise BadRequestError(f"progress id {progress_id!r} is already in use by another request")
            ticket.progress_id = progress_id
            self._by_progress_id[progress_id] = ticket

    def progress(self, progress_id: str) -> Progress | None:
        """The progress of a tracked job (``ahead`` counted now), or None once it is released."""
        with self._lock:
            ticket = self._by_progress_id.get(progress_id)
            if ticket is None:
                return None
            if ticket.progress.state == "waiting":
                ticket.progress.ahead = sum(
                    1 for number, other in self._tickets.items()
                    if number < ticket.number and other.progress.state in ("waiting", "running"))
            return ticket.progress

    def status(self) -> dict[str, int]:
        with self._lock:
            running = sum(1 for ticket in self._tickets.values() if ticket.progress.state == "running")
            return {"capacity": self.capacity, "admitted": len(self._tickets), "running": running}

    def submit(self, ticket: Ticket, job: Callable[[TileCallback], Result]) -> Any:
        """Queue ``job`` on the worker thread; returns its :class:`concurrent.futures.Future`."""
        return self._executor.submit(self._run, ticket, job)

    def _run(self, ticket: Ticket, job: Callable[[TileCallback], Result]) -> Result:
        progress = ticket.progress
        progress.state, progress.ahead = "running", 0

        def on_tile(done: int, total: int) -> None:
            progress.done, progress.total = done, total

        started = time.monotonic()
        try:
            return job(on_tile)
        finally:
            progress.state = "finished"
            elapsed = time.monotonic() - started
            with self._lock:
                self._mean_seconds += _DURATION_SMOOTHING * (elapsed - self._mean_seconds)

    def shutdown(self) -> None:
        """Drop the jobs still waiting; the running one (a forward cannot be interrupted) ends by itself."""
        self._executor.shutdown(wait=False, cancel_futures=True)
