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


TINY_TIMEBRIDGE = """
trainer:
  max_steps: 2
  enable_progress_bar: false
  limit_val_batches: 0
  logger:
    class_path: lightning.pytorch.loggers.CSVLogger
    init_args: {save_dir: ., name: logs, version: tiny}
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {save_last: true, save_top_k: 0, every_n_train_steps: 1}
model:
  class_path: tsgen.models.TimeBridge
  init_args:
    network:
      class_path: tsgen.nn.TrendSeasonTransformer
      init_args: {d_model: 8, n_heads: 2, encoder_layers: 1, decoder_layers: 1}
    prior: {class_path: tsgen.priors.NormalPrior}
    n_intervals: 3
    num_samples: 7
data:
  class_path: tsgen.data.WindowsDataModule
  init_args: {path: series.npy, window: 8, batch_size: 8}
"""


@pytest.mark.usefixtures("clean_argv")
@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
def test_predict_arguments_win_over_the_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tsgen predict --ckpt_path ... --model.num_samples 5`` writes 5 samples, although the
    checkpoint's hyper-parameters say 7 (Lightning alone would use the checkpoint's); so does
    a value equal to the class's default."""
    import numpy as np

    monkeypatch.chdir(tmp_path)
    np.save("series.npy", np.random.default_rng(0).standard_normal((60, 2)).cumsum(axis=0))
    (tmp_path / "tiny.yaml").write_text(TINY_TIMEBRIDGE)
    main(["fit", "-c", "tiny.yaml"])
    checkpoint = "logs/tiny/checkpoints/last.ckpt"
    main(["predict", "-c", "tiny.yaml", "--ckpt_path", checkpoint, "--output", "seven"])
    assert np.load("seven/samples.npy").shape == (7, 8, 2)
    five = ["--model.num_samples", "5", "--output", "five"]
    main(["predict", "-c", "tiny.yaml", "--ckpt_path", checkpoint, *five])
    assert np.load("five/samples.npy").shape == (5, 8, 2)
    # Naming the class's default (1000) counts too: the checkpoint's 7 must not win.
    default = ["--model.num_samples", "1000", "--output", "default"]
    main(["predict", "-c", "tiny.yaml", "--ckpt_path", checkpoint, *default])
    assert np.load("default/samples.npy").shape == (1000, 8, 2)


@pytest.mark.usefixtures("clean_argv")
@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
def test_the_models_and_the_datas_seeds_may_differ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model's seed (training noise) and the data's (shuffle order) are separate choices:
    both reach the run's hparams.yaml and the checkpoint, neither overwriting the other."""
    import numpy as np
    import torch
    import yaml

    monkeypatch.chdir(tmp_path)
    np.save("series.npy", np.random.default_rng(0).standard_normal((60, 2)).cumsum(axis=0))
    (tmp_path / "tiny.yaml").write_text(TINY_TIMEBRIDGE)
    main(["fit", "-c", "tiny.yaml", "--model.init_args.seed", "1", "--data.init_args.seed", "2"])
    hparams = yaml.safe_load(Path("logs/tiny/hparams.yaml").read_text())
    assert hparams["seed"] == 1
    assert hparams["data"]["seed"] == 2 and hparams["data"]["window"] == 8
    checkpoint = torch.load("logs/tiny/checkpoints/last.ckpt", weights_only=False)
    assert checkpoint["hyper_parameters"]["seed"] == 1
    assert checkpoint["datamodule_hyper_parameters"]["seed"] == 2
    # Turning Lightning's hyper-parameter logging off turns the data's off too.
    quiet = ["--trainer.enable_autolog_hparams", "false", "--trainer.logger.init_args.version", "q"]
    main(["fit", "-c", "tiny.yaml", *quiet])
    quiet_hparams = Path("logs/q/hparams.yaml")
    assert not quiet_hparams.exists() or "data" not in yaml.safe_load(quiet_hparams.read_text())


def test_release_process_group_destroys_the_group_a_ddp_run_leaves(tmp_path: Path) -> None:
    """Without it gloo's threads can abort the process at exit (tests/test_ddp.py runs it on
    two ranks); with no group it does nothing."""
    import torch.distributed as dist

    from tsgen.cli import release_process_group

    release_process_group()
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    assert dist.is_initialized()
    release_process_group()
    assert not dist.is_initialized()
