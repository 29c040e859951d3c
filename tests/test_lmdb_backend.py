"""BasicSR-layout LMDB: writing, reading (RGB order), use as training data, errors."""
from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from litesr.data.lmdb_backend import (
    LmdbReader,
    decode_image_bytes,
    make_lmdb,
    read_meta_info,
    require_lmdb,
)
from litesr.data.dataset import SRTrainDataset
from litesr.data.files import DataError
from litesr.data.image_store import TrainingImages
from litesr.imaging.resize import make_lr
from litesr.imaging.io import read_image


def save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def noise(h: int, w: int, seed: int, channels: int = 3) -> np.ndarray:
    shape = (h, w, channels) if channels > 1 else (h, w)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def png_bytes(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def write_basicsr_lmdb(path: Path, items: dict[str, np.ndarray]) -> Path:
    """What BasicSR's make_lmdb_from_imgs produces, written by hand with lmdb."""
    lmdb = pytest.importorskip("lmdb")
    env = lmdb.open(str(path), map_size=64 << 20)
    lines = []
    with env.begin(write=True) as txn:
        for key, pixels in items.items():
            txn.put(key.encode("ascii"), png_bytes(pixels))
            h, w = pixels.shape[:2]
            c = 1 if pixels.ndim == 2 else pixels.shape[2]
            lines.append(f"{key}.png ({h},{w},{c}) 1\n")
    env.close()
    (path / "meta_info.txt").write_text("".join(lines))
    return path


def test_missing_lmdb_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "lmdb", None)  # makes `import lmdb` raise ImportError
    with pytest.raises(DataError, match=r"install litesr\[lmdb\]"):
        require_lmdb()


def test_meta_info_parsing(tmp_path):
    (tmp_path / "meta_info.txt").write_text(
        "0001_s001.png (480,480,3) 1\nbaboon.v2.png (120,125,3) 1\n\ngray.png (10, 12, 1) 3\n"
    )
    entries = read_meta_info(tmp_path)
    assert [e.key for e in entries] == ["0001_s001", "baboon.v2", "gray"]
    assert entries[0].shape == (480, 480, 3) and entries[2].shape == (10, 12, 1)
    assert entries[2].compress_level == "3"
    (tmp_path / "meta_info.txt").write_text("garbage line\n")
    with pytest.raises(DataError, match="line 1"):
        read_meta_info(tmp_path)


def test_png_values_decode_to_rgb_without_swapping():
    """cv2.imencode writes a standard (RGB) PNG from its BGR array; Pillow reads RGB."""
    red = np.zeros((4, 5, 3), np.uint8)
    red[..., 0] = 255
    decoded = decode_image_bytes(png_bytes(red), "red")
    assert decoded.shape == (4, 5, 3) and (decoded[..., 0] == 255).all() and (decoded[..., 1:] == 0).all()
    gray = noise(6, 7, 0, channels=1)
    np.testing.assert_array_equal(decode_image_bytes(png_bytes(gray), "g"), gray)
    with pytest.raises(DataError, match="cannot decode v1"):
        decode_image_bytes(b"not an image", "v1")


def test_make_lmdb_round_trip(tmp_path):
    pytest.importorskip("lmdb")
    src = tmp_path / "hr"
    save(src / "b.png", noise(20, 30, 1))
    save(src / "a.png", noise(16, 18, 2))
    save(src / "sub" / "g.png", noise(12, 12, 3, channels=1))
    out = make_lmdb(src, tmp_path / "hr.lmdb")
    assert (out / "data.mdb").exists()
    assert (out / "meta_info.txt").read_text().splitlines() == [
        "a.png (16,18,3) 1",
        "b.png (20,30,3) 1",
        "sub/g.png (12,12,1) 1",
    ]
    with LmdbReader(out) as db:
        assert db.keys == ["a", "b", "sub/g"]
        for key, pixels in db:
            np.testing.assert_array_equal(pixels, read_image(src / f"{key}.png").pixels)
    with pytest.raises(DataError, match="already exists"):
        make_lmdb(src, out)
    with pytest.raises(DataError, match=r"must end with \.lmdb"):
        make_lmdb(src, tmp_path / "hr_db")
    assert not list(tmp_path.glob(".*tmp*"))


def test_training_images_from_lmdb_equal_disk(tmp_path):
    pytest.importorskip("lmdb")
    src = tmp_path / "hr"
    for k in range(3):
        save(src / f"{k:03d}.png", noise(24 + 4 * k, 28, k))
    save(src / "gray.png", noise(24, 24, 9, channels=1))
    db = make_lmdb(src, tmp_path / "hr.lmdb")
    disk = TrainingImages(src, progress=False)
    mem = TrainingImages(db, io_backend={"type": "lmdb"}, progress=False)
    assert mem.keys == disk.keys
    for i in range(len(disk)):
        np.testing.assert_array_equal(mem.hr(i), disk.hr(i))
        np.testing.assert_array_equal(mem.lq(i, 4), disk.lq(i, 4))
    item = SRTrainDataset(mem, scales=[4], gt_size=16)[0]
    assert item["lq"].shape == (3, 4, 4)


def test_paired_lmdb_same_keys_and_template(tmp_path):
    hrs = {"0001_s001": noise(32, 40, 1), "0001_s002": noise(36, 40, 2)}
    gt = write_basicsr_lmdb(tmp_path / "gt.lmdb", hrs)
    same = write_basicsr_lmdb(tmp_path / "lq.lmdb", {k: make_lr(v, 4) for k, v in hrs.items()})
    templated = write_basicsr_lmdb(tmp_path / "lq_t.lmdb", {f"{k}x4": make_lr(v, 4) for k, v in hrs.items()})
    for lq_db, tmpl in ((same, "{}"), (same, "{}x4"), (templated, "{}x4")):
        images = TrainingImages(gt, dataroot_lq=lq_db, filename_tmpl=tmpl, io_backend="lmdb", scales=[4], progress=False)
        assert images.keys == list(hrs)
        np.testing.assert_array_equal(images.lq(1, 4), make_lr(hrs["0001_s002"], 4))
    wrong = write_basicsr_lmdb(tmp_path / "wrong.lmdb", {k: make_lr(v, 2) for k, v in hrs.items()})
    with pytest.raises(DataError, match=r"LR .*wrong\.lmdb\[0001_s001\] is 20×16 but HR .* is 40×32"):
        TrainingImages(gt, dataroot_lq=wrong, io_backend="lmdb", scales=[4], progress=False)


def test_lmdb_folder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        TrainingImages(tmp_path / "nope.lmdb", io_backend="lmdb", progress=False)
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match="not an LMDB folder"):
        TrainingImages(tmp_path / "plain", io_backend="lmdb", progress=False)
