"""Where training reports go: a JSONL metrics file always, TensorBoard when it is installed."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from ..imaging.atomic import atomic_write


class Logbook:
    """Appends one JSON object per event to ``metrics.jsonl`` and mirrors scalars to TensorBoard.

    JSONL survives crashes line by line and is trivial to plot; TensorBoard is optional
    (``pip install tensorboard``): when absent, :attr:`notes` says so once.
    """

    def __init__(self, folder: Path, use_tensorboard: bool = True) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "metrics.jsonl"
        self.writer = None
        self.notes: list[str] = []  # for the run's start summary
        if use_tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self.notes.append("TensorBoard is not installed (pip install tensorboard): logging to "
                                  "metrics.jsonl only")
            else:
                self.writer = SummaryWriter(str(folder / "tensorboard"))

    def rewind(self, iteration: int) -> int:
        """Drop the records after ``iteration`` (a resumed run repeats them); returns how many.

        A run killed after logging iteration 240 but saving its state at 200 would otherwise
        log 201–240 twice, and plots would jump backwards. Rewritten atomically.
        """
        if not self.path.is_file():
            return 0
        lines = self.path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if _iteration_of(line) <= iteration]
        if len(kept) != len(lines):
            text = "".join(line + "\n" for line in kept)
            atomic_write(self.path, lambda handle: handle.write(text.encode("utf-8")))
        return len(lines) - len(kept)

    def log(self, iteration: int, kind: str, values: dict[str, Any]) -> None:
        record = {"iter": iteration, "kind": kind, "time": round(time.time(), 3), **values}
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)):
                    self.writer.add_scalar(f"{kind}/{key}", value, iteration)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _iteration_of(line: str) -> float:
    """A record's iteration; a line cut short by a kill (unparseable) counts as past any iteration."""
    try:
        return int(json.loads(line)["iter"])
    except (ValueError, KeyError, TypeError):
        return math.inf
