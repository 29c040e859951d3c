"""Time-budgeted training: calibration from the measured rate, stretched schedules, the hard deadline."""
import json
import time

import pytest
import yaml

import litesr
from litesr.train.budget import CALIBRATE_AT, MEASURE_FROM, SAFETY, TimeBudget
from litesr.train.config import (ConfigError, CosineAnnealingRestartLROptions, MultiStepLROptions, load_config,
                                 parse_duration)
from litesr.train.trainer import Trainer
from test_trainer import _config, data  # noqa: F401  (the module-scoped toy data fixture)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_calibration_uses_the_rate_between_the_marks_and_fires_once():
    clock = FakeClock()
    budget = TimeBudget(100.0, clock=clock)
    clock.now = MEASURE_FROM * 100 - 1  # start-up: slow iterations before the mark do not count
    assert budget.calibrated_total(3) is None
    clock.now = MEASURE_FROM * 100
    assert budget.calibrated_total(5) is None  # the mark
    clock.now = CALIBRATE_AT * 100
    # 10 it/s between the marks: 20 iterations more by now, then 85 s × 0.93 × 10 it/s
    total = budget.calibrated_total(5 + 10 * round((CALIBRATE_AT - MEASURE_FROM) * 100))
    assert total == 105 + int(10 * (100 - CALIBRATE_AT * 100) * SAFETY)
    assert budget.calibrated_total(200) is None
    assert not budget.expired()
    clock.now = 100.0
    assert budget.expired()


@pytest.mark.parametrize("text, seconds", [(480, 480.0), ("480", 480.0), ("90s", 90.0), ("8m", 480.0),
                                           ("1.5h", 5400.0), (" 2 m", 120.0), (0.5, 0.5)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "-3m", "8 minutes", "", True, "1e3"])
def test_parse_duration_refuses_nonsense(text):
    with pytest.raises(ValueError, match="positive duration"):
        parse_duration(text)


def test_bad_time_budget_is_a_config_error(tmp_path, data):  # noqa: F811
    with pytest.raises(ConfigError, match="train.time_budget"):
        load_config(_config(tmp_path, data, **{"train.time_budget": "soon"}))


def test_schedules_stretch_in_proportion():
    cosine = CosineAnnealingRestartLROptions(periods=(100, 300), restart_weights=(1.0, 0.5), eta_min=1e-7)
    assert cosine.stretched(2.5).periods == (250, 750)
    assert cosine.stretched(2.5).restart_weights == (1.0, 0.5)
    steps = MultiStepLROptions(milestones=(1, 2, 40), gamma=0.5)
    assert steps.stretched(0.01).milestones == (1, 2, 3)  # still strictly increasing
    assert steps.stretched(10).milestones == (10, 20, 400)


@pytest.mark.slow
def test_budgeted_run_fits_its_schedule_and_stops_in_time(tmp_path, data):  # noqa: F811
    budget = 6.0
    path = _config(tmp_path, data, **{
        "train.total_iter": 10, "train.time_budget": budget, "val.val_freq": 10 ** 6,
        "logger.save_checkpoint_freq": 10 ** 6, "logger.print_freq": 10 ** 6,
        "train.scheduler": {"type": "CosineAnnealingRestartLR", "periods": [10], "eta_min": 1e-6}})
    config, _ = load_config(path, strict=True)
    trainer = Trainer(config, progress=False)
    started = time.monotonic()
    exported = trainer.run()
    took = time.monotonic() - started
    assert took < budget + 5  # the deadline, plus one step, a validation and the export
    written = yaml.safe_load((tmp_path / "exp" / "config.yml").read_text())["train"]
    # far more than the recipe's 10 iterations fit in 6 s; the period followed the new length
    assert written["total_iter"] > 50 and written["scheduler"]["periods"] == [written["total_iter"]]
    assert trainer.iteration <= written["total_iter"]
    # the schedule annealed: the final learning rate is near eta_min unless the deadline cut it short
    if trainer.iteration == written["total_iter"]:
        assert trainer.optimizer.param_groups[0]["lr"] < 1e-4
    assert litesr.load(exported).arch == "scnet"
    records = [json.loads(line) for line in (tmp_path / "exp" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["kind"] == "val"


def test_resumed_budgeted_run_keeps_its_length(tmp_path, data):  # noqa: F811
    path = _config(tmp_path, data, **{"train.total_iter": 12, "train.time_budget": 60})
    config, _ = load_config(path)
    assert Trainer(config, progress=False).run(stop_at=5) is None
    resumed = Trainer(config, resume=True, progress=False)
    resumed.run()
    assert resumed.iteration == 12
