"""Image files on disk: which names are images, listing them, and one pixel layout.

This is the bottom of :mod:`litesr.data`: benchmark sets, training data, LMDB writing and
the batch upscaler all find images the same way, so a file that one of them accepts is
never silently skipped by another.  It imports nothing from the rest of the package
except :mod:`litesr.errors`, so any module may depend on it without an import circle.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..errors import LiteSRError

__all__ = [
    "IMAGE_SUFFIXES",
    "DataError",
    "PathLike",
    "as_rgb_uint8",
    "is_image_file",
    "list_image_files",
    "missing_folder_error",
]

PathLike = str | os.PathLike[str]

#: Lower-case file suffixes LiteSR reads as images (Pillow decodes all of them); a file
#: with any other suffix in a data folder is ignored.  The one list for the whole package.
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {
        ".bmp",
        ".gif",
        ".jpeg",
        ".jpg",
        ".pgm",
        ".png",
        ".pnm",
        ".ppm",
        ".tga",
        ".tif",
        ".tiff",
        ".webp",
    }
)

_PLACEHOLDER = re.compile(r"path[ _]to|\byour[ _]|^<.*>$")


class DataError(LiteSRError):
    """Data cannot be used: a missing or empty folder, an unreadable image, sizes that do not fit."""


def is_image_file(path: PathLike) -> bool:
    """True when ``path``'s suffix (any case) is in :data:`IMAGE_SUFFIXES`.

    Decided by name alone, without touching the disk, so it also answers for output paths
    that do not exist yet.
    """
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def list_image_files(folder: PathLike, *, recursive: bool = True, what: str = "image") -> list[Path]:
    """Image files in ``folder``, sorted by relative path; hidden files and folders skipped.

    ``recursive`` also searches subfolders (following links).  ``what`` names the folder's
    role in messages (``"dataroot_gt"``, ``"HR"``...), as in ``no HR images in <folder>``.
    Raises :class:`DataError` when the folder is missing, is not a folder, cannot be
    listed, or holds no images -- the message says which, and hints at the likely cause
    (an unfilled template path, an LMDB folder, image subfolders of a flat search).
    """
    root = Path(folder)
    if not root.exists():
        raise missing_folder_error(root, what)
    if not root.is_dir():
        raise DataError(f"{what} is not a folder: {root}")
    try:
        found = _walk(root) if recursive else _flat(root)
    except OSError as exc:
        raise DataError(f"cannot list {what} folder {root}: {exc.strerror or exc}") from None
    images = sorted((p for p in found if is_image_file(p)), key=lambda p: p.relative_to(root).as_posix())
    if not images:
        raise DataError(f"no {what} images in {root}{_empty_folder_hint(root, recursive)}")
    return images


def as_rgb_uint8(pixels: np.ndarray, *, keep_gray: bool = False) -> np.ndarray:
    """Any decoded image (gray/RGB/alpha, uint8/uint16) as contiguous ``H×W×3`` uint8 RGB.

    Training and LMDB storage work on one layout so that later code needs no branches:
    gray becomes three equal channels (``H×W`` is kept when ``keep_gray``), alpha is
    dropped, 16-bit samples are rounded to 8 bits (``(v + 128) // 257``).
    """
    if pixels.dtype == np.uint16:
        pixels = ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif pixels.dtype != np.uint8:
        raise DataError(f"expected uint8 or uint16 pixels, got {pixels.dtype}")
    if pixels.ndim == 3 and pixels.shape[2] in (2, 4):
        pixels = pixels[..., :-1]
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim == 2 and not keep_gray:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise DataError(f"unsupported image shape {pixels.shape}")
    return np.ascontiguousarray(pixels)


def missing_folder_error(folder: PathLike, what: str) -> DataError:
    """The error for a data folder that does not exist, hinting at unfilled template paths.

    Shared so that image folders and LMDB folders word the most common setup mistake alike.
    """
    root = Path(folder)
    return DataError(f"{what} folder does not exist: {root}{_placeholder_hint(root)}")


# --------------------------------------------------------------------------- helpers


def _flat(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if not p.name.startswith(".") and p.is_file()]


def _walk(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(Path(dirpath) / f for f in filenames if not f.startswith("."))
    return found


def _placeholder_hint(path: Path) -> str:
    text = str(path).lower()
    if _PLACEHOLDER.search(text) or text in ("~", "none", "null"):
        return " (it looks like a placeholder from an option-file template; set it to your data)"
    return ""


def _empty_folder_hint(root: Path, recursive: bool) -> str:
    if (root / "data.mdb").exists():
        return "; it is an LMDB folder, set io_backend to 'lmdb'"
    if not recursive:
        subdirs = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if subdirs:
            shown = ", ".join(subdirs[:6]) + (", …" if len(subdirs) > 6 else "")
            return f" (it holds the folders {shown}: pass one of them)"
    return _placeholder_hint(root)
