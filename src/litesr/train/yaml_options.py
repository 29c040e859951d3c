"""Reading option files: YAML as BasicSR writes it, and ``--set key.path=value`` overrides.

Kept apart from the schema (:mod:`.config`) because it is about text, not meaning: the
loader reads ``1e-3`` as a float without ``!!float`` (YAML 1.2 style) and reports duplicate
keys, which PyYAML silently collapses; every failure is a :class:`ConfigError` naming the
file (and line).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import LiteSRError

__all__ = ["ConfigError", "apply_override", "describe", "read_yaml"]


class ConfigError(LiteSRError):
    """An option file (or a ``--set`` override) that LiteSR cannot run as written.

    ``key`` is the dotted path of the offending key (``train.optim_g.lr``) where there is
    one, ``source`` the file name.
    """

    def __init__(self, message: str, key: str | None = None, source: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.source = source


def describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, (list, tuple)):
        return f"a list {list(value)!r}"
    if isinstance(value, dict):
        return "a section"
    return f"a {type(value).__name__}"


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` as a float and records duplicate keys."""

    duplicates: list[str]


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            line = key_node.start_mark.line + 1
            loader.duplicates.append(f"duplicate key {key!r} at line {line}: the last value is used")
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def _load_yaml_text(text: str) -> tuple[Any, list[str]]:
    loader = _Loader(text)
    loader.duplicates = []
    try:
        return loader.get_single_data(), loader.duplicates
    finally:
        loader.dispose()


def read_yaml(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[str]]:
    """The raw option dict of ``path`` plus warnings about duplicate keys."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such option file", source=source) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{source}: cannot read the option file ({error})", source=source) from None
    try:
        data, duplicates = _load_yaml_text(text)
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{source}: invalid YAML{line}: {problem}", source=source) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the option file must be a mapping of keys, got {describe(data)}", source=source)
    return data, [f"{source}: {message}" for message in duplicates]


def apply_override(raw: dict[str, Any], override: str) -> dict[str, Any]:
    """Apply one ``key.path=value`` override to the raw option dict, in place (and return it).

    The value is parsed as YAML (``true``, ``1e-3``, ``[1, 2]``, ``~`` and ``''`` for null all
    work); text that is not valid YAML is taken as the plain string it reads as
    (``filename_tmpl={}x4``: a shell user should not need YAML quoting). Missing sections along the path are created; a path through a non-section value
    is an error. Lists are replaced whole (``train.scheduler.milestones=[1000,2000]``).
    """
    source = f"--set {override}"
    key, sep, text = override.partition("=")
    key = key.strip()
    parts = key.split(".")
    if not sep or not key or any(not part.strip() for part in parts):
        raise ConfigError(f"{source}: an override must look like key.path=value (e.g. train.optim_g.lr=1e-3)",
                          source=source)
    parts = [part.strip() for part in parts]
    value = _override_value(text)
    node = raw
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            where = ".".join(parts[: depth + 1])
            raise ConfigError(f"{source}: {where} is {describe(child)}, not a section, so {key} cannot be set",
                              key=where, source=source)
        node = child
    node[parts[-1]] = value
    return raw


def _override_value(text: str) -> Any:
    """``text`` read as YAML, or as the string itself when it is not YAML (``{}x4``)."""
    try:
        value, _ = _load_yaml_text(text)
    except yaml.YAMLError:
        return text.strip()
    return value
