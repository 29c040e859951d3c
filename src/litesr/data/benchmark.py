"""Benchmark sets: HR images, and LR images either given or made exactly as MATLAB does.

A benchmark set is a folder of HR images, given by its path or, as a bare name such as
``Set5``, found in the data directory (``$LITESR_DATA``, see :mod:`litesr.data.data_dir`).
Its LR images come from one of three places:

* an EDSR-style set folder, ``<Set>/HR/<name>.png`` + ``<Set>/LR_bicubic/X<s>/<name>x<s>.png``
  (the layout of ``shared/data/benchmark``, of BasicSR and of EDSR): the given LR folder
  is used automatically when it exists for the requested scale, unless ``make_lr=True``;
* an explicit LR folder (``lr=...``, the CLI's ``--lr DIR``);
* nothing: the LR is made on the fly, ``imresize(modcrop(HR, s), 1/s)`` on the uint8
  image with the MATLAB-exact :func:`litesr.imaging.resize.imresize` (bit-identical to
  the published Set5/Set14 LR files).

SelfExSR / LESRCNN folders (``img_001_SRF_4_HR.png`` beside ``img_001_SRF_4_LR.png``
and other methods' results) are recognised: only ``*_SRF_<s>_HR`` files count as HR and,
unless another LR source is chosen, the ``*_SRF_<s>_LR`` files beside them are the LR.

HR and LR files are paired by name, case-insensitively: the same stem (``baby`` ↔
``baby``), the EDSR suffix (``baby`` ↔ ``babyx2``, also ``baby_x2``), or SelfExSR names
(``img_001_SRF_4_HR`` ↔ ``img_001_SRF_4_LR``).  Every HR image must have exactly one LR
image and every LR image one HR image; the HR is cropped to a multiple of the scale
("modcrop": the last ``H mod s`` rows and ``W mod s`` columns go) and the LR must then be
exactly ``1/s`` of it.  Any other situation is a :class:`DatasetError` with one sentence
saying what is wrong, raised when the set is opened (image headers only) rather than
halfway through an evaluation.  ``DatasetError`` is :class:`~litesr.data.files.DataError`
under its older name: a benchmark problem is a data problem like any other.

Images are returned as read: ``H×W×3`` RGB or ``H×W`` gray ``uint8``.  What to do with
gray images (Set14's ``bridge``) is a question of evaluation protocol, decided in
:mod:`litesr.evaluate`.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..imaging.io import ImageError, read_image
from ..imaging.resize import make_lr, modcrop
from .data_dir import resolve_data_path
from .files import DataError, list_image_files

__all__ = [
    "BenchmarkSet",
    "DatasetError",
    "Pair",
    "Sample",
    "open_benchmark",
]

_SRF = re.compile(r"^(?P<stem>.*)_srf_(?P<scale>\d+)_(?P<kind>hr|lr)$", re.IGNORECASE)
_ORIENTATION_TAG = 0x0112


#: The name :mod:`litesr.evaluate` and older code catch; the same class as :class:`DataError`.
DatasetError = DataError


@dataclass(frozen=True)
class Pair:
    """One benchmark image: its name (the HR file's stem) and where HR and LR are read from.

    ``lr_path`` is None when the LR is made on the fly from the HR.
    """

    name: str
    hr_path: Path
    lr_path: Path | None


@dataclass(frozen=True)
class Sample:
    """A loaded pair: ``hr`` already cropped to a multiple of the scale, ``lr`` = ``hr`` / scale.

    Both are ``uint8``, ``H×W×3`` RGB or ``H×W`` gray, as stored in the files.
    """

    name: str
    hr: np.ndarray
    lr: np.ndarray
    hr_path: Path
    lr_path: Path | None


@dataclass(frozen=True)
class BenchmarkSet:
    """A benchmark set at one scale: the paired files, loaded one :class:`Sample` at a time.

    Use :func:`open_benchmark` to build one.  ``lr_dir`` is None when the LR images are
    made on the fly (``lr_origin == "made"``).
    """

    name: str
    scale: int
    hr_dir: Path
    lr_dir: Path | None
    pairs: tuple[Pair, ...]

    @property
    def lr_origin(self) -> str:
        """``"given"`` (read from ``lr_dir``) or ``"made"`` (MATLAB imresize of the HR)."""
        return "made" if self.lr_dir is None else "given"

    def describe(self) -> str:
        lr = f"LR from {self.lr_dir}" if self.lr_dir is not None else "LR made with MATLAB-exact imresize"
        return f"{self.name} ×{self.scale}: {len(self)} images from {self.hr_dir}, {lr}"

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[Sample]:
        for index in range(len(self.pairs)):
            yield self[index]

    def __getitem__(self, index: int) -> Sample:
        pair = self.pairs[index]
        hr = modcrop(_read_pixels(pair.hr_path), self.scale)
        if pair.lr_path is None:
            try:
                lr = make_lr(hr, self.scale)
            except ValueError as error:
                raise DatasetError(f"{pair.hr_path}: {error}") from None
        else:
            lr = _read_pixels(pair.lr_path)
            _check_sizes(pair, self.scale, (hr.shape[1], hr.shape[0]), (lr.shape[1], lr.shape[0]), cropped=True)
        return Sample(pair.name, np.ascontiguousarray(hr), np.ascontiguousarray(lr), pair.hr_path, pair.lr_path)


def open_benchmark(
    data: str | os.PathLike[str],
    scale: int,
    *,
    lr: str | os.PathLike[str] | None = None,
    make_lr: bool = False,
    name: str | None = None,
    check_sizes: bool = True,
) -> BenchmarkSet:
    """Find a benchmark set's images and pair them; raise :class:`DatasetError` if anything is off.

    Args:
        data: a set folder (``<Set>`` holding ``HR/``, and optionally ``LR_bicubic/X<s>/``),
            its ``HR`` folder, a plain folder of HR images, or a SelfExSR-style folder;
            a bare name (``"Set5"``) that is not a folder here is looked up in the data
            directory (:func:`litesr.data.data_dir.resolve_data_path`).
        scale: the super-resolution factor.
        lr: a folder of LR images to use instead of any other LR source.
        make_lr: make the LR on the fly even when the set has an ``LR_bicubic/X<s>`` folder
            or SelfExSR ``*_LR`` files.
        name: the set's display name (default: the set folder's name).
        check_sizes: read every image header now and check LR × scale = modcropped HR, so a
            wrong scale or folder fails before any model runs (the check is repeated on the
            decoded pixels either way).
    """
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise DatasetError(f"the scale must be a positive integer, got {scale!r}")
    scale = int(scale)
    if lr is not None and make_lr:
        raise DatasetError("an LR folder and making the LR on the fly exclude each other: choose one")
    root = _existing_dir(resolve_data_path(data), "benchmark folder")
    if (root / "HR").is_dir():
        hr_dir, set_dir = root / "HR", root
    elif root.name.lower() == "hr":
        hr_dir, set_dir = root, root.parent
    else:
        hr_dir, set_dir = root, None
    set_name = name or (set_dir.name if set_dir is not None else root.name)

    hr_files, inline_lr = _hr_files(hr_dir, scale)
    lr_dir: Path | None = None
    lr_files: list[Path] = []
    if lr is not None:
        lr_dir = _existing_dir(Path(lr), "LR folder")
        lr_files = _lr_files(lr_dir, scale)
    elif not make_lr and inline_lr:
        lr_dir, lr_files = hr_dir, inline_lr
    elif not make_lr and set_dir is not None:
        for candidate in (set_dir / "LR_bicubic" / f"X{scale}", set_dir / "LR_bicubic" / f"x{scale}"):
            if candidate.is_dir():
                lr_dir = candidate
                lr_files = _lr_files(candidate, scale)
                break
    pairs = _pair(hr_files, hr_dir, lr_files, lr_dir, scale)
    bench = BenchmarkSet(set_name, scale, hr_dir, lr_dir, tuple(pairs))
    if check_sizes:
        for pair in bench.pairs:
            hr_size = _header_size(pair.hr_path)
            if hr_size[0] < scale or hr_size[1] < scale:
                raise DatasetError(f"{pair.hr_path}: a {hr_size[0]}×{hr_size[1]} image is smaller than the scale ×{scale}")
            if pair.lr_path is not None:
                _check_sizes(pair, scale, hr_size, _header_size(pair.lr_path), cropped=False)
    return bench


# --------------------------------------------------------------------------- helpers


def _existing_dir(path: Path, what: str) -> Path:
    if not path.exists():
        raise DatasetError(f"{what} {path} does not exist")
    if not path.is_dir():
        raise DatasetError(f"{what} {path} is not a folder")
    return path


def _srf_split(files: list[Path]) -> tuple[dict[int, list[Path]], dict[int, list[Path]], list[Path]]:
    """Split SelfExSR-named files into HR and LR by the scale in their names; the rest apart."""
    hr: dict[int, list[Path]] = {}
    lr: dict[int, list[Path]] = {}
    rest = []
    for path in files:
        match = _SRF.match(path.stem)
        if match is None:
            rest.append(path)
            continue
        target = hr if match["kind"].lower() == "hr" else lr
        target.setdefault(int(match["scale"]), []).append(path)
    return hr, lr, rest


def _scales_text(found: dict[int, list[Path]]) -> str:
    return ", ".join(f"×{s}" for s in sorted(found))


def _hr_files(hr_dir: Path, scale: int) -> tuple[list[Path], list[Path]]:
    """HR images of a folder and, for a SelfExSR folder, the ``*_SRF_<s>_LR`` files beside them."""
    files = list_image_files(hr_dir, recursive=False, what="HR")
    srf_hr, srf_lr, _ = _srf_split(files)
    if not srf_hr:
        return files, []
    if scale not in srf_hr:
        raise DatasetError(
            f"{hr_dir} holds SelfExSR-style HR images for {_scales_text(srf_hr)}, not ×{scale} "
            f"(file names like img_001_SRF_{scale}_HR.png)"
        )
    return srf_hr[scale], srf_lr.get(scale, [])


def _lr_files(lr_dir: Path, scale: int) -> list[Path]:
    files = list_image_files(lr_dir, recursive=False, what="LR")
    srf_hr, srf_lr, _ = _srf_split(files)
    if srf_hr or srf_lr:  # a SelfExSR folder: only its *_SRF_<s>_LR files are LR images
        if scale not in srf_lr:
            found = _scales_text(srf_lr) or "no scale"
            raise DatasetError(
                f"{lr_dir} holds SelfExSR-style LR images for {found}, not ×{scale} "
                f"(file names like img_001_SRF_{scale}_LR.png)"
            )
        return srf_lr[scale]
    return files


def _hr_key(path: Path) -> str:
    stem = path.stem.lower()
    match = _SRF.match(stem)
    return match["stem"] if match is not None else stem


def _lr_keys(path: Path, scale: int) -> list[str]:
    """Names an LR file may pair with, best first."""
    stem = path.stem.lower()
    keys = [stem]
    match = _SRF.match(stem)
    if match is not None:
        keys.append(match["stem"])
    for suffix in (f"x{scale}", f"_x{scale}", f"-x{scale}", f"_lrx{scale}", f"_lr_x{scale}", "_lr", "-lr"):
        if stem.endswith(suffix) and len(stem) > len(suffix):
            keys.append(stem[: -len(suffix)])
    return keys


def _listing(paths: Sequence[Path | str], limit: int = 3) -> str:
    names = [p.name if isinstance(p, Path) else p for p in paths]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _pair(hr_files: list[Path], hr_dir: Path, lr_files: list[Path], lr_dir: Path | None, scale: int) -> list[Pair]:
    by_key: dict[str, Path] = {}
    for path in hr_files:
        key = _hr_key(path)
        if key in by_key:
            raise DatasetError(f"two HR images in {hr_dir} have the same name: {by_key[key].name} and {path.name}")
        by_key[key] = path
    if lr_dir is None:
        return [Pair(path.stem, path, None) for path in hr_files]

    lr_for: dict[str, Path] = {}
    unmatched: list[Path] = []
    for path in lr_files:
        key = next((k for k in _lr_keys(path, scale) if k in by_key), None)
        if key is None:
            unmatched.append(path)
            continue
        if key in lr_for:
            raise DatasetError(
                f"two LR images in {lr_dir} match the HR image {by_key[key].name}: {lr_for[key].name} and {path.name}"
            )
        lr_for[key] = path
    if unmatched:
        hint = ""
        other = re.match(r"^(?P<stem>.+?)[_-]?x(?P<k>\d+)$", unmatched[0].stem.lower())
        if other is not None and other["stem"] in by_key and int(other["k"]) != scale:
            hint = f" (their names say ×{other['k']}: is --scale {other['k']} meant, or another LR folder?)"
        raise DatasetError(
            f"{len(unmatched)} LR image(s) in {lr_dir} have no HR image in {hr_dir}: {_listing(unmatched)}{hint}"
        )
    missing = [path for key, path in by_key.items() if key not in lr_for]
    if missing:
        example = missing[0]
        raise DatasetError(
            f"{len(missing)} HR image(s) in {hr_dir} have no LR image in {lr_dir}: {_listing(missing)} "
            f"(expected e.g. {example.stem}x{scale}{example.suffix} or {example.name})"
        )
    return [Pair(path.stem, path, lr_for[key]) for key, path in by_key.items()]


def _read_pixels(path: Path) -> np.ndarray:
    try:
        loaded = read_image(path)
    except ImageError as exc:
        raise DatasetError(str(exc)) from None
    if loaded.bit_depth != 8:
        raise DatasetError(f"{path}: {loaded.bit_depth}-bit images are not supported for evaluation (8-bit only)")
    return loaded.pixels


def _header_size(path: Path) -> tuple[int, int]:
    """(width, height) as displayed (EXIF orientation applied), from the header only."""
    try:
        with Image.open(path) as im:
            width, height = im.size
            try:
                orientation = int(im.getexif().get(_ORIENTATION_TAG, 1) or 1)
            except Exception:  # noqa: BLE001 - unreadable EXIF: read_image ignores it too
                orientation = 1
    except FileNotFoundError:
        raise DatasetError(f"cannot read {path}: no such file") from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        reason = "not a recognised image format" if isinstance(exc, UnidentifiedImageError) else str(exc)
        raise DatasetError(f"cannot read {path}: {reason}") from None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _check_sizes(pair: Pair, scale: int, hr_size: tuple[int, int], lr_size: tuple[int, int], cropped: bool) -> None:
    """LR × scale must equal the HR cropped to a multiple of the scale (sizes are (W, H))."""
    w, h = hr_size
    cw, ch = w - w % scale, h - h % scale
    lw, lh = lr_size
    if (lw * scale, lh * scale) == (cw, ch):
        return
    hr_text = f"{cw}×{ch}" if cropped or (cw, ch) == (w, h) else f"{w}×{h} ({cw}×{ch} after cropping to a multiple of {scale})"
    hint = ""
    if lw and lh and w % lw == 0 and h % lh == 0 and w // lw == h // lh and w // lw != scale:
        hint = f"; it looks like ×{w // lw}"
    raise DatasetError(
        f"size mismatch for {pair.name}: LR {pair.lr_path.name if pair.lr_path else ''} is {lw}×{lh}, "
        f"×{scale} = {lw * scale}×{lh * scale}, but HR {pair.hr_path.name} is {hr_text}{hint}"
    )
