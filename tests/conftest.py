"""Shared pytest configuration: tests marked ``gpu`` are skipped where CUDA is unavailable, and
every test runs from a temporary directory."""

from __future__ import annotations

import pytest
import torch


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items or torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False)")
    for item in gpu_items:
        item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _run_from_a_temporary_directory(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test runs from an empty directory: a relative path cannot reach the repository's
    neighbours (``../shared``), so tests read only what the package ships or generates."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
