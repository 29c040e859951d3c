"""The run manifest: which outputs a re-run of the same command may skip, exactly.

An output file's existence says little: it may come from an older run with another model
or other settings, or from an input that has changed since. So each process of a run
appends JSON lines to its own file in ``OUT/.litesr-manifest/``: ``started`` before a
job's network runs and ``done`` once its output is published, each with the input (path,
size, mtime), the output (relative to ``OUT``) and a fingerprint of every setting that
changes the pixels. A re-run skips a job only when a ``done`` line matches all of them and
the output is still the file written then (same size and mtime).

A process killed between publishing an output and writing its ``done`` line leaves a
``started`` line: that output is adopted when it was written after the job started. A
process killed mid-line leaves a torn last line, which is ignored (and the next append
starts on a new line). One file per process means no two writers share a file, whatever
the file system.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .batch import Job

#: Folder inside the output folder that holds the manifest files.
MANIFEST_FOLDER = ".litesr-manifest"
#: File-system timestamps lag the clock by up to a scheduler tick; an output this much
#: older than its ``started`` line still counts as written after it.
CLOCK_SLACK_NS = 50_000_000


def settings_fingerprint(settings: Mapping[str, Any]) -> str:
    """A short stable digest of what decides the pixels (model identity, scale, precision…)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class _Entry:
    state: str
    input: str
    size: int
    mtime_ns: int
    settings: str
    at_ns: int = 0
    output_size: int = -1
    output_mtime_ns: int = -1


def _input_identity(path: Path) -> tuple[str, int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return os.path.abspath(path), status.st_size, status.st_mtime_ns


class RunManifest:
    """The manifest of an output folder: read once to plan, then appended to by each process."""

    def __init__(self, output: Path, settings: str) -> None:
        self.output = Path(output)
        self.folder = self.output / MANIFEST_FOLDER
        self.settings = settings

    def finished(self, jobs: Iterable[Job]) -> set[Job]:
        """The jobs whose outputs an earlier run of the same settings wrote and nobody changed since."""
        done: dict[str, _Entry] = {}
        started: dict[str, _Entry] = {}
        for output, entry in self._entries():
            (done if entry.state == "done" else started)[output] = entry  # the last line wins
        finished = set()
        for job in jobs:
            key = self.output_key(job)
            if key in done or key in started:
                if self._vouches(job, done.get(key), started.get(key)):
                    finished.add(job)
        return finished

    def journal(self, name: str) -> RunJournal:
        """A journal appending to this manifest's file ``name`` (one per process)."""
        return RunJournal(self, self.folder / f"{name}.jsonl")

    def output_key(self, job: Job) -> str:
        """How the manifest names ``job``'s output: relative to the output folder, which may move."""
        return Path(os.path.relpath(job.target, self.output)).as_posix()

    def _vouches(self, job: Job, done: _Entry | None, started: _Entry | None) -> bool:
        identity = _input_identity(job.source)
        try:
            output = job.target.stat()
        except OSError:
            return False
        if identity is None:
            return False

        def same_input(entry: _Entry) -> bool:
            return (entry.input, entry.size, entry.mtime_ns) == identity and entry.settings == self.settings

        if done is not None and same_input(done):
            return (done.output_size, done.output_mtime_ns) == (output.st_size, output.st_mtime_ns)
        return (started is not None and same_input(started)
                and (done is None or done.at_ns < started.at_ns)
                and output.st_mtime_ns >= started.at_ns - CLOCK_SLACK_NS)

    def _entries(self) -> Iterable[tuple[str, _Entry]]:
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.glob("*.jsonl")):
            with contextlib.suppress(OSError), open(path, encoding="utf-8") as handle:
                for line in handle:
                    with contextlib.suppress(ValueError, TypeError, KeyError):  # a torn or foreign line
                        record = json.loads(line)
                        yield record["output"], _Entry(
                            record["state"], record["input"], int(record["size"]), int(record["mtime_ns"]),
                            record["settings"], int(record.get("at_ns", 0)), int(record.get("output_size", -1)),
                            int(record.get("output_mtime_ns", -1)))


class RunJournal:
    """One process's appends to the manifest; thread-safe (writes finish on worker threads)."""

    def __init__(self, manifest: RunManifest, path: Path) -> None:
        self.manifest = manifest
        self.path = path
        self._lock = threading.Lock()
        self._handle: Any = None

    def started(self, job: Job) -> None:
        """``job``'s network is about to run (its output may appear from now on)."""
        self._append(job, "started", {})

    def done(self, job: Job) -> None:
        """``job``'s output is published."""
        with contextlib.suppress(OSError):
            output = job.target.stat()
            self._append(job, "done", {"output_size": output.st_size, "output_mtime_ns": output.st_mtime_ns})

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None

    def _append(self, job: Job, state: str, extra: dict[str, int]) -> None:
        identity = _input_identity(job.source)
        if identity is None:
            return
        source, size, mtime_ns = identity
        record = {"state": state, "input": source, "size": size, "mtime_ns": mtime_ns,
                  "output": self.manifest.output_key(job), "settings": self.manifest.settings,
                  "at_ns": time.time_ns(), **extra}
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        with self._lock:
            handle = self._open()
            handle.write(line)
            handle.flush()

    def _open(self) -> Any:
        """The file, opened once for appending, starting on a fresh line after a torn one."""
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "ab+")  # noqa: SIM115 (kept open for the run)
            end = self._handle.seek(0, os.SEEK_END)
            if end > 0:
                self._handle.seek(end - 1)
                torn = self._handle.read(1) != b"\n"
                self._handle.seek(0, os.SEEK_END)
                if torn:
                    self._handle.write(b"\n")
        return self._handle
