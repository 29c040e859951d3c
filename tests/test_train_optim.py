"""Schedules as pure functions of the iteration, and the optimiser factory."""
import math

import pytest
import torch

from litesr.train.optim import build_optimizer, build_scheduler, cosine_restarts, multistep, with_warmup


def test_multistep_and_warmup():
    schedule = multistep([10, 20], 0.5)
    assert [schedule(i) for i in (0, 9, 10, 19, 20)] == [1, 1, 0.5, 0.5, 0.25]
    warm = with_warmup(schedule, 4)
    assert [warm(i) for i in (0, 1, 3, 10)] == [0.25, 0.5, 1.0, 0.5]


def test_cosine_restarts_matches_basicsr_formula():
    schedule = cosine_restarts([10, 10], [1.0, 0.5], eta_min_ratio=0.1)
    assert schedule(0) == pytest.approx(1.0)
    assert schedule(5) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert schedule(10) == pytest.approx(0.1 + 0.5 * 0.9)
    assert schedule(25) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        cosine_restarts([10], [1.0, 0.5], 0.0)


def test_scheduler_resumes_from_state():
    params = [torch.nn.Parameter(torch.zeros(1))]
    optimizer = build_optimizer("AdamW", params, lr=1.0, betas=(0.9, 0.99))
    scheduler = build_scheduler(optimizer, multistep([3], 0.1))
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    resumed_opt = build_optimizer("AdamW", params, lr=1.0)
    resumed = build_scheduler(resumed_opt, multistep([3], 0.1))
    resumed.load_state_dict(scheduler.state_dict())
    resumed_opt.load_state_dict(optimizer.state_dict())
    assert resumed_opt.param_groups[0]["lr"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="unknown optimizer"):
        build_optimizer("SGD", params, lr=1.0)
