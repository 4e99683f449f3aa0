"""The ``tsgen`` command line: Lightning's CLI over any LightningModule and LightningDataModule.

Models and datamodules are chosen by class path (``--model tsgen.models.X`` or ``class_path`` in a
YAML config), and the Trainer's subcommands (``fit``, ``validate``, ``test``, ``predict``) are
available as usual::

    tsgen fit --config configs/timebridge/quickstart.yaml
    tsgen fit --print_config --config configs/timebridge/quickstart.yaml
    tsgen predict --config configs/timebridge/quickstart.yaml --ckpt_path last.ckpt \
        --output samples/
    tsgen evaluate last.ckpt --repeats 20     # the bundled metrics (tsgen.metrics.command)

Shapes that depend on the data (``window``, ``n_features``, ``horizon``, ``scaling``) are linked
from the instantiated datamodule into the model's arguments of the same name, so one config
works on another CSV; a model without such an argument is simply not linked.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from tsgen.writers import PredictionWriter

__all__ = ["TsgenCLI", "TsgenTrainer", "main", "release_process_group"]


# CSV logging into ./lightning_logs/version_N by default. Given as a class path rather than an
# instance so that every run builds its own logger (and picks a fresh version), and so that a
# config file or ``--trainer.logger`` can replace it.
_DEFAULT_LOGGER = {
    "class_path": "lightning.pytorch.loggers.CSVLogger",
    "init_args": {"save_dir": ".", "name": "lightning_logs"},
}

# Datamodule attributes that set model arguments of the same name.
DATA_LINKS = ("window", "n_features", "horizon", "scaling")


class TsgenTrainer(Trainer):
    """Lightning's Trainer whose ``predict`` can write its results to files."""

    def predict(  # type: ignore[override]
        self,
        model: LightningModule | None = None,
        dataloaders: Any = None,
        datamodule: LightningDataModule | None = None,
        return_predictions: bool | None = None,
        ckpt_path: str | None = None,
        weights_only: bool | None = None,
        output: str | None = None,
    ) -> Any:
        """Run prediction; with ``output`` (a directory), write every batch there through
        :class:`~tsgen.writers.PredictionWriter` (``samples.npy`` and friends) instead of
        keeping the predictions in memory.

        Args:
            output: directory of the written predictions; ``None`` keeps Lightning's behaviour.
        """
        if output is not None:
            writer = PredictionWriter(Path(output))
            self.callbacks.append(writer)
            return_predictions = False
        try:
            return super().predict(
                model, dataloaders, datamodule, return_predictions, ckpt_path, weights_only
            )
        finally:
            if output is not None:
                self.callbacks.remove(writer)


class TsgenCLI(LightningCLI):
    """LightningCLI with the datamodule-to-model links of :data:`DATA_LINKS`, and with model
    arguments given for this run taking precedence over a checkpoint's.

    With ``--ckpt_path``, Lightning (2.6) rebuilds the model from the checkpoint's
    hyper-parameters and so ignores ``--model.num_samples 1000`` or a changed sampler in a
    ``predict`` run (Lightning-AI/pytorch-lightning#21455, open). Here every top-level model
    argument with a plain value (number, string, boolean, ``None``) that this run names, in
    its config files or on the command line, is put back after the checkpoint's values, also
    when it names the class's default. Nested objects (network, prior, process) always come
    from the checkpoint.
    """

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for key in DATA_LINKS:
            parser.link_arguments(f"data.{key}", f"model.init_args.{key}", apply_on="instantiate")

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        super().parse_arguments(parser, args)
        # Kept to tell, with a checkpoint, which arguments the run named (see the class).
        self._run_parser, self._run_args = parser, args

    def _parse_ckpt_path(self) -> None:
        subcommand = self.config.get("subcommand")
        if not subcommand or not self.config[subcommand].get("ckpt_path"):
            super()._parse_ckpt_path()
            return
        given = self._named_plain_arguments(subcommand)
        super()._parse_ckpt_path()
        init_args = self.config[subcommand]["model"].get("init_args")
        for key, value in given.items():
            if init_args is not None and key in init_args:
                init_args[key] = value

    def _named_plain_arguments(self, subcommand: str) -> dict[str, Any]:
        """The model's top-level init arguments with a plain value that this run names (its
        config files and command line, parsed again without defaults), with their values."""
        if isinstance(self._run_args, dict | Namespace):
            named = self._run_parser.parse_object(self._run_args, defaults=False)
        else:
            named = self._run_parser.parse_args(self._run_args, defaults=False)
        model = named[subcommand].get("model") if subcommand in named else None
        named_args = getattr(model, "init_args", None)
        init_args = getattr(self.config[subcommand].get("model"), "init_args", None)
        if named_args is None or init_args is None:
            return {}
        plain = (int, float, str, bool, type(None))
        return {
            key: init_args[key]
            for key in vars(named_args)
            if key in init_args and isinstance(init_args[key], plain)
        }


def main(args: list[str] | None = None) -> None:
    """Run the ``tsgen`` command line.

    ``tsgen evaluate ...`` runs the bundled metrics (:mod:`tsgen.metrics.command`); every other
    subcommand is Lightning's.

    Args:
        args: command-line arguments without the program name, e.g. ``["fit", "--config",
            "run.yaml"]``; ``None`` reads them from ``sys.argv``.
    """
    argv = sys.argv[1:] if args is None else list(args)
    if argv[:1] == ["evaluate"]:
        from tsgen.metrics.command import evaluate_main

        evaluate_main(argv[1:])
        return
    TsgenCLI(
        model_class=LightningModule,
        datamodule_class=LightningDataModule,
        trainer_class=TsgenTrainer,
        subclass_mode_model=True,
        subclass_mode_data=True,
        trainer_defaults={"logger": _DEFAULT_LOGGER},
        # Re-running into the same directory must not fail on an existing config.yaml.
        save_config_kwargs={"overwrite": True},
        args=args,
    )
    release_process_group()


def release_process_group() -> None:
    """Destroy the default process group that a multi-process run (``strategy="ddp"``) leaves
    behind, if there is one; call it on every rank once the work is done.

    Lightning keeps the group alive after ``fit`` and ``predict`` so that a later call can reuse
    it. Left to the interpreter's exit, gloo's worker threads can outlive it and abort the
    process ("terminate called without an active exception", exit code 134) after all the work
    was written (about 1 run in 8 of the two-rank test script on the development machine).
    Not called after an error, where a rank still inside a collective would make it hang.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
