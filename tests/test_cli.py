"""Tests for the ``tsgen`` command line (tsgen/cli.py, tsgen/__main__.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tsgen.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide pytest's arguments: LightningCLI warns when both ``args`` and ``sys.argv`` have some."""
    monkeypatch.setattr(sys, "argv", ["tsgen"])


@pytest.mark.usefixtures("clean_argv")
def test_fit_help_lists_model_and_data(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert "--model" in help_text
    assert "--data" in help_text


def test_python_dash_m_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tsgen", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "fit" in result.stdout


def test_import_tsgen_does_not_import_lightning() -> None:
    code = "import sys, tsgen; assert 'lightning' not in sys.modules, 'lightning imported'"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.usefixtures("clean_argv")
@pytest.mark.filterwarnings("ignore:.*does not have many workers:UserWarning")
def test_fit_twice_into_same_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = [
        "fit",
        "--model=cli_toy.ToyModel",
        "--data=cli_toy.ToyData",
        "--seed_everything=0",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.max_steps=2",
        "--trainer.log_every_n_steps=1",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    main(args)
    main(args)  # a re-run into the same directory must not fail on the saved config

    run_dirs = sorted((tmp_path / "lightning_logs").glob("version_*"))
    assert [d.name for d in run_dirs] == ["version_0", "version_1"]
    for run_dir in run_dirs:
        assert (run_dir / "config.yaml").is_file()
        metrics = (run_dir / "metrics.csv").read_text()
        assert "train_loss" in metrics.splitlines()[0]
        assert len(metrics.splitlines()) >= 2
