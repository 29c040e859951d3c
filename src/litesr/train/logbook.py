"""Where training reports go: a JSONL metrics file always, TensorBoard when it is installed."""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any


class Logbook:
    """Appends one JSON object per event to ``metrics.jsonl`` and mirrors scalars to TensorBoard.

    JSONL survives crashes line by line and is trivial to plot; TensorBoard is optional
    (``pip install tensorboard``) and silently replaced by a one-time warning when absent.
    """

    def __init__(self, folder: Path, use_tensorboard: bool = True) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "metrics.jsonl"
        self.writer = None
        if use_tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                warnings.warn("TensorBoard is not installed (pip install tensorboard); logging to metrics.jsonl only",
                              stacklevel=2)
            else:
                self.writer = SummaryWriter(str(folder / "tensorboard"))

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
