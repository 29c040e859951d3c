"""Time-budgeted training: calibration from the measured rate, stretched schedules, the hard deadline."""
import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from litesr.train.budget import TimeBudget, process_age
from litesr.train.config import (ConfigError, CosineAnnealingRestartLROptions, MultiStepLROptions, load_config,
                                 parse_duration)
from litesr.train.trainer import Trainer
from test_trainer import _config, data  # noqa: F401  (the module-scoped toy data fixture)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def simulate(budget_s: float, seconds_per_step, *, startup: float = 0.0, val_every: int = 0,
             val_seconds: float = 0.0, recipe_total: int = 60):
    """The trainer's use of TimeBudget, on a fake clock: (iterations run, final total, share of the budget used).

    ``seconds_per_step(elapsed)`` is the step time at that moment (a machine that gets busier
    or quieter); a validation every ``val_every`` steps and once more at the end costs
    ``val_seconds``, reserved as the trainer does.
    """
    clock = FakeClock()
    budget = TimeBudget(budget_s, spent=startup, clock=clock)
    iteration, total = 0, recipe_total
    while iteration < total:
        clock.now += seconds_per_step(budget.elapsed())
        iteration += 1
        if val_every and iteration % val_every == 0:
            clock.now += val_seconds
            budget.reserve(val_seconds)
        total = budget.refit(iteration, total) or total
        if budget.expired() and iteration < total:
            break
    clock.now += val_seconds  # the final validation and export
    return iteration, total, budget.elapsed() / budget_s


@pytest.mark.parametrize("name, seconds_per_step, startup, val_every, val_seconds", [
    ("steady", lambda t: 0.05, 0.0, 0, 0.0),
    ("15 s of start-up counted", lambda t: 0.05, 15.0, 0, 0.0),
    ("validations of 2 s every 100 steps", lambda t: 0.05, 5.0, 100, 2.0),
    ("machine twice as busy from 40 %", lambda t: 0.05 if t < 24 else 0.1, 5.0, 100, 1.0),
    ("machine twice as fast from 40 %", lambda t: 0.1 if t < 24 else 0.05, 5.0, 100, 1.0),
    ("slow warm-up steps", lambda t: 2.0 if t < 4 else 0.05, 0.0, 0, 0.0),
])
def test_budget_fits_the_run_annealed_within_90_to_100_percent(name, seconds_per_step, startup, val_every,
                                                                 val_seconds):
    iterations, total, used = simulate(60.0, seconds_per_step, startup=startup, val_every=val_every,
                                       val_seconds=val_seconds)
    assert iterations == total, f"{name}: stopped at {iterations} of {total} (the schedule did not anneal)"
    assert 0.9 <= used <= 1.0, f"{name}: used {used:.0%} of the budget"


def test_budget_counts_time_spent_before_the_clock_and_reserves_the_end():
    clock = FakeClock()
    budget = TimeBudget(100.0, spent=30.0, clock=clock)
    assert budget.elapsed() == 30.0 and not budget.expired()
    budget.reserve(10.0)
    clock.now = 60.0
    assert budget.expired()  # 90 s spent + 10 s reserved for the end


def test_fitted_budget_does_not_double_provisionally():
    clock = FakeClock()
    fresh, resumed = TimeBudget(100.0, clock=clock), TimeBudget(100.0, clock=clock, fitted=True)
    assert fresh.refit(30, 100) == 200  # a quarter of the provisional length: doubled
    assert resumed.refit(30, 100) is None  # a resumed run keeps its fitted length until it re-fits


def test_process_age_is_the_time_since_this_process_started():
    assert 0.0 < process_age() < time.monotonic() + 1


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
def test_real_budgeted_run_anneals_and_uses_most_of_its_budget(tmp_path, data):  # noqa: F811
    """The command as a user runs it: the clock starts with the process, start-up included."""
    budget = 20.0
    path = _config(tmp_path, data, **{
        "train.total_iter": 10, "val.val_freq": 200, "logger.save_checkpoint_freq": 200, "logger.print_freq": 50,
        "train.scheduler": {"type": "CosineAnnealingRestartLR", "periods": [10], "eta_min": 1e-6}})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "litesr", "train", str(path), "--time-budget", f"{budget:g}s"],
                            capture_output=True, text=True, timeout=120, env=env)
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-2000:]
    written = yaml.safe_load((tmp_path / "exp" / "config.yml").read_text())["train"]
    final = json.loads((tmp_path / "exp" / "metrics.jsonl").read_text().splitlines()[-2])
    assert written["scheduler"]["periods"] == [written["total_iter"]] and written["total_iter"] > 50
    assert final["kind"] == "train" and final["iter"] == written["total_iter"], result.stderr  # ran to the end
    assert final["lr"] < 1e-5  # annealed
    assert 0.9 * budget <= took <= budget + 3, result.stderr  # + the interpreter's exit
    assert "done: iteration" in result.stderr and "of the time budget" in result.stderr


def test_resumed_budgeted_run_continues_its_plan_and_its_clock(tmp_path, data):  # noqa: F811
    path = _config(tmp_path, data, **{"train.total_iter": 12, "train.time_budget": 30,
                                      "val.val_freq": 10 ** 6, "logger.save_checkpoint_freq": 10 ** 6})
    config, _ = load_config(path)
    assert Trainer(config, progress=False).run(stop_at=5) is None
    saved = tmp_path / "exp" / "config.yml"
    planned = yaml.safe_load(saved.read_text())["train"]["total_iter"]
    assert planned == 24  # provisionally doubled at a quarter of the recipe's 12
    resumed_config, _ = load_config(saved)  # what litesr train --resume reads
    resumed = Trainer(resumed_config, resume=True, progress=False)
    assert resumed.iteration == 5 and resumed.budget_state["spent"] > 0  # the first session's time counts
    assert resumed.options.total_iter == planned
    assert resumed.run(stop_at=8) is None and resumed.iteration == 8
