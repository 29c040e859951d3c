"""``val``: how often to validate, and the metrics (BasicSR's ``calculate_psnr``/``calculate_ssim``).

The metrics are computed by :mod:`litesr.evaluate`, the code behind ``litesr eval``, with
each metric's ``crop_border`` and ``test_y_channel``.
"""
from __future__ import annotations

from .options import MetricOptions, ValOptions
from .sections import REQUIRED, Section, as_int

__all__ = ["parse_val"]

_METRIC_TYPES = {"calculate_psnr": "calculate_psnr", "psnr": "calculate_psnr",
                 "calculate_ssim": "calculate_ssim", "ssim": "calculate_ssim"}


def parse_val(section: Section) -> ValOptions:
    metrics_section = section.section("metrics")
    metrics = []
    for metric_name in list(metrics_section.data):
        metric = metrics_section.section(metric_name)
        type_name = metric.take("type", REQUIRED)
        canonical = _METRIC_TYPES.get(type_name.lower()) if isinstance(type_name, str) else None
        if canonical is None:
            metric.fail("type", f"unsupported metric {type_name!r}; LiteSR computes calculate_psnr and calculate_ssim")
        crop = metric.data.pop("crop_border") if "crop_border" in metric.data else 0
        if crop is not None:
            crop = as_int(metric, "crop_border", crop, minimum=0)
        metrics.append(MetricOptions(name=metric_name, type=canonical, crop_border=crop,
                                     test_y_channel=metric.bool("test_y_channel", False)))
        metric.done()
    options = ValOptions(
        val_freq=section.int("val_freq", minimum=1),
        save_img=section.bool("save_img", False),
        suffix=section.str("suffix"),
        metrics=tuple(metrics),
        pbar=section.bool("pbar", False),
    )
    section.done()
    return options
