"""BasicSR's LMDB image store: read it (for training) and write it (for tests and tools).

Layout, as made by BasicSR's ``scripts/data_preparation/create_lmdb.py``
(``basicsr.utils.lmdb_util.make_lmdb_from_imgs``)::

    DIV2K_train_HR_sub.lmdb/
        data.mdb        the LMDB database: key (ASCII/UTF-8 image name without extension)
                        → value (the image encoded as PNG)
        lock.mdb
        meta_info.txt   one line per image, in order: ``<key>.png (<h>,<w>,<c>) <level>``
                        e.g. ``0001_s001.png (480,480,3) 1`` (level = PNG compression)

Paired LR/HR LMDBs use the *same* keys in both databases (BasicSR's sub-image script strips
the ``x4`` from LR names); :class:`~litesr.data.image_store.TrainingImages` also accepts LR keys
made with ``filename_tmpl``.

**Channel order.**  BasicSR reads images with ``cv2.imread`` (BGR in memory) and stores
``cv2.imencode('.png', img)``.  OpenCV's codecs always treat *in-memory* arrays as BGR and
files as standard: its PNG encoder calls libpng's ``png_set_bgr`` so the BGR array is
written as a normal RGB PNG (and its decoder swaps back to BGR on reading, which is why
BasicSR then calls ``img2tensor(..., bgr2rgb=True)``).  So every stored value is an
ordinary PNG identical in colour to the source file, and decoding it with Pillow, as done
here, gives RGB directly: no channel swap is needed, and adding one would be a bug.
(An LMDB whose writer fed a BGR array to a non-OpenCV encoder would have swapped colours;
that cannot be detected from the bytes and is not BasicSR's format.)

The ``lmdb`` package is optional (``pip install 'litesr[lmdb]'``); it is imported only
when an LMDB is actually opened or written.
"""
from __future__ import annotations

import io
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image

from ..imaging.io import ImageError, read_image
from .files import DataError, as_rgb_uint8, list_image_files

__all__ = [
    "LMDB_INSTALL_HINT",
    "LmdbEntry",
    "LmdbReader",
    "decode_image_bytes",
    "is_lmdb_folder",
    "make_lmdb",
    "read_meta_info",
    "require_lmdb",
]

LMDB_INSTALL_HINT = "install litesr[lmdb] (pip install 'litesr[lmdb]', or pip install lmdb)"

_META_LINE = re.compile(r"^(?P<name>.+?)\s+\((?P<shape>\s*\d+(?:\s*,\s*\d+)*\s*,?\s*)\)(?:\s+(?P<level>\S+))?\s*$")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def require_lmdb() -> ModuleType:
    """The ``lmdb`` module, or a :class:`DataError` telling how to install it."""
    try:
        import lmdb
    except ImportError:
        raise DataError(f"LMDB datasets need the lmdb package: {LMDB_INSTALL_HINT}") from None
    return lmdb


def is_lmdb_folder(path: str | os.PathLike[str]) -> bool:
    """True for a folder holding an LMDB database (``data.mdb``)."""
    return (Path(path) / "data.mdb").is_file()


@dataclass(frozen=True)
class LmdbEntry:
    """One ``meta_info.txt`` line: the LMDB key, its shape ``(h, w, c)`` and PNG level."""

    key: str
    shape: tuple[int, ...]
    compress_level: str | None = None


def read_meta_info(folder: str | os.PathLike[str]) -> list[LmdbEntry]:
    """Parse ``<folder>/meta_info.txt`` (BasicSR format), in file order.

    The key is the name with its extension removed (``0001_s001.png`` → ``0001_s001``;
    unlike BasicSR's ``split('.')[0]`` a key may itself contain dots).
    """
    path = Path(folder) / "meta_info.txt"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"LMDB folder {folder} has no meta_info.txt") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _META_LINE.match(line.strip())
        if match is None:
            raise DataError(
                f"{path} line {number} is not '<name>.png (h,w,c) <level>': {line.strip()[:80]!r}"
            )
        name = match["name"]
        key = name.rsplit(".", 1)[0] if "." in name and not name.startswith(".") else name
        shape = tuple(int(v) for v in match["shape"].replace(" ", "").strip(",").split(","))
        entries.append(LmdbEntry(key, shape, match["level"]))
    return entries


def decode_image_bytes(data: bytes, where: str) -> np.ndarray:
    """Decode an encoded image (PNG from BasicSR; any Pillow format works) to a numpy array.

    Returns ``H×W`` gray or ``H×W×3`` RGB, ``uint8`` (``uint16`` for 16-bit PNGs); alpha is
    dropped.  No BGR→RGB swap: see the module notes.  ``where`` names the value in errors.
    """
    if (
        len(data) > 26
        and data.startswith(_PNG_SIGNATURE)
        and data[12:16] == b"IHDR"
        and data[24] == 16
        and data[25] in (2, 6)
    ):
        from ..imaging.png16 import Png16Error, decode_png16

        try:
            pixels, _alpha = decode_png16(data)
        except Png16Error as exc:
            raise DataError(f"cannot decode {where}: {exc}") from None
        return pixels
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            mode = im.mode
            if mode.startswith("I;16") or mode == "I":
                return np.asarray(im).astype(np.uint16)
            if mode in ("1", "L", "LA", "La"):
                im = im.convert("L")
            elif mode != "RGB":
                im = im.convert("RGB")
            return np.asarray(im).copy()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DataError(f"cannot decode {where}: not a readable image ({exc})") from None


