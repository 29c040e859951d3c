"""``network_g``: the registered architecture it names and its constructor arguments.

Registry-driven: the architecture's constructor signature says which keys exist and their
types, its ``official_options`` which values LiteSR implements, its scales which ``upscale``
is valid, so a new architecture needs no change here.
"""
from __future__ import annotations

import math
import typing
from typing import Any

from ..archs import UnknownArchitectureError, architectures, get_architecture
from .options import NetworkOptions
from .sections import REQUIRED, Section

__all__ = ["parse_network"]


def _official_value_matches(value: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool):
        return value is expected
    if isinstance(expected, tuple):
        return (isinstance(value, (list, tuple)) and len(value) == len(expected)
                and all(_official_value_matches(v, e) for v, e in zip(value, expected)))
    return isinstance(value, (int, float)) and math.isclose(value, expected, rel_tol=0, abs_tol=1e-6)


def _read_argument(section: Section, key: str, kind: Any) -> Any:
    """One ``network_g`` argument, typed by the constructor's annotation (ints are ≥ 1)."""
    kinds = set(typing.get_args(kind)) - {type(None)} or {kind}
    if bool in kinds:
        return section.bool(key)
    if int in kinds:
        return section.int(key, minimum=1)
    if float in kinds:
        return section.float(key)
    if str in kinds:
        return section.str(key)
    section.fail(key, "cannot be set from an option file (its type is not a number, bool or string)")
    return None


def parse_network(top: Section, scale: int | None) -> tuple[NetworkOptions, int]:
    """``network_g``: the type names a registered architecture; its arguments follow its constructor."""
    if not top.has("network_g"):
        top.fail("network_g", "is required")
    section = top.section("network_g")
    type_name = section.take("type", REQUIRED)
    try:
        architecture = get_architecture(str(type_name))
    except UnknownArchitectureError:
        known = ", ".join(a.display_name for a in architectures())
        section.fail("type", f"unknown network type {type_name!r}; LiteSR supports {known}")
    name = architecture.display_name
    defaults = architecture.defaults()
    kwargs: dict[str, Any] = dict(defaults)

    for key, expected in architecture.official_options.items():
        if key in section.data:
            value = section.take(key)
            if value is not None and not _official_value_matches(value, expected):
                section.fail(key, f"unsupported value {value!r}: LiteSR's {name} implements only the "
                                  f"official {key}={expected!r}")
    scale_argument = architecture.scale_argument
    settable = {key: kind for key, kind in architecture.argument_types().items() if key != scale_argument}
    for key, kind in settable.items():
        if key in section.data:
            value = _read_argument(section, key, kind)
            if value is not None:
                kwargs[key] = value
    net_scale = section.int(scale_argument, minimum=1)
    if section.data:
        unknown = next(iter(section.data))
        valid = sorted({*settable, scale_argument, *architecture.official_options})
        section.fail(unknown, f"unknown {name} argument; valid ones are {', '.join(valid)}")

    scale_key = section.key(scale_argument)
    supported = ", ".join(map(str, architecture.scales))
    multi_argument = architecture.multi_scale_argument
    if multi_argument and kwargs.get(multi_argument):
        # One network for every scale: the constructor ignores its scale argument; the
        # top-level ``scale`` picks the default (and must be one it serves).
        if net_scale is not None and net_scale not in architecture.scales:
            top.ctx.fail(scale_key, f"the multi-scale {name} serves ×{supported}, got {net_scale}")
        if scale is None:
            scale = net_scale
        if scale is None:
            top.fail("scale", f"is required for the multi-scale {name} (one of {supported})")
        if scale not in architecture.scales:
            top.fail("scale", f"the multi-scale {name} serves ×{supported}, got {scale}")
        kwargs[scale_argument] = None
    else:
        if net_scale is None and scale is None:
            top.fail("scale", f"is required (or set {scale_key})")
        if net_scale is not None and scale is not None and net_scale != scale:
            top.ctx.fail(scale_key, f"is {net_scale} but the top-level scale is {scale}; they must match")
        scale = scale if scale is not None else net_scale
        if scale not in architecture.scales:
            where = scale_key if net_scale is not None else "scale"
            top.ctx.fail(where, f"{name} supports scale {supported}, got {scale}")
        kwargs[scale_argument] = scale
    ordered = {key: kwargs[key] for key in architecture.parameters() if key in kwargs}
    return NetworkOptions(name, ordered), scale
