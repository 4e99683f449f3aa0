"""The Python entry points: ``tsgen.load(checkpoint)`` gives back a trained model, ready to
``sample``, ``impute`` or ``forecast`` in original units (USAGE.md, section 3), and
``training_windows(checkpoint)`` the windows it was trained on."""

from __future__ import annotations

import importlib
import pickle
import zipfile
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
        ValueError: the file is not a tsgen checkpoint: not one torch can read (text, a
            truncated or damaged file), one without a tsgen model class, or one naming a class
            this tsgen lacks.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = _torch_load(path, weights_only)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"checkpoint {str(path)!r} holds Python objects that weights_only=True refuses (a "
            "model built in Python with module objects as arguments); if you trust the file, "
            "load it with weights_only=False"
        ) from error
    class_path = state.get("tsgen_class") if isinstance(state, dict) else None
    if not isinstance(class_path, str) or not class_path:
        raise ValueError(f"{str(path)!r} is not a tsgen checkpoint (it names no tsgen model class)")
    module_name, _, class_name = class_path.rpartition(".")
    # Import nothing but tsgen's own models on the say-so of a file.
    if not module_name.startswith("tsgen."):
        raise ValueError(f"{str(path)!r} names the model class {class_path!r}, not a tsgen one")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        # A module renamed or removed since the checkpoint was written, or a typo in the file.
        raise ValueError(
            f"{str(path)!r} names the model class {class_path!r}, whose module {module_name!r} "
            f"cannot be imported ({type(error).__name__}: {error}); was the checkpoint written "
            "by another version of tsgen?"
        ) from error
    model_class = getattr(module, class_name, None)
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
        ValueError: the file is not one torch can read, or the checkpoint holds no datamodule
            hyper-parameters, or those of another datamodule than
            :class:`~tsgen.data.WindowsDataModule`.
    """
    from tsgen.data import WindowsDataModule

    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    state = _torch_load(path, weights_only=True)
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


def _torch_load(path: Path, weights_only: bool) -> object:
    """``torch.load`` of ``path`` onto the CPU; a file it cannot read is a ValueError naming the
    file and torch's error.

    Raises:
        pickle.UnpicklingError: ``weights_only`` refused the file (the callers say why).
        ValueError: the file is not a torch checkpoint, or a truncated or damaged one.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except pickle.UnpicklingError as error:
        # Under weights_only, torch reports every failure of its restricted unpickler this way,
        # objects it refuses and garbage alike. torch.save writes a zip archive: in one, the
        # failure is a refused object (the callers say why); another file is not a checkpoint.
        if weights_only and zipfile.is_zipfile(path):
            raise
        raise _unreadable(path, error) from error
    except (OSError, MemoryError):
        raise  # the file could not be read at all, or not here: not a matter of its format
    except Exception as error:
        # torch's errors for a file in another format: KeyError (text read as a legacy pickle),
        # RuntimeError (a truncated zip archive), EOFError (an empty file), ...
        raise _unreadable(path, error) from error


def _unreadable(path: Path, error: Exception) -> ValueError:
    # Some of torch's errors say nothing (EOFError for an empty file): then the type must do.
    cause = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return ValueError(
        f"checkpoint {str(path)!r} is not a readable torch checkpoint (a whole file written by "
        f"torch.save): torch.load raised {cause}"
    )
