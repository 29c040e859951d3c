"""Bare set names (``Set5``) resolved through the data directory ($LITESR_DATA)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from litesr.data.benchmark import open_benchmark
from litesr.data.data_dir import DATA_DIR_ENV, data_dir, is_bare_name, resolve_data_path
from litesr.data.files import DataError


def tiny_set(root: Path) -> Path:
    """An EDSR-layout set of one 8×8 HR image and its ×2 LR."""
    (root / "HR").mkdir(parents=True)
    (root / "LR_bicubic" / "X2").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "HR" / "a.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "LR_bicubic" / "X2" / "ax2.png")
    return root


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    """A data directory named by LITESR_DATA holding ``Set5``; the cwd is elsewhere."""
    base = tmp_path / "store"
    tiny_set(base / "Set5")
    monkeypatch.setenv(DATA_DIR_ENV, str(base))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return base


def test_data_dir_is_the_env_var_or_the_cache_default(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.setenv(DATA_DIR_ENV, "")
    assert data_dir() == Path.home() / ".cache" / "litesr" / "data"
    monkeypatch.delenv(DATA_DIR_ENV)
    assert data_dir() == Path.home() / ".cache" / "litesr" / "data"


def test_bare_names():
    assert is_bare_name("Set5") and is_bare_name("B100")
    for not_bare in ("data/Set5", "./Set5", "C:\\data\\Set5", ".", "..", "~", "~/Set5", ""):
        assert not is_bare_name(not_bare), not_bare


def test_a_name_is_found_in_the_data_directory(store):
    assert resolve_data_path("Set5") == store / "Set5"
    bench = open_benchmark("Set5", 2)
    assert bench.name == "Set5" and len(bench) == 1 and bench.lr_origin == "given"


def test_the_name_matches_folders_case_insensitively(store):
    assert resolve_data_path("set5") == store / "Set5"
    assert open_benchmark("SET5", 2).name == "Set5"


def test_a_folder_here_wins_over_the_data_directory(store):
    local = tiny_set(Path("Set5"))
    assert resolve_data_path("Set5") == local
    assert open_benchmark("Set5", 2).hr_dir == local / "HR"


def test_paths_are_never_looked_up(store):
    assert resolve_data_path("sub/Set5") == Path("sub/Set5")
    with pytest.raises(DataError, match=r"benchmark folder sub.Set5 does not exist$"):
        open_benchmark("sub/Set5", 2)


def test_a_missing_name_says_where_it_looked_and_how_to_get_it(store):
    with pytest.raises(DataError) as info:
        open_benchmark("Urban100", 2)
    message = str(info.value)
    assert "'Urban100' not found" in message
    assert str(Path.cwd()) in message
    assert str(store) in message and f"from {DATA_DIR_ENV}" in message
    assert str(store / "Urban100") in message
    assert "docs/data.md" in message
    assert "\n" not in message


def test_a_missing_data_directory_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "absent"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"absent \(from LITESR_DATA, which does not exist\)"):
        resolve_data_path("Set14")


def test_an_ambiguous_case_insensitive_match_is_an_error(store):
    (store / "SET14").mkdir()
    (store / "set14").mkdir()
    with pytest.raises(DataError, match=r"'Set14' is ambiguous .*SET14, set14"):
        resolve_data_path("Set14")
