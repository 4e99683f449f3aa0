"""Every test under tests/data runs from its own temporary directory, so relative paths can only
reach files the test wrote (nothing under ../shared)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
