"""Training images in memory: the HR images of one or more folders or LMDBs, and their LR.

LR images come either from a paired LR folder/LMDB (BasicSR's ``dataroot_lq`` +
``filename_tmpl``) or are made from the HR with the MATLAB-exact
``imresize(modcrop(HR, s), 1/s)`` -- the same LR the benchmark sets use, so training and
evaluation see one degradation.  Made LR images are cached in memory;
:meth:`TrainingImages.prepare` makes them all up front (the dataset does this by default),
*before* DataLoader workers fork, so every worker shares one copy instead of recomputing
and holding its own.

Every problem is a :class:`~litesr.data.files.DataError` naming the folder or file:
missing folder, folder without images, unreadable image, LR/HR size mismatch.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..imaging.io import ImageError, read_image
from ..imaging.resize import make_lr, modcrop
from .files import DataError, PathLike, as_rgb_uint8, list_image_files, missing_folder_error
from .lmdb_backend import LmdbReader
from .scales import check_scales

__all__ = ["TrainingImages"]


def _as_path_list(value: PathLike | Sequence[PathLike], what: str) -> list[Path]:
    if isinstance(value, (str, os.PathLike)):
        return [Path(value)]
    paths = [Path(v) for v in value]
    if not paths:
        raise DataError(f"{what} is an empty list; give at least one folder")
    return paths



def _backend_name(io_backend: str | Mapping[str, Any]) -> str:
    name = io_backend.get("type", "disk") if isinstance(io_backend, Mapping) else io_backend
    name = str(name).lower()
    if name not in ("disk", "lmdb"):
        raise DataError(f"io_backend must be 'disk' or 'lmdb', got {name!r}")
    return name


def _template(filename_tmpl: str, stem: str) -> str:
    try:
        return filename_tmpl.format(stem)
    except (IndexError, KeyError, ValueError):
        raise DataError(
            f"filename_tmpl {filename_tmpl!r} must contain one '{{}}' for the HR name (e.g. '{{}}x4')"
        ) from None



class TrainingImages:
    """HR training images in memory, with their LR images (given, or made and cached).

    Args:
        dataroot_gt: HR folder, or a list of folders (``.lmdb`` folders with
            ``io_backend='lmdb'``); images are found recursively and sorted by path.
        dataroot_lq: paired LR instead of making it: a folder (or list parallel to
            ``dataroot_gt``) for the single scale in ``scales``, or a mapping
            ``{scale: folder_or_list}``.  ``None``: LR is made with MATLAB-exact bicubic.
        filename_tmpl: LR name from the HR stem, BasicSR style: ``'{}x4'`` pairs
            ``0001.png`` with ``0001x4.png`` (same subfolder, any image suffix).  With LMDB,
            keys equal to the HR keys are accepted too (BasicSR's own convention).
        io_backend: ``'disk'`` or ``'lmdb'`` (or BasicSR's ``{'type': ...}`` dict).
        scales: the scales the LR is needed for; required with ``dataroot_lq``.
        precompute_lr: make the LR of every image for every scale in ``scales`` now
            (otherwise lazily on first use; see the module notes on workers).
        progress: show tqdm progress bars.
        name: label for progress bars and messages.

    Every image is ``H×W×3`` uint8 RGB (gray → RGB, alpha dropped, 16-bit → 8-bit).
    A paired LR must be exactly ``1/s`` of the modcropped HR.

    Cost (measured, T91 + BSD200 = 291 images, 147 MiB with LR at ×2/×3/×4): loading
    ~1.3 s; making the LR about 1–2 s per scale (the banded ``imresize``, no BLAS).
    """

    def __init__(
        self,
        dataroot_gt: PathLike | Sequence[PathLike],
        *,
        dataroot_lq: PathLike | Sequence[PathLike] | Mapping[int, PathLike | Sequence[PathLike]] | None = None,
        filename_tmpl: str = "{}",
        io_backend: str | Mapping[str, Any] = "disk",
        scales: Sequence[int] | None = None,
        precompute_lr: bool = False,
        recursive: bool = True,
        progress: bool = True,
        name: str | None = None,
    ) -> None:
        self.backend = _backend_name(io_backend)
        self.roots = _as_path_list(dataroot_gt, "dataroot_gt")
        self.name = name or "+".join(r.name or str(r) for r in self.roots)
        self.progress = progress
        self.filename_tmpl = filename_tmpl
        _template(filename_tmpl, "x")  # validate early
        self.scales = check_scales(scales) if scales is not None else []
        self.sources: list[str] = []  # file path or "<lmdb>[key]", for messages
        self.keys: list[str] = []  # relative path without suffix, or LMDB key
        self._hr: list[np.ndarray] = []
        self._lr: dict[tuple[int, int], np.ndarray] = {}
        self._root_counts: list[int] = []  # images per dataroot_gt entry, in order
        self.given_scales: frozenset[int] = frozenset()

        if self.backend == "lmdb":
            self._load_lmdb_hr(recursive)
        else:
            self._load_disk_hr(recursive)
        if dataroot_lq is not None:
            self._load_paired(dataroot_lq)
        if precompute_lr and self.scales:
            self.prepare(self.scales)

    # -- loading

    def _load_disk_hr(self, recursive: bool) -> None:
        from tqdm import tqdm

        listing = [
            (root, path)
            for root in self.roots
            for path in list_image_files(root, recursive=recursive, what="dataroot_gt")
        ]
        bar = tqdm(listing, desc=f"loading {self.name}", unit="img", disable=not self.progress, leave=False)
        self._root_counts = [sum(1 for r, _ in listing if r is root) for root in self.roots]
        for root, path in bar:
            self._hr.append(self._read(path))
            self.sources.append(str(path))
            self.keys.append(path.relative_to(root).with_suffix("").as_posix())

    def _load_lmdb_hr(self, recursive: bool) -> None:
        from tqdm import tqdm

        for root in self.roots:
            if not root.exists():
                raise missing_folder_error(root, "dataroot_gt LMDB")
            with LmdbReader(root) as db:
                if not db.keys:
                    raise DataError(f"LMDB {root} has no images")
                self._root_counts.append(len(db.keys))
                bar = tqdm(db.keys, desc=f"loading {root.name}", unit="img", disable=not self.progress, leave=False)
                for key in bar:
                    self._hr.append(as_rgb_uint8(db.read(key)))
                    self.sources.append(f"{root}[{key}]")
                    self.keys.append(key)

    @staticmethod
    def _read(path: Path) -> np.ndarray:
        try:
            return as_rgb_uint8(read_image(path).pixels)
        except ImageError as exc:
            raise DataError(str(exc)) from None

    def _load_paired(self, dataroot_lq: Any) -> None:
        if isinstance(dataroot_lq, Mapping):
            per_scale = {int(s): v for s, v in dataroot_lq.items()}
            check_scales(per_scale, "dataroot_lq scales")
            missing = [s for s in self.scales if s not in per_scale]
            if self.scales and missing:
                raise DataError(f"dataroot_lq has no folder for scale(s) {missing}")
            if not self.scales:
                self.scales = sorted(per_scale)
        else:
            if len(self.scales) != 1:
                raise DataError(
                    "a dataroot_lq folder holds one scale; give exactly one scale "
                    "(or a {scale: folder} mapping for several)"
                )
            per_scale = {self.scales[0]: dataroot_lq}
        for scale, value in per_scale.items():
            lq_roots = _as_path_list(value, "dataroot_lq")
            if len(lq_roots) != len(self.roots):
                raise DataError(
                    f"dataroot_lq has {len(lq_roots)} entries for {len(self.roots)} dataroot_gt entries; "
                    "give one LR folder per HR folder"
                )
            if self.backend == "lmdb":
                self._pair_lmdb(scale, lq_roots)
            else:
                self._pair_disk(scale, lq_roots)
        self.given_scales = frozenset(per_scale)

    def _pair_disk(self, scale: int, lq_roots: list[Path]) -> None:
        index = 0
        for lq_root, n_here in zip(lq_roots, self._root_counts):
            lq_files = list_image_files(lq_root, what="dataroot_lq")
            by_key = {}
            for p in lq_files:
                by_key.setdefault(p.relative_to(lq_root).with_suffix("").as_posix().lower(), p)
            used: set[Path] = set()
            for i in range(index, index + n_here):
                rel = Path(self.keys[i])
                want = (rel.parent / _template(self.filename_tmpl, rel.name)).as_posix()
                lq_path = by_key.get(want.lower())
                if lq_path is None:
                    raise DataError(
                        f"no LR image for {self.sources[i]}: expected {lq_root / want}.* "
                        f"(filename_tmpl {self.filename_tmpl!r})"
                    )
                used.add(lq_path)
                self._set_given(i, scale, self._read(lq_path), str(lq_path))
            extra = [p for p in lq_files if p not in used]
            if extra:
                raise DataError(
                    f"dataroot_lq {lq_root} has {len(extra)} image(s) with no HR partner, e.g. "
                    f"{extra[0].name} (check filename_tmpl {self.filename_tmpl!r})"
                )
            index += n_here

    def _pair_lmdb(self, scale: int, lq_roots: list[Path]) -> None:
        index = 0
        for lq_root, n_here in zip(lq_roots, self._root_counts):
            with LmdbReader(lq_root) as db:
                keys = set(db.keys)
                for i in range(index, index + n_here):
                    templated = _template(self.filename_tmpl, self.keys[i])
                    key = templated if templated in keys else self.keys[i]
                    if key not in keys:
                        raise DataError(f"no LR image for {self.sources[i]} in {lq_root} (tried keys {templated!r}, {self.keys[i]!r})")
                    self._set_given(i, scale, as_rgb_uint8(db.read(key)), f"{lq_root}[{key}]")
            index += n_here

    def _set_given(self, i: int, scale: int, lq: np.ndarray, lq_source: str) -> None:
        hr = self._hr[i]
        h, w = hr.shape[:2]
        hc, wc = h - h % scale, w - w % scale
        if lq.shape[0] * scale != hc or lq.shape[1] * scale != wc:
            raise DataError(
                f"LR {lq_source} is {lq.shape[1]}×{lq.shape[0]} but HR {self.sources[i]} is {w}×{h}: "
                f"×{scale} needs an LR of {wc // scale}×{hc // scale}"
            )
        self._lr[(i, scale)] = lq

    # -- access

    def __len__(self) -> int:
        return len(self._hr)

    def hr(self, i: int) -> np.ndarray:
        """The full HR image ``i`` (shared; do not modify)."""
        return self._hr[i]

    def gt(self, i: int, scale: int) -> np.ndarray:
        """HR image ``i`` modcropped to a multiple of ``scale`` (a view)."""
        return modcrop(self._hr[i], scale)

    def lq(self, i: int, scale: int) -> np.ndarray:
        """LR image ``i`` at ``scale``: the paired file, or made (and cached) from the HR."""
        cached = self._lr.get((i, scale))
        if cached is not None:
            return cached
        if self.given_scales:
            raise DataError(f"no LR images for ×{scale}: dataroot_lq gives only ×{sorted(self.given_scales)}")
        try:
            lr = make_lr(self._hr[i], scale)
        except ValueError as error:
            raise DataError(f"{self.sources[i]}: {error}") from None
        self._lr[(i, scale)] = lr
        return lr

    def lq_shape(self, i: int, scale: int) -> tuple[int, int]:
        """``(h, w)`` of :meth:`lq` without making it."""
        cached = self._lr.get((i, scale))
        if cached is not None:
            return cached.shape[0], cached.shape[1]
        h, w = self._hr[i].shape[:2]
        return h // scale, w // scale

    def prepare(self, scales: Sequence[int], ids: Iterable[int] | None = None) -> None:
        """Make (and cache) the LR of every image (or of ``ids``) for each of ``scales`` now."""
        from tqdm import tqdm

        ids = list(range(len(self))) if ids is None else list(ids)
        todo = [(i, s) for s in check_scales(scales) for i in ids if (i, s) not in self._lr]
        for i, s in tqdm(todo, desc=f"making LR {self.name}", unit="img", disable=not self.progress or not todo, leave=False):
            self.lq(i, s)

    @property
    def nbytes(self) -> int:
        """Memory held by HR and cached LR pixels."""
        return sum(a.nbytes for a in self._hr) + sum(a.nbytes for a in self._lr.values())

    def __repr__(self) -> str:
        return (
            f"TrainingImages({self.name!r}, {len(self)} images, backend={self.backend}, "
            f"LR={'given ' + str(sorted(self.given_scales)) if self.given_scales else 'made'}, "
            f"{self.nbytes / 2**20:.0f} MiB)"
        )
