"""Every complete experiment config under ``configs/<method>/`` runs one training step on CPU
(``fast_dev_run``), from a temporary directory so that nothing outside the package is read."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tsgen.cli import main

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*/*.yaml"))


def test_there_are_configs_to_check():
    assert len(CONFIGS) >= 11, CONFIGS


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_config_trains_one_step(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["tsgen"])
    main(
        [
            "fit",
            "--config",
            str(config),
            "--trainer.fast_dev_run",
            "1",
            "--trainer.accelerator",
            "cpu",
            "--trainer.enable_progress_bar",
            "false",
        ]
    )


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
def test_a_config_trains_on_another_series_with_its_own_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``window`` and ``n_features`` are linked from the datamodule into the model and its
    network, so the Stocks config (24 x 6) runs on a 3-feature series with windows of 16."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["tsgen"])
    rng = np.random.default_rng(0)
    np.save(tmp_path / "mine.npy", rng.standard_normal((200, 3)).cumsum(axis=0))
    stocks = next(c for c in CONFIGS if c.name == "stocks.yaml")
    main(
        [
            "fit",
            "--config",
            str(stocks),
            "--data.path",
            "mine.npy",
            "--data.window",
            "16",
            "--trainer.fast_dev_run",
            "1",
            "--trainer.enable_progress_bar",
            "false",
        ]
    )
