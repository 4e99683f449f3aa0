"""The Python entry points: ``tsgen.load(checkpoint)`` gives back a trained model, ready to
``sample``, ``impute`` or ``forecast`` in original units (USAGE.md, section 3), and
``training_windows(checkpoint)`` the windows it was trained on."""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from lightning.pytorch import LightningModule

if TYPE_CHECKING:
    from tsgen.data import WindowsDataModule

__all__ = ["load", "load_datamodule", "training_windows"]


def load(
    checkpoint: str | Path,
    *,
    map_location: str | torch.device | None = "cpu",
    weights_only: bool = True,
) -> LightningModule:
    """Load a tsgen model from a checkpoint written by ``tsgen fit`` or ``Trainer.fit``.

    The checkpoint names its model class, and holds the configuration and the fitted state
    (weights, EMA weights, prior, scaler), so nothing else is needed. The model is returned in
    evaluation mode.

    Args:
        checkpoint: path of a ``.ckpt`` file.
        map_location: where to put the weights (``"cpu"``, ``"cuda"``, ...).
        weights_only: refuse checkpoints that need arbitrary Python objects unpickled. Those of
            ``tsgen fit`` never do; a model built in Python with module objects as arguments
            stores those objects, and loads only with ``weights_only=False`` (which runs
            pickle: use it for files you trust).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a tsgen checkpoint.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=weights_only)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"checkpoint {str(path)!r} holds Python objects that weights_only=True refuses (a "
            "model built in Python with module objects as arguments); if you trust the file, "
            "load it with weights_only=False"
        ) from error
    class_path = state.get("tsgen_class") if isinstance(state, dict) else None
    if not class_path:
        raise ValueError(f"{str(path)!r} is not a tsgen checkpoint (it names no tsgen model class)")
    module_name, _, class_name = class_path.rpartition(".")
    # Import nothing but tsgen's own models on the say-so of a file.
    if not module_name.startswith("tsgen."):
        raise ValueError(f"{str(path)!r} names the model class {class_path!r}, not a tsgen one")
    model_class = getattr(importlib.import_module(module_name), class_name, None)
    if not (isinstance(model_class, type) and issubclass(model_class, LightningModule)):
        raise ValueError(f"{str(path)!r} names {class_path!r}, which is not a tsgen model")
    model = model_class.load_from_checkpoint(
        path, map_location=map_location, weights_only=weights_only
    )
    return model.eval()


def load_datamodule(checkpoint: str | Path) -> WindowsDataModule:
    """The datamodule a checkpoint was trained on, rebuilt from its saved hyper-parameters (a
    relative ``path`` in them is resolved from the current directory).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the checkpoint holds no datamodule hyper-parameters, or those of another
            datamodule than :class:`~tsgen.data.WindowsDataModule`.
    """
    from tsgen.data import WindowsDataModule

    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    hparams = state.get("datamodule_hyper_parameters") if isinstance(state, dict) else None
    if hparams is None:
        raise ValueError(
            f"{str(path)!r} holds no datamodule hyper-parameters (it was not trained through "
            "WindowsDataModule), so its data cannot be rebuilt"
        )
    # The CLI records the datamodule's class under ``_class_path`` next to its arguments.
    class_path = hparams.get("_class_path", "tsgen.data.WindowsDataModule")
    if class_path not in ("tsgen.data.WindowsDataModule", "tsgen.data.windows.WindowsDataModule"):
        raise ValueError(
            f"{str(path)!r} was trained on the datamodule {class_path!r}; only "
            "tsgen.data.WindowsDataModule can be rebuilt from a checkpoint"
        )
    return WindowsDataModule(**{k: v for k, v in hparams.items() if not k.startswith("_")})


def training_windows(checkpoint: str | Path) -> np.ndarray:
    """The training windows, in original units, of the datamodule a checkpoint was trained on
    (:func:`load_datamodule`).

    Returns:
        ``(N, L, C)`` float64 array (NaN where a value was not observed).
    """
    return load_datamodule(checkpoint).train_split.raw.numpy()
