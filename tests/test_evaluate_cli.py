"""``tsgen evaluate`` on a checkpoint and on files of samples."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from test_cli import TINY_TIMEBRIDGE

from tsgen.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:.*not comparable with the published protocol")

QUICK = ["--iterations", "context_fid=2", "discriminative=3", "predictive=3"]


@pytest.fixture
def clean_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["tsgen"])


def test_evaluate_npy_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    np.save("real.npy", rng.standard_normal((40, 10, 2)).cumsum(axis=1))
    np.save("fake.npy", rng.standard_normal((30, 10, 2)).cumsum(axis=1))
    main(["evaluate", "fake.npy", "--real", "real.npy", "--repeats", "2", "--device", "cpu",
          "--metrics", "discriminative", "acf", "--no_progress", *QUICK[:1], QUICK[2]])  # fmt: skip
    out = capsys.readouterr().out
    assert "Discriminative" in out and "ACF distance" in out
    data = json.loads(Path("evaluation.json").read_text())
    assert list(data["results"]) == ["discriminative", "acf"]
    assert data["n_real"] == 40 and data["n_fake"] == 30
    assert data["metadata"]["source"] == "fake.npy"


@pytest.mark.usefixtures("clean_argv")
@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
def test_evaluate_checkpoint_against_its_training_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    series = np.random.default_rng(0).standard_normal((60, 2)).cumsum(axis=0)
    np.save("series.npy", series)
    Path("tiny.yaml").write_text(TINY_TIMEBRIDGE)
    main(["fit", "-c", "tiny.yaml"])
    checkpoint = "logs/tiny/checkpoints/last.ckpt"
    capsys.readouterr()
    main(["evaluate", checkpoint, "--repeats", "2", "--device", "cpu", "--no_progress",
          "--output", "eval/report.json", *QUICK])  # fmt: skip
    out = capsys.readouterr().out
    for label in ("Context-FID", "Correlational", "Discriminative", "Predictive"):
        assert label in out
    data = json.loads(Path("eval/report.json").read_text())
    # The tiny datamodule windows 60 rows by 8 with stride 1: 53 training windows, as many
    # generated.
    assert data["n_real"] == 53 and data["n_fake"] == 53
    assert data["metadata"]["num_samples"] == 53
    assert "sampling" not in data["metadata"]
    main(["evaluate", checkpoint, "--repeats", "2", "--device", "cpu", "--no_progress",
          "--metrics", "acf", "--output", "eval/fine.json",
          "--sampling", "n_intervals=5", "sampler=ode", "sample_t_min=1e-5"])  # fmt: skip
    fine = json.loads(Path("eval/fine.json").read_text())
    assert fine["metadata"]["sampling"] == {
        "n_intervals": 5,
        "sampler": "ode",
        "sample_t_min": 1e-5,
    }
    with pytest.raises(ValueError, match="'steps' is not a sampling option"):
        main(["evaluate", checkpoint, "--sampling", "steps=5"])
    with pytest.raises(ValueError, match="churn must be a number"):
        main(["evaluate", checkpoint, "--sampling", "churn=2"])
    with pytest.raises(ValueError, match="--num_samples must be at least 1; got 0"):
        main(["evaluate", checkpoint, "--num_samples", "0"])


def test_evaluate_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    np.save("fake.npy", np.zeros((4, 6, 2)))
    with pytest.raises(ValueError, match="--real is needed"):
        main(["evaluate", "fake.npy"])
    with pytest.raises(FileNotFoundError, match="neither a file nor a built-in dataset"):
        main(["evaluate", "fake.npy", "--real", "nowhere.npy"])
    with pytest.raises(FileNotFoundError, match="no such file"):
        main(["evaluate", "missing.ckpt"])
    with pytest.raises(ValueError, match="NAME=N pairs"):
        main(["evaluate", "fake.npy", "--real", "fake.npy", "--iterations", "predictive"])
    with pytest.raises(ValueError, match="NAME=VALUE pairs"):
        main(["evaluate", "fake.npy", "--real", "fake.npy", "--sampling", "n_intervals"])
    with pytest.raises(ValueError, match="--sampling needs a checkpoint"):
        main(["evaluate", "fake.npy", "--real", "fake.npy", "--sampling", "n_intervals=9"])


def test_evaluate_refuses_incomplete_real_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    real = np.zeros((4, 6, 2))
    real[1, 2, 0] = np.nan
    np.save("real.npy", real)
    np.save("fake.npy", np.zeros((4, 6, 2)))
    with pytest.raises(ValueError, match=r"missing values \(NaN\) in 1 of 4 windows"):
        main(["evaluate", "fake.npy", "--real", "real.npy"])


def test_plots_without_matplotlib_fail_before_the_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    monkeypatch.chdir(tmp_path)
    np.save("fake.npy", np.zeros((4, 6, 2)))
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "matplotlib" else find_spec(name, *args),
    )
    with pytest.raises(ImportError, match="--plots needs matplotlib"):
        main(["evaluate", "fake.npy", "--real", "fake.npy", "--plots", "eval"])
    assert not Path("evaluation.json").exists()


@pytest.mark.parametrize(
    ("real", "flag", "own_units"),
    [
        ("sines", None, True),  # the papers score Sines as they are
        ("sines", "--rescale", False),
        ("stocks", None, False),
        ("real.npy", "--scaled", True),  # a user's windows already in [0, 1]
        ("real.npy", None, False),  # a user's windows: rescaled unless told
    ],
)
def test_evaluate_scores_sines_in_its_own_units(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, real: str, flag: str | None, own_units: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    features = {"sines": 5, "stocks": 6, "real.npy": 6}[real]
    rng = np.random.default_rng(0)
    np.save("real.npy", rng.uniform(size=(20, 8, 6)))
    np.save("fake.npy", rng.uniform(0.5, 1.0, size=(30, 8, features)))
    main(["evaluate", "fake.npy", "--real", real, "--window", "8", "--metrics", "acf",
          "--repeats", "2", "--no_progress", *([flag] if flag else [])])  # fmt: skip
    scaling = json.loads(Path("evaluation.json").read_text())["scaling"]
    assert scaling == ("already in [0, 1]" if own_units else "scaled by the real windows' min-max")


@pytest.mark.usefixtures("clean_argv")
def test_scaled_is_refused_for_windows_outside_the_unit_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    np.save("fake.npy", np.random.default_rng(0).uniform(size=(30, 8, 6)))
    # Stocks' prices and volumes in their own units: not in [0, 1], whatever the flag says.
    with pytest.raises(ValueError, match=r"scaled=True says real is already in \[0, 1\]"):
        main(["evaluate", "fake.npy", "--real", "stocks", "--window", "8", "--metrics", "acf",
              "--repeats", "2", "--no_progress", "--scaled"])  # fmt: skip


@pytest.mark.parametrize(
    ("hparams", "dataset"),
    [({"dataset": "sines", "path": None}, "sines"), ({"dataset": "sines", "path": "my.csv"}, None)],
)
def test_a_checkpoints_dataset_is_its_builtin_name_or_none_for_a_users_file(
    hparams: dict, dataset: str | None
) -> None:
    from tsgen.metrics.command import _training_windows

    raw = np.zeros((3, 8, 5))
    datamodule = SimpleNamespace(
        hparams=hparams, train_split=SimpleNamespace(raw=SimpleNamespace(numpy=lambda: raw))
    )
    windows, name = _training_windows(datamodule)
    assert windows is raw and name == dataset
