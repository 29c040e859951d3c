"""Image files on disk (litesr.data.files): the suffix list, listing folders, pixel layout."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from litesr.data.files import IMAGE_SUFFIXES, DataError, as_rgb_uint8, is_image_file, list_image_files
from litesr.errors import LiteSRError


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_suffixes_are_lower_case_with_a_dot():
    assert IMAGE_SUFFIXES >= {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".webp"}
    assert all(s.startswith(".") and s == s.lower() for s in IMAGE_SUFFIXES)


def test_is_image_file_goes_by_the_suffix_in_any_case():
    assert is_image_file("a/b/photo.PNG")
    assert is_image_file(Path("x.JpEg"))
    assert not is_image_file("notes.txt")
    assert not is_image_file("png")  # a name, not a suffix
    assert not is_image_file(Path("folder.d"))


def test_recursive_listing_is_sorted_by_relative_path_and_skips_hidden(tmp_path):
    for rel in ("b.png", "a/z.jpg", "a/c.PNG", ".hidden.png", ".git/x.png", "a/readme.txt"):
        touch(tmp_path / rel)
    found = list_image_files(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a/c.PNG", "a/z.jpg", "b.png"]


def test_flat_listing_ignores_subfolders(tmp_path):
    touch(tmp_path / "top.png")
    touch(tmp_path / "sub" / "deep.png")
    assert list_image_files(tmp_path, recursive=False) == [tmp_path / "top.png"]


def test_listing_errors_name_the_folder_and_the_problem(tmp_path):
    assert issubclass(DataError, LiteSRError)
    with pytest.raises(DataError, match=r"HR folder does not exist: .*nope$"):
        list_image_files(tmp_path / "nope", what="HR")
    with pytest.raises(DataError, match="placeholder"):
        list_image_files(tmp_path / "path_to_your_data", what="dataroot_gt")
    with pytest.raises(DataError, match=r"LR is not a folder: .*f\.png"):
        list_image_files(touch(tmp_path / "f.png"), what="LR")
    empty = tmp_path / "empty"
    touch(empty / "notes.txt")
    with pytest.raises(DataError, match=r"^no HR images in .*empty$"):
        list_image_files(empty, what="HR")
    touch(empty / "X2" / "a.png")
    with pytest.raises(DataError, match=r"holds the folders X2: pass one of them"):
        list_image_files(empty, recursive=False, what="HR")


def test_as_rgb_uint8_gives_one_layout():
    gray = np.arange(6, dtype=np.uint8).reshape(2, 3)
    rgb = as_rgb_uint8(gray)
    assert rgb.shape == (2, 3, 3) and (rgb == gray[..., None]).all()
    assert as_rgb_uint8(gray, keep_gray=True).shape == (2, 3)
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 3] = 255
    assert as_rgb_uint8(rgba).shape == (2, 2, 3) and as_rgb_uint8(rgba).max() == 0
    deep = np.array([[0, 128, 129, 257, 65535]], dtype=np.uint16)  # (v + 128) // 257
    assert as_rgb_uint8(deep, keep_gray=True).tolist() == [[0, 0, 1, 1, 255]]
    with pytest.raises(DataError, match="float32"):
        as_rgb_uint8(np.zeros((2, 2), np.float32))
    with pytest.raises(DataError, match="unsupported image shape"):
        as_rgb_uint8(np.zeros((2, 2, 5), np.uint8))
