"""Typed, path-aware access to a raw option mapping, for the schema in :mod:`.config`.

A :class:`Section` pops keys as they are read, converting and checking each; whatever is
left when it is :meth:`~Section.done` is an unknown key. A typo must not run: ``manual_sed``
would silently mean seed 0 and ``gama`` gamma 0.1, so an unknown key is an error with a
"did you mean" from the keys the section reads; only BasicSR keys LiteSR knows it does not
use (:data:`IGNORED_BASICSR_KEYS`) stay a warning, listed once. The unknown keys of a file
are reported together by :meth:`Context.finish`, and in strict mode every warning with
them. Every problem becomes a :class:`~.yaml_options.ConfigError` that names the file and
the dotted key path.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

from .yaml_options import ConfigError, describe

__all__ = ["IGNORED_BASICSR_KEYS", "REQUIRED", "Context", "Section", "as_float", "as_int", "float_list", "int_list", "non_empty_list",
           "path_list"]

REQUIRED: Any = object()

#: BasicSR keys that only matter to BasicSR's own machinery (its process launch, folder layout,
#: discriminator paths, caches), by section (``datasets.*`` is every dataset entry): accepted
#: with one warning listing them, never an error.
IGNORED_BASICSR_KEYS: dict[str, frozenset[str]] = {
    "": frozenset({"is_train", "dist", "rank", "world_size", "auto_resume", "root_path", "find_unused_parameters",
                   "use_static_graph"}),
    "datasets.*": frozenset({"meta_info_file", "phase", "scale", "color", "cache_data"}),
    "path": frozenset({"results_root", "log", "models", "training_states", "root", "ignore_resume_networks",
                       "pretrain_network_d", "strict_load_d", "param_key_d"}),
}


def _section_pattern(path: str) -> str:
    parts = path.split(".")
    if parts[0] == "datasets" and len(parts) == 2:
        parts[1] = "*"
    return ".".join(parts)


class Context:
    """One file being read: its warnings, and the unknown keys reported together at :meth:`finish`."""

    def __init__(self, source: str, strict: bool) -> None:
        self.source = source
        self.strict = strict
        self.warnings: list[str] = []
        self.unknown: list[tuple[str, str]] = []  # (key, what to say about it)
        self.ignored: list[str] = []

    def fail(self, key: str, problem: str) -> NoReturn:
        raise ConfigError(f"{self.source}: {key}: {problem}", key=key, source=self.source)

    def warn(self, key: str | None, message: str) -> None:
        self.warnings.append(f"{self.source}: {message}")

    def finish(self) -> None:
        """Raise one error naming every unknown key (and, in strict mode, every warning)."""
        if self.ignored:
            self.warn(self.ignored[0], f"BasicSR keys LiteSR does not use, ignored: {', '.join(self.ignored)}")
        problems = [text for _, text in self.unknown]
        if self.strict:
            problems += [warning.removeprefix(f"{self.source}: ") for warning in self.warnings]
        if not problems:
            return
        suffix = " (--strict: every warning is an error)" if self.strict and self.warnings else ""
        key = self.unknown[0][0] if self.unknown else None
        raise ConfigError(f"{self.source}: {'; '.join(problems)}{suffix}", key=key, source=self.source)


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
        self.known: set[str] = set()  # every key this section's parser asked for: the "did you mean" list

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, problem: str) -> NoReturn:
        self.ctx.fail(self.key(name), problem)

    def has(self, name: str) -> bool:
        self.known.add(name)
        return self.data.get(name) is not None

    def take(self, name: str, default: Any = None) -> Any:
        """The raw value of ``name`` (popped); ``default`` when absent or null."""
        self.known.add(name)
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
        self.known.add(name)
        return Section(self.ctx, self.key(name), self.data.pop(name, None))

    def done(self) -> None:
        """Report what was not read: BasicSR keys LiteSR ignores, else unknown keys (with a guess)."""
        ignored = IGNORED_BASICSR_KEYS.get(_section_pattern(self.path), frozenset())
        for name in self.data:
            key = self.key(name)
            if name in ignored:
                self.ctx.ignored.append(key)
                continue
            guess = difflib.get_close_matches(name, sorted(self.known), n=1, cutoff=0.6)
            hint = f" (did you mean {self.key(guess[0])}?)" if guess else ""
            self.ctx.unknown.append((key, f"unknown key {key}{hint}"))
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
