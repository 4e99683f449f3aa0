"""The ``tsgen`` command line: Lightning's CLI over any LightningModule and LightningDataModule.

Models and datamodules are chosen by class path (``--model tsgen.models.X`` or ``class_path`` in a
YAML config), and the Trainer's subcommands (``fit``, ``validate``, ``test``, ``predict``) are
available as usual::

    tsgen fit --config configs/timebridge/quickstart.yaml
    tsgen fit --print_config --config configs/timebridge/quickstart.yaml
"""

from __future__ import annotations

from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI

__all__ = ["main"]

# CSV logging into ./lightning_logs/version_N by default. Given as a class path rather than an
# instance so that every run builds its own logger (and picks a fresh version), and so that a
# config file or ``--trainer.logger`` can replace it.
_DEFAULT_LOGGER = {
    "class_path": "lightning.pytorch.loggers.CSVLogger",
    "init_args": {"save_dir": ".", "name": "lightning_logs"},
}


def main(args: list[str] | None = None) -> None:
    """Run the ``tsgen`` command line.

    Args:
        args: command-line arguments without the program name, e.g. ``["fit", "--config",
            "run.yaml"]``; ``None`` reads them from ``sys.argv``.
    """
    LightningCLI(
        model_class=LightningModule,
        datamodule_class=LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        trainer_defaults={"logger": _DEFAULT_LOGGER},
        # Re-running into the same directory must not fail on an existing config.yaml.
        save_config_kwargs={"overwrite": True},
        args=args,
    )
