"""The validation and test sets of an option file, opened the way BasicSR pairs them.

A ``PairedImageDataset`` pairs each HR file with the LR file named by ``filename_tmpl``
(``'{}x4'``: ``baby.png`` ↔ ``babyx4.png``), from folders or from LMDBs; an
``HRImageDataset`` (or a paired one without ``dataroot_lq``) has its LR made on the fly by
the MATLAB-exact bicubic. Each set is returned as a :class:`~litesr.data.benchmark.BenchmarkSet`,
so validation during training, ``litesr test`` and ``litesr eval`` score through one code
path (:func:`litesr.evaluate.evaluate`).

:func:`open_eval_set` with ``check=True`` reads every pair once and checks LR × scale =
HR, so a wrong folder, template or scale fails when a run starts rather than at its first
validation, hours later.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..data.benchmark import BenchmarkSet, Pair, Sample, open_benchmark
from ..data.files import DataError, list_image_files
from ..data.lmdb_backend import LmdbReader
from ..imaging.resize import make_lr, modcrop
from .options import DatasetOptions

__all__ = ["LmdbBenchmarkSet", "open_eval_set"]


@dataclass(frozen=True)
class LmdbBenchmarkSet(BenchmarkSet):
    """A set stored in BasicSR LMDBs: ``hr_dir``/``lr_dir`` are the LMDB folders, ``keys`` the (HR, LR) keys."""

    keys: tuple[tuple[str, str | None], ...] = ()

    @cached_property
    def _readers(self) -> tuple[LmdbReader, LmdbReader | None]:
        """The LMDBs, opened once per set: opening one re-reads its whole key list."""
        return LmdbReader(self.hr_dir), None if self.lr_dir is None else LmdbReader(self.lr_dir)

    def __getitem__(self, index: int) -> Sample:
        pair = self.pairs[index]
        hr_key, lr_key = self.keys[index]
        hr_reader, lr_reader = self._readers
        hr = modcrop(hr_reader.read(hr_key), self.scale)
        if lr_key is None or lr_reader is None:
            lr = make_lr(hr, self.scale)
        else:
            lr = lr_reader.read(lr_key)
            if (lr.shape[0] * self.scale, lr.shape[1] * self.scale) != hr.shape[:2]:
                raise DataError(f"size mismatch for {pair.name}: LR {self.lr_dir}[{lr_key}] is "
                                f"{lr.shape[1]}×{lr.shape[0]}, ×{self.scale} = {lr.shape[1] * self.scale}×"
                                f"{lr.shape[0] * self.scale}, but HR {self.hr_dir}[{hr_key}] is "
                                f"{hr.shape[1]}×{hr.shape[0]} after cropping to a multiple of {self.scale}")
        return Sample(pair.name, np.ascontiguousarray(hr), np.ascontiguousarray(lr), pair.hr_path, pair.lr_path)


def open_eval_set(options: DatasetOptions, scale: int, *, check: bool = False) -> BenchmarkSet:
    """The set ``options`` describes at ``scale``; ``check`` reads every pair now (start-up check).

    Errors are :class:`DataError` naming the ``datasets`` entry, the folder and the file.
    """
    where = f"datasets.{options.phase} ({options.name})"
    try:
        bench = _open(options, scale)
        if check:
            for index in range(len(bench)):
                bench[index]
    except DataError as error:
        raise DataError(f"{where}: {error}{_scale_hint(error, options, scale)}") from None
    return bench


def _open(options: DatasetOptions, scale: int) -> BenchmarkSet:
    if options.type == "SingleImageDataset" or options.dataroot_gt is None:
        raise DataError("a SingleImageDataset has no ground truth to score against; "
                        "use litesr upscale for LR-only folders")
    if len(options.dataroot_gt) != 1:
        raise DataError(f"a validation or test set takes one dataroot_gt folder, got {len(options.dataroot_gt)}")
    gt = Path(options.dataroot_gt[0])
    lq = Path(options.dataroot_lq[0]) if options.dataroot_lq else None
    if options.io_backend == "lmdb":
        return _open_lmdb(options, gt, lq, scale)
    if lq is None:
        return open_benchmark(gt, scale, make_lr=True, name=options.name)
    return BenchmarkSet(options.name, scale, gt, lq, tuple(_pair_files(options.filename_tmpl, gt, lq)))


def _lr_name(filename_tmpl: str, hr_name: str) -> str:
    try:
        return filename_tmpl.format(hr_name)
    except (IndexError, KeyError, ValueError):
        raise DataError(f"filename_tmpl {filename_tmpl!r} must contain one '{{}}' for the HR name "
                        "(e.g. '{}x4')") from None


def _pair_files(filename_tmpl: str, gt: Path, lq: Path) -> list[Pair]:
    """BasicSR's ``paired_paths_from_folder``: LR name = ``filename_tmpl.format(HR stem)``, any image suffix."""
    hr_files = list_image_files(gt, recursive=False, what="dataroot_gt")
    lr_by_name = {path.stem.lower(): path for path in list_image_files(lq, recursive=False, what="dataroot_lq")}
    pairs, missing = [], []
    for hr in hr_files:
        lr = lr_by_name.pop(_lr_name(filename_tmpl, hr.stem).lower(), None)
        if lr is None:
            missing.append(hr)
        else:
            pairs.append(Pair(hr.stem, hr, lr))
    if missing:
        example = _lr_name(filename_tmpl, missing[0].stem)
        raise DataError(f"{len(missing)} HR image(s) in {gt} have no LR image in {lq}: "
                        f"{', '.join(p.name for p in missing[:3])} (filename_tmpl {filename_tmpl!r} "
                        f"expects e.g. {example}{missing[0].suffix})")
    if lr_by_name:
        extra = sorted(path.name for path in lr_by_name.values())
        raise DataError(f"{len(extra)} LR image(s) in {lq} have no HR image in {gt}: {', '.join(extra[:3])} "
                        f"(check filename_tmpl {filename_tmpl!r})")
    return pairs


def _open_lmdb(options: DatasetOptions, gt: Path, lq: Path | None, scale: int) -> LmdbBenchmarkSet:
    """BasicSR's ``paired_paths_from_lmdb``: the same keys in both LMDBs (templated keys accepted too)."""
    with LmdbReader(gt) as reader:
        hr_keys = list(reader.keys)
    if not hr_keys:
        raise DataError(f"LMDB {gt} has no images")
    lr_keys: list[str | None] = [None] * len(hr_keys)
    if lq is not None:
        with LmdbReader(lq) as reader:
            available = set(reader.keys)
        for index, key in enumerate(hr_keys):
            templated = _lr_name(options.filename_tmpl, key)
            found = templated if templated in available else key if key in available else None
            if found is None:
                raise DataError(f"no LR image for {gt}[{key}] in {lq} (tried keys {templated!r}, {key!r})")
            lr_keys[index] = found
    pairs = tuple(Pair(key, gt / key, None if lr_key is None else lq / lr_key)  # type: ignore[operator]
                  for key, lr_key in zip(hr_keys, lr_keys))
    return LmdbBenchmarkSet(options.name, scale, gt, lq, pairs, keys=tuple(zip(hr_keys, lr_keys)))


def _scale_hint(error: DataError, options: DatasetOptions, scale: int) -> str:
    """A size mismatch in an option file is fixed in the file: say which keys, not a CLI flag."""
    if "size mismatch" not in str(error):
        return ""
    return (f" (this set is scored at ×{scale}: point dataroot_lq at ×{scale} LR images, drop dataroot_lq "
            "to make the LR on the fly, or change the scale)")
