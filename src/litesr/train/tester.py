"""What BasicSR's ``basicsr/test.py -opt FILE.yml`` does, with LiteSR's metrics (``litesr test``).

The network is built from ``network_g``, ``path.pretrain_network_g`` loaded into it
(``param_key_g``, ``strict_load_g``), and every dataset of the file (``test_*``, ``val*``;
a ``train`` entry is skipped) scored with the file's ``val.metrics`` through
:func:`litesr.evaluate.evaluate` — the same numbers ``litesr eval`` prints. Every set is
opened and checked before the first image is scored. Results go under
``results/<name>/`` as in BasicSR: with ``val.save_img`` the SR images in
``visualization/<set>/`` (``litesr test`` writes its table to ``test_<name>.log`` there).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.benchmark import BenchmarkSet
from ..errors import LiteSRError
from ..model import SRModel
from .eval_sets import open_eval_set
from .options import TrainConfig
from .pretrained import load_pretrained
from .scoring import DEFAULT_METRICS, SetScores, score_set

__all__ = ["TestError", "TestRun", "build_model", "open_sets", "run_test"]


class TestError(LiteSRError):
    """An option file that ``litesr test`` cannot run (no weights, no sets to score)."""

    __test__ = False  # not a pytest class


@dataclass
class TestRun:
    """The outcome: the model tested, every set's scores, where results go, notes (non-strict loads)."""

    __test__ = False

    model: SRModel
    scores: list[SetScores]
    results_root: Path
    notes: list[str]


def build_model(config: TrainConfig, device: torch.device | str = "cpu") -> tuple[SRModel, list[str]]:
    """``network_g`` with ``pretrain_network_g`` loaded; notes list what a non-strict load skipped."""
    paths = config.path
    if not paths.pretrain_network_g:
        raise TestError(f"{config.source}: path.pretrain_network_g is not set: there are no weights to test "
                        "(set it in the file or with --set path.pretrain_network_g=FILE)")
    spec = config.network_g.to_spec()
    net = spec.build()
    notes = load_pretrained(net, spec, paths.pretrain_network_g, param_key=paths.param_key_g,
                            strict=paths.strict_load_g)
    return SRModel(net.eval(), spec, name=config.name, source=paths.pretrain_network_g).to(device), notes


def open_sets(config: TrainConfig) -> list[BenchmarkSet]:
    """Every non-training set at each of its scales, checked now (folders, pairing, sizes)."""
    sets = [open_eval_set(options, scale, check=True) for options in config.val_sets for scale in options.scales]
    if not sets:
        raise TestError(f"{config.source}: the file has no datasets to test (add datasets.test_1 ...)")
    return sets


def run_test(config: TrainConfig, *, device: torch.device | str = "cpu", results_root: Path | None = None,
             progress: bool = False, report: Callable[[SetScores], None] = lambda scores: None) -> TestRun:
    """Score ``config``'s weights on all its sets; ``report`` is called as each set finishes."""
    model, notes = build_model(config, device)
    sets = open_sets(config)
    root = results_root if results_root is not None else Path("results") / config.name
    metrics = config.val.metrics if config.val is not None and config.val.metrics else DEFAULT_METRICS
    save_images = config.val is not None and config.val.save_img
    scores = []
    for bench in sets:
        save_dir = root / "visualization" / _folder_name(bench, sets) if save_images else None
        scores.append(score_set(model, bench, metrics, save_dir=save_dir, progress=progress))
        report(scores[-1])
    return TestRun(model, scores, root, notes)


def _folder_name(bench: BenchmarkSet, sets: list[BenchmarkSet]) -> str:
    """The set's name, with the scale when the same set is scored at several scales."""
    same_name = [other for other in sets if other.name == bench.name]
    return bench.name if len(same_name) == 1 else f"{bench.name}_x{bench.scale}"
