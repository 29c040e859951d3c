"""Tests for litesr.imaging.atomic: output files appear complete or not at all."""
from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import pytest

from litesr.errors import LiteSRError
from litesr.imaging import atomic
from litesr.imaging.atomic import WriteError, atomic_write


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def writes(data: bytes):
    def write(fh: BinaryIO) -> None:
        fh.write(data)

    return write


def test_atomic_write_success_leaves_only_the_target(tmp_path: Path) -> None:
    (tmp_path / "out.png").write_bytes(b"old")
    atomic_write(tmp_path / "out.png", writes(b"new"))
    assert listing(tmp_path) == ["out.png"]
    assert (tmp_path / "out.png").read_bytes() == b"new"


def test_new_file_gets_normal_permissions(tmp_path: Path) -> None:
    atomic_write(tmp_path / "out.png", writes(b"x"))
    mask = os.umask(0o022)
    os.umask(mask)
    assert (tmp_path / "out.png").stat().st_mode & 0o777 == 0o666 & ~mask


def test_replaced_file_keeps_its_permissions(tmp_path: Path) -> None:
    (tmp_path / "out.json").write_bytes(b"old")
    (tmp_path / "out.json").chmod(0o640)
    atomic_write(tmp_path / "out.json", writes(b"new"))
    assert (tmp_path / "out.json").stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("exc", [KeyboardInterrupt, OSError(28, "No space left on device")])
def test_failed_write_leaves_no_target_and_no_temp(tmp_path: Path, exc) -> None:
    seen: list[list[str]] = []

    def failing_write(fh: BinaryIO) -> None:
        fh.write(b"partial")
        seen.append(listing(tmp_path))  # the temp file exists while writing
        raise exc

    expected = KeyboardInterrupt if exc is KeyboardInterrupt else WriteError
    with pytest.raises(expected) as info:
        atomic_write(tmp_path / "out.png", failing_write)
    assert listing(tmp_path) == []
    [[temp_name]] = seen
    assert temp_name.startswith(".out.png.") and temp_name.endswith(".tmp")
    if expected is WriteError:
        assert str(info.value) == f"cannot write {tmp_path / 'out.png'}: no space left on device"
        assert info.value.__cause__ is exc


def test_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    (tmp_path / "out.png").write_bytes(b"previous result")

    def failing_write(fh: BinaryIO) -> None:
        fh.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "out.png", failing_write)
    assert listing(tmp_path) == ["out.png"]
    assert (tmp_path / "out.png").read_bytes() == b"previous result"


def test_other_exceptions_from_write_propagate_unchanged(tmp_path: Path) -> None:
    def failing_write(fh: BinaryIO) -> None:
        raise ValueError("bad data")

    with pytest.raises(ValueError, match="bad data"):
        atomic_write(tmp_path / "out.csv", failing_write)
    assert listing(tmp_path) == []


def test_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(WriteError, match=r"cannot write .*out\.json: the folder .*missing does not exist$"):
        atomic_write(tmp_path / "missing" / "out.json", writes(b"{}"))
    assert listing(tmp_path) == []


def test_permission_error_is_reported_in_plain_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", denied)  # what a read-only directory gives
    with pytest.raises(WriteError, match=r"cannot write .*out\.png: permission denied$"):
        atomic_write(tmp_path / "out.png", writes(b"x"))


def test_write_error_is_a_one_line_litesr_error() -> None:
    assert issubclass(WriteError, LiteSRError)


def test_no_replace_never_clobbers_a_file_that_appeared_meanwhile(tmp_path: Path) -> None:
    target = tmp_path / "out.png"

    def write_while_another_run_finishes(fh: BinaryIO) -> None:
        target.write_bytes(b"theirs")  # a concurrent run publishes first
        fh.write(b"ours")

    with pytest.raises(atomic.OutputExistsError, match="created meanwhile"):
        atomic_write(target, write_while_another_run_finishes, replace=False)
    assert target.read_bytes() == b"theirs"
    assert listing(tmp_path) == ["out.png"]
    atomic_write(tmp_path / "new.png", writes(b"fresh"), replace=False)
    assert (tmp_path / "new.png").read_bytes() == b"fresh"


def test_stale_temp_files_of_a_killed_run_are_cleaned_but_fresh_and_foreign_ones_kept(tmp_path: Path) -> None:
    stale = tmp_path / ".out.png.k3j2h1ab.tmp"
    fresh = tmp_path / ".out.png.zz99yy88.tmp"
    foreign = tmp_path / ".out.png.notes.tmp.bak"
    other = tmp_path / ".other.png.k3j2h1ab.tmp"
    for path in (stale, fresh, foreign, other):
        path.write_bytes(b"debris")
    old = os.path.getmtime(stale) - atomic.STALE_TEMP_SECONDS - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    atomic_write(tmp_path / "out.png", writes(b"new"))
    assert listing(tmp_path) == sorted([fresh.name, foreign.name, other.name, "out.png"])
