"""``train.scheduler``: BasicSR's MultiStepLR and CosineAnnealingRestartLR, checked against ``total_iter``."""
from __future__ import annotations

from .options import CosineAnnealingRestartLROptions, MultiStepLROptions, SchedulerOptions
from .sections import REQUIRED, Section, float_list, int_list

__all__ = ["parse_scheduler"]


def parse_scheduler(section: Section, total_iter: int) -> SchedulerOptions:
    kind = section.choice("type", ("MultiStepLR", "CosineAnnealingRestartLR"), REQUIRED)
    scheduler: SchedulerOptions
    if kind == "MultiStepLR":
        milestones = int_list(section, "milestones", REQUIRED, minimum=1)
        if list(milestones) != sorted(set(milestones)):
            section.fail("milestones", f"must be increasing, got {list(milestones)}")
        scheduler = MultiStepLROptions(milestones=milestones, gamma=section.float("gamma", 0.1, positive=True))
    else:
        periods = int_list(section, "periods", REQUIRED, minimum=1)
        weights = float_list(section, "restart_weights", (1.0,) * len(periods), minimum=0.0)
        if len(weights) != len(periods):
            section.fail("restart_weights", f"must have one weight per period ({len(periods)}), got {len(weights)}")
        if sum(periods) < total_iter:
            section.fail("periods", f"must add up to at least total_iter ({total_iter}), got {sum(periods)}")
        scheduler = CosineAnnealingRestartLROptions(periods=periods, restart_weights=weights,
                                                    eta_min=section.float("eta_min", 0.0, minimum=0.0))
    section.done()
    return scheduler
