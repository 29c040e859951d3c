"""Typed, path-aware access to a raw option mapping, for the schema in :mod:`.config`.

A :class:`Section` pops keys as they are read, converting and checking each; whatever is
left when it is :meth:`~Section.done` is an unknown key (a warning, or an error in strict
mode). Every problem becomes a :class:`~.yaml_options.ConfigError` that names the file and
the dotted key path.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

from .yaml_options import ConfigError, describe

__all__ = ["REQUIRED", "Context", "Section", "as_float", "as_int", "float_list", "int_list", "non_empty_list",
           "path_list"]

REQUIRED: Any = object()


class Context:
    def __init__(self, source: str, strict: bool) -> None:
        self.source = source
        self.strict = strict
        self.warnings: list[str] = []

    def fail(self, key: str, problem: str) -> NoReturn:
        raise ConfigError(f"{self.source}: {key}: {problem}", key=key, source=self.source)

    def warn(self, key: str | None, message: str) -> None:
        text = f"{self.source}: {message}"
        if self.strict:
            raise ConfigError(f"{text} (strict mode turns warnings into errors)", key=key, source=self.source)
        self.warnings.append(text)


class Section:
    """A mapping being read: typed getters pop keys; :meth:`done` reports what is left."""

    def __init__(self, ctx: Context, path: str, raw: Any) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            ctx.fail(path, f"must be a section (a mapping of keys), got {describe(raw)}")
        self.ctx = ctx
        self.path = path
        self.data: dict[str, Any] = {str(key): value for key, value in raw.items()}

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, problem: str) -> NoReturn:
        self.ctx.fail(self.key(name), problem)

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def take(self, name: str, default: Any = None) -> Any:
        """The raw value of ``name`` (popped); ``default`` when absent or null."""
        value = self.data.pop(name, None)
        if value is None:
            if default is REQUIRED:
                self.fail(name, "is required")
            return default
        return value

    def int(self, name: str, default: Any = None, *, minimum: int | None = None) -> Any:
        if self.data.get(name) is None:
            return self.take(name, default)
        return as_int(self, name, self.take(name), minimum)

    def float(self, name: str, default: Any = None, **limits: Any) -> Any:
        if self.data.get(name) is None:
            return self.take(name, default)
        return as_float(self, name, self.take(name), **limits)

    def bool(self, name: str, default: Any = None) -> Any:
        if self.data.get(name) is None:
            return self.take(name, default)
        value = self.take(name)
        if not isinstance(value, bool):
            self.fail(name, f"must be true or false, got {describe(value)}")
        return value

    def str(self, name: str, default: Any = None) -> Any:
        if self.data.get(name) is None:
            return self.take(name, default)
        value = self.take(name)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.fail(name, f"must be a string, got {describe(value)}")
        return str(value)

    def choice(self, name: str, choices: Iterable[str], default: Any = None) -> Any:
        """A string matched case-insensitively against ``choices``; returns the canonical one."""
        if self.data.get(name) is None:
            return self.take(name, default)
        value = self.take(name)
        canonical = {choice.lower(): choice for choice in choices}
        if not isinstance(value, str) or value.lower() not in canonical:
            self.fail(name, f"must be one of {', '.join(canonical.values())}, got {describe(value)}")
        return canonical[value.lower()]

    def section(self, name: str) -> Section:
        return Section(self.ctx, self.key(name), self.data.pop(name, None))

    def done(self) -> None:
        for name in self.data:
            self.ctx.warn(self.key(name), f"unknown key '{self.key(name)}' ignored")
        self.data.clear()


def as_int(section: Section, name: str, value: Any, minimum: int | None = None) -> int:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        section.fail(name, f"must be an integer, got {describe(value)}")
    if minimum is not None and value < minimum:
        section.fail(name, f"must be at least {minimum}, got {value}")
    return value


def as_float(section: Section, name: str, value: Any, *, minimum: float | None = None, positive: bool = False,
              below: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        section.fail(name, f"must be a number, got {describe(value)}")
    value = float(value)
    if positive and value <= 0:
        section.fail(name, f"must be greater than 0, got {value:g}")
    if minimum is not None and value < minimum:
        section.fail(name, f"must be at least {minimum:g}, got {value:g}")
    if below is not None and value >= below:
        section.fail(name, f"must be less than {below:g}, got {value:g}")
    return value


def non_empty_list(section: Section, name: str, value: Any) -> list[Any]:
    if not isinstance(value, (list, tuple)) or not value:
        section.fail(name, f"must be a non-empty list, got {describe(value)}")
    return list(value)


def int_list(section: Section, name: str, default: Any = None, *, minimum: int | None = None) -> Any:
    if section.data.get(name) is None:
        return section.take(name, default)
    items = non_empty_list(section, name, section.take(name))
    return tuple(as_int(section, f"{name}[{index}]", item, minimum) for index, item in enumerate(items))


def float_list(section: Section, name: str, default: Any = None, **limits: Any) -> Any:
    if section.data.get(name) is None:
        return section.take(name, default)
    items = non_empty_list(section, name, section.take(name))
    return tuple(as_float(section, f"{name}[{index}]", item, **limits) for index, item in enumerate(items))


def path_list(section: Section, name: str) -> tuple[str, ...] | None:
    """``dataroot_*``: one folder, or a list of folders (LiteSR extension)."""
    value = section.take(name)
    if value is None:
        return None
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items:
        section.fail(name, "must be a folder or a non-empty list of folders, got an empty list")
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int, float)) or not str(item).strip():
            section.fail(name, f"must be a folder or a list of folders, got {describe(value)}")
    return tuple(str(item) for item in items)
