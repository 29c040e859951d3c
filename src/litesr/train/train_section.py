"""``train``: optimiser, length, schedule, loss and LiteSR's training keys.

GAN keys (``optim_d``, ``perceptual_opt``, ...) are refused: LiteSR trains with a pixel
loss only, and a file that asks for more must not silently train something else.
"""
from __future__ import annotations

import re
from typing import Any

from .options import PRECISIONS, LossOptions, OptimizerOptions, TrainOptions
from .scheduler_section import parse_scheduler
from .sections import REQUIRED, Section, float_list

__all__ = ["GAN_TRAIN_KEYS", "UNSUPPORTED_PIXEL_ONLY", "parse_duration", "parse_train"]

UNSUPPORTED_PIXEL_ONLY = "unsupported: LiteSR trains with a pixel loss only"
GAN_TRAIN_KEYS = ("optim_d", "scheduler_d", "net_d_iters", "net_d_init_iters")


def parse_train(section: Section) -> TrainOptions:
    for key in list(section.data):
        if key in GAN_TRAIN_KEYS or (key.endswith("_opt") and key != "pixel_opt"):
            if section.has(key):
                section.fail(key, UNSUPPORTED_PIXEL_ONLY)
            section.take(key)  # ``perceptual_opt: ~`` is the same as leaving it out

    if not section.has("optim_g"):
        section.fail("optim_g", "is required")
    optim = section.section("optim_g")
    optimizer = OptimizerOptions(
        type=optim.choice("type", ("Adam", "AdamW"), REQUIRED),
        lr=optim.float("lr", REQUIRED, positive=True),
        weight_decay=optim.float("weight_decay", 0.0, minimum=0.0),
        betas=float_list(optim, "betas", (0.9, 0.999), minimum=0.0, below=1.0),
    )
    if len(optimizer.betas) != 2:
        optim.fail("betas", f"must be two numbers, got {list(optimizer.betas)}")
    optim.done()

    total_iter = section.int("total_iter", REQUIRED, minimum=1)
    scheduler = parse_scheduler(section.section("scheduler"), total_iter) if section.has("scheduler") else None
    section.take("scheduler")

    if not section.has("pixel_opt"):
        section.fail("pixel_opt", "is required (LiteSR trains with a pixel loss)")
    loss_section = section.section("pixel_opt")
    loss_type = loss_section.choice("type", ("L1Loss", "MSELoss", "CharbonnierLoss"), REQUIRED)
    eps = loss_section.float("eps", positive=True)
    if eps is not None and loss_type != "CharbonnierLoss":
        loss_section.fail("eps", f"applies to CharbonnierLoss only, not {loss_type}")
    loss = LossOptions(
        type=loss_type,
        loss_weight=loss_section.float("loss_weight", 1.0, positive=True),
        reduction=loss_section.choice("reduction", ("mean", "sum"), "mean"),
        eps=eps,
    )
    loss_section.done()

    warmup_iter = section.int("warmup_iter", -1, minimum=-1)
    if warmup_iter >= total_iter:
        section.fail("warmup_iter", f"must be less than total_iter ({total_iter}), got {warmup_iter}")
    options = TrainOptions(
        optim_g=optimizer, total_iter=total_iter, pixel_opt=loss, scheduler=scheduler,
        ema_decay=section.float("ema_decay", 0.0, minimum=0.0, below=1.0),
        warmup_iter=warmup_iter,
        grad_clip=section.float("grad_clip", positive=True),
        precision=section.choice("precision", PRECISIONS, "fp32"),
        channels_last=section.bool("channels_last", False),
        compile=section.bool("compile", False),
        weight_init=section.str("weight_init", "official"),  # checked against the architecture's schemes
        time_budget=_duration(section, "time_budget"),
    )
    section.done()
    return options


def _duration(section: Section, name: str) -> float | None:
    """Seconds from a number (seconds) or a string with a unit: ``"90s"``, ``"8m"``, ``"1.5h"``."""
    value = section.take(name)
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as error:
        section.fail(name, str(error))
    return seconds


def parse_duration(value: Any) -> float:
    """``480``, ``"480"``, ``"90s"``, ``"8m"``, ``"1.5h"`` → seconds (> 0)."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    text = str(value).strip().lower()
    match = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)", text) if not isinstance(value, bool) else None
    if match is None or float(match[1]) <= 0:
        raise ValueError(f"must be a positive duration such as 480, '90s', '8m' or '1.5h', got {value!r}")
    return float(match[1]) * units[match[2] or "s"]
