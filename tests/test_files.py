"""``tsgen._files.atomic_write``: the new file is whole and on disk before it replaces the old."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tsgen import _files
from tsgen._files import atomic_write


def test_the_data_reach_the_disk_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(_files.os, "fsync", lambda fd: (calls.append("fsync"), fsync(fd))[1])
    monkeypatch.setattr(
        _files.os, "replace", lambda a, b: (calls.append("replace"), replace(a, b))[1]
    )
    target = tmp_path / "out.txt"
    target.write_text("old")
    atomic_write(target, lambda handle: handle.write("new"), text=True)
    assert calls == ["fsync", "replace"]
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def fail(handle: object) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, fail)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
