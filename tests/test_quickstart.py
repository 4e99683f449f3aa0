"""The README's main job, run as written: its ``tsgen fit`` and ``tsgen predict`` commands on the
quickstart config (from a temporary directory), then the README's Python block that loads the
checkpoints. The samples must match the data's per-feature mean, standard deviation and lag-1
autocorrelation within 20% (issue 3, item 5). About two minutes on 2 CPU cores."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest

from tsgen.cli import main
from tsgen.data import WindowsDataModule

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _main_job() -> list[list[str]]:
    """The ``tsgen`` commands of the README's first bash block, with config paths made
    absolute (the test runs elsewhere)."""
    first_block = re.search(r"```bash\n(.*?)```", README, flags=re.DOTALL).group(1)
    (line,) = [line for line in first_block.splitlines() if "tsgen fit" in line]
    commands = [shlex.split(part) for part in line.split("&&")]
    tsgen_commands = [command[1:] for command in commands if command[0] == "tsgen"]
    for command in tsgen_commands:
        for i, arg in enumerate(command):
            if arg.startswith("configs/"):
                command[i] = str(ROOT / arg)
    return tsgen_commands


def _statistics(windows: np.ndarray) -> dict[str, np.ndarray]:
    """Per-feature mean, standard deviation and lag-1 autocorrelation within windows."""
    centred = windows - windows.mean(axis=1, keepdims=True)
    lag1 = (centred[:, 1:] * centred[:, :-1]).sum(axis=(0, 1)) / (centred**2).sum(axis=(0, 1))
    return {"mean": windows.mean(axis=(0, 1)), "std": windows.std(axis=(0, 1)), "lag1": lag1}


def test_main_job_is_fit_then_predict_on_the_quickstart():
    commands = _main_job()
    assert [command[0] for command in commands] == ["fit", "predict"]


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
def test_main_job_trains_and_writes_samples_like_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["tsgen"])
    for command in _main_job():
        main([*command, "--trainer.enable_progress_bar", "false"])
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

    # The README's Python block, after the imputation quickstart it names.
    config = ROOT / "configs" / "timebridge" / "quickstart_impute.yaml"
    main(["fit", "-c", str(config), "--trainer.enable_progress_bar", "false"])
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", README, re.DOTALL) if "load(" in b]
    exec(compile(block, "README.md[quickstart python block]", "exec"), {})