class LmdbReader:
    """Read-only access to one BasicSR LMDB folder; use as a context manager.

    ``keys`` is the ``meta_info.txt`` order (or the database's key order when that file is
    missing).  The environment is opened like BasicSR does (no lock, no readahead).  Do
    not share an open reader across ``fork``: open one per process (LiteSR's training
    data reads everything once in the main process and closes the reader).
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        if not self.folder.exists():
            raise DataError(f"LMDB folder does not exist: {self.folder}")
        if not is_lmdb_folder(self.folder):
            raise DataError(f"{self.folder} is not an LMDB folder (no data.mdb in it)")
        lmdb = require_lmdb()
        try:
            self._env = lmdb.open(
                str(self.folder), readonly=True, lock=False, readahead=False, meminit=False
            )
        except lmdb.Error as exc:
            raise DataError(f"cannot open LMDB {self.folder}: {exc}") from None
        self._lmdb = lmdb
        if (self.folder / "meta_info.txt").exists():
            self.entries = read_meta_info(self.folder)
        else:
            with self._env.begin() as txn:
                self.entries = [
                    LmdbEntry(k.decode("utf-8", "replace"), ()) for k in txn.cursor().iternext(values=False)
                ]
        self.keys = [e.key for e in self.entries]

    def __enter__(self) -> LmdbReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._env.close()

    def __len__(self) -> int:
        return len(self.keys)

    def get_bytes(self, key: str) -> bytes:
        """The raw stored value of ``key``."""
        try:
            with self._env.begin(buffers=False) as txn:
                value = txn.get(key.encode("utf-8"))
        except self._lmdb.Error as exc:
            raise DataError(f"cannot read key {key!r} from {self.folder}: {exc}") from None
        if value is None:
            raise DataError(f"key {key!r} (listed in meta_info.txt) is missing from {self.folder}")
        return bytes(value)

    def read(self, key: str) -> np.ndarray:
        """Decoded image for ``key``: ``H×W`` gray or ``H×W×3`` RGB (see :func:`decode_image_bytes`)."""
        return decode_image_bytes(self.get_bytes(key), f"{self.folder}[{key}]")

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        for key in self.keys:
            yield key, self.read(key)


def make_lmdb(
    folder: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    compress_level: int = 1,
    recursive: bool = True,
    progress: bool = False,
) -> Path:
    """Write the images of ``folder`` as a BasicSR-layout LMDB at ``out_path`` (``*.lmdb``).

    Keys are the image paths relative to ``folder`` without extension (``/``-separated for
    subfolders), sorted.  Each image is read with :func:`litesr.imaging.io.read_image`
    (EXIF orientation applied), reduced to 8-bit gray or RGB (alpha dropped) and stored as a
    PNG at ``compress_level``; ``meta_info.txt`` gets ``<key>.png (h,w,c) <level>`` lines.
    The database is built in a temporary sibling folder and renamed into place, so a
    failed run leaves nothing behind.  An existing ``out_path`` is an error.
    """
    lmdb = require_lmdb()
    src = Path(folder)
    out = Path(out_path)
    if out.suffix != ".lmdb":
        raise DataError(f"the LMDB path must end with .lmdb (BasicSR requires it), got {out}")
    if out.exists():
        raise DataError(f"{out} already exists; remove it first or choose another path")
    if not 0 <= compress_level <= 9:
        raise ValueError(f"compress_level must be 0..9, got {compress_level}")
    files = list_image_files(src, recursive=recursive, what="image folder")

    # map_size is address space, not disk use on Linux/macOS; size it from the headers so it
    # is also right where it is preallocated (Windows): raw pixels + slack per value.
    raw = 0
    for path in files:
        try:
            with Image.open(path) as im:
                raw += im.size[0] * im.size[1] * max(3, len(im.getbands()))
        except (OSError, SyntaxError, ValueError) as exc:
            raise DataError(f"cannot read {path}: {exc}") from None
    map_size = 2 * raw + 16 * 1024 * len(files) + (64 << 20)

    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    env = lmdb.open(str(tmp), map_size=map_size)
    try:
        lines = []
        try:
            from tqdm import tqdm

            it = tqdm(files, desc=f"writing {out.name}", unit="img", disable=not progress)
            with env.begin(write=True) as txn:
                for path in it:
                    key = path.relative_to(src).with_suffix("").as_posix()
                    try:
                        pixels = read_image(path).pixels
                    except ImageError as exc:
                        raise DataError(str(exc)) from None
                    pixels = as_rgb_uint8(pixels, keep_gray=True)
                    buf = io.BytesIO()
                    Image.fromarray(pixels).save(buf, format="PNG", compress_level=compress_level)
                    txn.put(key.encode("utf-8"), buf.getvalue())
                    h, w = pixels.shape[:2]
                    c = 1 if pixels.ndim == 2 else pixels.shape[2]
                    lines.append(f"{key}.png ({h},{w},{c}) {compress_level}\n")
        finally:
            env.close()
        (tmp / "meta_info.txt").write_text("".join(lines), encoding="utf-8")
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
