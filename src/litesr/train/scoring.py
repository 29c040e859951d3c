"""Score a model on one set with an option file's ``val.metrics``, through ``litesr eval``'s code.

BasicSR's metrics (``calculate_psnr``/``calculate_ssim`` with ``crop_border`` and
``test_y_channel``) map onto :func:`litesr.evaluate.evaluate`'s protocol (round to uint8,
BT.601 float Y or RGB, per-image mean), so a number from ``litesr test`` or a validation
during training is the number ``litesr eval`` prints for the same weights and images.
Metrics sharing a protocol share one pass over the set.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..data.benchmark import BenchmarkSet
from ..evaluate import SetResult, evaluate
from ..model import SRModel
from .options import MetricOptions

__all__ = ["DEFAULT_METRICS", "SetScores", "score_set"]

#: What a set is scored with when the file names no metrics: ``litesr eval``'s defaults.
DEFAULT_METRICS = (MetricOptions("psnr", "calculate_psnr", None, True),
                   MetricOptions("ssim", "calculate_ssim", None, True))


@dataclass(frozen=True)
class SetScores:
    """One set's mean score per metric name, in the file's metric order."""

    set_name: str
    scale: int
    images: int
    values: dict[str, float]
    results: list[SetResult] = field(default_factory=list, compare=False, repr=False)


def score_set(model: SRModel, bench: BenchmarkSet, metrics: Sequence[MetricOptions] = DEFAULT_METRICS, *,
              save_dir: Path | None = None, progress: bool = False) -> SetScores:
    """Run ``model`` over ``bench`` once per distinct protocol and collect each metric's mean."""
    metrics = tuple(metrics) or DEFAULT_METRICS
    by_protocol: dict[tuple[int, bool], SetResult] = {}
    values: dict[str, float] = {}
    for metric in metrics:
        protocol = (metric.crop_for(bench.scale), metric.test_y_channel)
        if protocol not in by_protocol:
            by_protocol[protocol] = evaluate(model, bench, bench.scale, crop_border=protocol[0],
                                             y_channel=protocol[1], progress=progress,
                                             save_dir=save_dir if not by_protocol else None)
        values[metric.name] = getattr(by_protocol[protocol], metric.metric)
    return SetScores(bench.name, bench.scale, len(bench), values, list(by_protocol.values()))
