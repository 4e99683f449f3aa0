"""The README's main job: ``tsgen fit`` on the quickstart config, then ``tsgen predict`` into a
directory. The samples must match the data's per-feature mean, standard deviation and lag-1
autocorrelation within 20% (issue 3, item 5). About a minute on 2 CPU cores."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tsgen.cli import main
from tsgen.data import WindowsDataModule

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "timebridge" / "quickstart.yaml"


def _statistics(windows: np.ndarray) -> dict[str, np.ndarray]:
    """Per-feature mean, standard deviation and lag-1 autocorrelation within windows."""
    centred = windows - windows.mean(axis=1, keepdims=True)
    lag1 = (centred[:, 1:] * centred[:, :-1]).sum(axis=(0, 1)) / (centred**2).sum(axis=(0, 1))
    return {"mean": windows.mean(axis=(0, 1)), "std": windows.std(axis=(0, 1)), "lag1": lag1}


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
def test_quickstart_trains_and_writes_samples_like_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["tsgen"])
    main(["fit", "--config", str(CONFIG), "--trainer.enable_progress_bar", "false"])
    checkpoint = tmp_path / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file()
    main(
        [
            "predict",
            "--config",
            str(CONFIG),
            "--ckpt_path",
            str(checkpoint),
            "--output",
            "samples",
            "--trainer.enable_progress_bar",
            "false",
        ]
    )
    samples = np.load(tmp_path / "samples" / "samples.npy")
    assert samples.shape == (1000, 24, 5)
    np.testing.assert_array_equal(np.load(tmp_path / "samples" / "index.npy"), np.arange(1000))
    assert (tmp_path / "samples" / "samples.csv").is_file()
    assert not list((tmp_path / "samples").glob("shard-*"))

    real = WindowsDataModule(dataset="sines").train_split.raw.numpy()
    expected, got = _statistics(real), _statistics(samples)
    for name in expected:
        relative = np.abs(got[name] - expected[name]) / np.abs(expected[name])
        assert (relative < 0.2).all(), (name, relative)
