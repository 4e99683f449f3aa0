"""Sliding windows over a regular series, and the datamodule that serves them in model space.

The benchmark protocol (timebridge.md, "Data protocol"): windows of length ``L`` with stride
``s``, per-feature min-max fitted on the training split, model space ``[-1, 1]``.
Unconditional benchmarks train and compare on all windows; conditional tasks split the series
chronologically *before* windowing and scale each window from its own observed entries.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
import torch
from einops import rearrange
from lightning.pytorch import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from tsgen._validation import check_int
from tsgen.data.datasets import BUILTIN_DATASETS, load_builtin, make_sines
from tsgen.data.scaling import MinMaxScaler, WindowScale, fit_window_scale
from tsgen.data.series import load_series, select_columns

__all__ = [
    "EpochShuffleSampler",
    "ResumableDataLoader",
    "WholeBatchDataset",
    "WindowSplit",
    "WindowsDataModule",
    "sliding_windows",
    "whole_batch",
]

ArrayT = TypeVar("ArrayT", np.ndarray, Tensor)

# Windows per Sines dataset (the benchmark's size) and its number of features.
_SINES_WINDOWS, _SINES_FEATURES = 10000, 5


def sliding_windows(
    series: ArrayT, length: int, stride: int = 1, where: str = "the series"
) -> ArrayT:
    """All windows ``series[i * stride : i * stride + length]`` of a ``(T, C)`` series.

    Returns ``(N, length, C)`` with ``N = (T - length) // stride + 1``, a contiguous copy of the
    same type (NumPy or torch) as ``series``.

    Args:
        where: how an error message names the series' origin, e.g. ``"'short.csv'"``.

    Raises:
        ValueError: for a series that is not 2-D, a non-positive ``length`` or ``stride``, or a
            series shorter than ``length``.
    """
    check_int("window", length)
    check_int("stride", stride)
    if series.ndim != 2:
        raise ValueError(f"series must be 2-D (T, C); got shape {tuple(series.shape)}")
    if series.shape[0] < length:
        raise ValueError(
            f"window={length} is longer than the series ({series.shape[0]} rows) in {where}"
        )
    if isinstance(series, Tensor):
        return rearrange(series.unfold(0, length, stride), "n c l -> n l c").contiguous()
    view = np.lib.stride_tricks.sliding_window_view(series, length, axis=0)[::stride]
    return np.ascontiguousarray(rearrange(view, "n c l -> n l c"))


@dataclass(frozen=True)
class WindowSplit:
    """The windows of one split.

    Attributes:
        values: ``(N, L, C)`` float32 in the global model space (``[-1, 1]`` on the training
            split's range), under either scaling; 0 where unobserved.
        mask: ``(N, L, C)`` bool, True where observed; ``None`` unless ``treat_nan_as_missing``.
        raw: ``(N, L, C)`` float64 in original units (NaN where unobserved).
        scale: the per-window parameters under instance scaling (``scale.inverse_transform``
            maps predictions back to original units); ``None`` under global scaling.
    """

    values: Tensor
    mask: Tensor | None
    raw: Tensor
    scale: WindowScale | None


class WholeBatchDataset(Dataset):
    """Rows of tensors with a common first dimension, served a whole batch at a time
    (``__getitems__`` indexes each tensor once), not item by item. An item or batch is the one
    tensor's rows, or a tuple of every tensor's rows. Load it with ``collate_fn=whole_batch``."""

    def __init__(self, *tensors: Tensor) -> None:
        if not tensors or len({t.shape[0] for t in tensors}) != 1:
            raise ValueError(
                "WholeBatchDataset needs one or more tensors with a common first dimension; got "
                f"shapes {[tuple(t.shape) for t in tensors]}"
            )
        self.tensors = tensors

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def _rows(self, index: int | Tensor) -> Tensor | tuple[Tensor, ...]:
        rows = tuple(t[index] for t in self.tensors)
        return rows[0] if len(rows) == 1 else rows

    def __getitem__(self, index: int) -> Tensor | tuple[Tensor, ...]:
        return self._rows(index)

    def __getitems__(self, indices: list[int]) -> Tensor | tuple[Tensor, ...]:
        return self._rows(torch.as_tensor(indices))


def whole_batch(batch: Tensor | tuple[Tensor, ...]) -> Tensor | tuple[Tensor, ...]:
    """Collation for :class:`WholeBatchDataset`, whose ``__getitems__`` already returns a
    batch."""
    return batch


def _epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit generator seed for ``(seed, epoch)``; unrelated for different pairs (``seed +
    epoch`` would give seed 1's first epoch the order of seed 0's second)."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint64)[0] >> 1)


class EpochShuffleSampler(Sampler[int]):
    """A shuffle of ``range(n)`` that is a pure function of ``(seed, epoch)``.

    Epoch ``e`` yields ``torch.randperm(n)`` drawn from a generator seeded from ``(seed, e)``, so
    a resumed run, or another process, sees the same order as an uninterrupted one. Lightning
    calls :meth:`set_epoch` at every epoch start (and, under DDP, forwards it through the
    distributed wrapper it puts around this sampler).

    Args:
        n: the number of items.
        seed: a non-negative integer.
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n = check_int("n", n)
        self.seed = check_int("seed", seed, minimum=0)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration yield epoch ``epoch``'s order."""
        self.epoch = check_int("epoch", epoch, minimum=0)

    def permutation(self) -> Tensor:
        """``(n,)`` int64: the current epoch's order."""
        generator = torch.Generator().manual_seed(_epoch_seed(self.seed, self.epoch))
        return torch.randperm(self.n, generator=generator)

    def __iter__(self) -> Iterator[int]:
        return iter(self.permutation().tolist())

    def __len__(self) -> int:
        return self.n


class _ResumedIndices:
    """A loader's batch indices (its batch sampler), less the batches resumed past.

    Reads the loader's ``_skip`` when iterated, not when built: PyTorch's iterators keep the
    object they got and iterate it again (more than once at creation with workers, and at every
    epoch with persistent workers).
    """

    def __init__(self, loader: ResumableDataLoader, indices: Any) -> None:
        self.loader, self.indices = loader, indices

    def __iter__(self) -> Iterator[Any]:
        return itertools.islice(self.indices, self.loader._skip, None)

    def __len__(self) -> int:
        # The whole epoch: Lightning counts a resumed epoch's batches from where it stopped.
        return len(self.indices)


class ResumableDataLoader(DataLoader):
    """A ``DataLoader`` that can save its position within an epoch and resume from it.

    :meth:`state_dict` records the sampler's epoch and how many batches of that epoch this
    loader has yielded; after :meth:`load_state_dict` the next iteration of that epoch starts
    after them, skipping their indices in the batch sampler (their data are never loaded). An
    iteration of another epoch (the saved one was complete and training moved on) starts at its
    beginning. Lightning treats a training loader with both methods as stateful: it stores the
    state in checkpoints and restores it before iterating on resume.

    The count is taken as batches leave this loader, not as the sampler yields indices, so
    workers prefetching indices ahead do not inflate it. Lightning's fetcher reads ahead only
    when the loader has no length, which this one always has (its sampler is sized), so at a
    checkpoint the count equals the batches the training loop has taken.

    Takes ``DataLoader``'s arguments, so Lightning can re-instantiate it with a distributed
    sampler under DDP; the skip then applies to each process's own batches.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._epoch = 0  # the epoch of the last iteration
        self._consumed = 0  # batches of that epoch yielded (including skipped ones)
        self._skip = 0  # batches the current iteration skipped
        self._resume: tuple[int, int] | None = None  # (epoch, batches) to skip, once

    @property
    def _index_sampler(self) -> Any:
        # PyTorch's iterators draw batch indices from here; ``batch_sampler`` itself cannot be
        # replaced after construction.
        return _ResumedIndices(self, super()._index_sampler)

    def __iter__(self) -> Iterator[Any]:
        # A new pass has yielded nothing yet (skipping none is right whatever epoch it will be).
        self._consumed = 0
        return self._batches()

    def _batches(self) -> Iterator[Any]:
        # A generator: this runs at the first ``next``, after Lightning's ``set_epoch`` for the
        # epoch, so the epoch read here is the one iterated (also by workers, started below).
        epoch = getattr(self.sampler, "epoch", 0)
        resume, self._resume = self._resume, None
        self._skip = resume[1] if resume is not None and resume[0] == epoch else 0
        self._epoch, self._consumed = epoch, self._skip
        for batch in super().__iter__():
            self._consumed += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        """``{"epoch": e, "batches": k}``: ``k`` batches of epoch ``e`` have been yielded (a
        restored state not iterated yet is returned as it came)."""
        epoch, batches = self._resume or (self._epoch, self._consumed)
        return {"epoch": epoch, "batches": batches}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        """Resume after ``state_dict["batches"]`` batches of epoch ``state_dict["epoch"]``.

        Also sets the sampler to that epoch (if it has ``set_epoch``), so iterating without
        Lightning resumes too.
        """
        epoch, batches = state_dict["epoch"], state_dict["batches"]
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)
        self._resume = (epoch, batches)


class WindowsDataModule(LightningDataModule):
    """Sliding windows of a built-in or user series, scaled to model space.

    Everything is prepared at construction (the datasets are small): the series is loaded and
    validated, split, windowed and the scaler fitted on the training split. So a bad input fails
    when the config is instantiated, and ``window``, ``n_features``, ``feature_names`` and the
    fitted ``scaler`` are attributes of the instance, ready to be linked into a model::

        class CLI(LightningCLI):
            def add_arguments_to_parser(self, parser):
                for key in ("window", "n_features"):
                    parser.link_arguments(
                        f"data.{key}", f"model.init_args.{key}", apply_on="instantiate"
                    )

    (``apply_on="instantiate"`` reads the attribute from the instantiated datamodule, so
    ``n_features`` follows the CSV; drop ``init_args.`` when the model class is fixed.)

    Batches are ``(B, L, C)`` float32 tensors in model space, or with ``treat_nan_as_missing``
    a ``(values, mask)`` pair with NaN replaced by 0 and ``mask`` True where observed.

    Args:
        dataset: a built-in name, ``"sines"``, ``"stocks"`` or ``"etth1"``; ignored when
            ``path`` is given. Sines are generated with ``seed`` (10,000 windows of
            ``window`` x 5), each window independent, so ``stride`` must be 1.
        path: a user's ``.csv`` or ``.npy`` series ``(rows, features)``, rows in time order.
        columns: the columns to use (names or positions); ``None`` uses all.
        window: window length ``L``.
        stride: steps between window starts.
        split: ``"all"``: the papers' protocol for unconditional benchmarks; train on every
            window and validate and test on the same windows. ``"chronological"``: the series is
            cut by time *before* windowing into train (the first ``1 - val_fraction -
            test_fraction``, 90% by default), validation and test (the last ``test_fraction``),
            so no window crosses a boundary and no test value is seen in training. Sines
            windows are cut in generation order.
        val_fraction: fraction of rows for validation under ``"chronological"`` (rounded).
        test_fraction: fraction of rows for testing under ``"chronological"`` (rounded).
        scaling: ``"global"``: the per-feature min-max fitted on the training split;
            ``"instance"``: each window is to be min-max scaled from its own observed entries
            (see :func:`~tsgen.data.scaling.fit_window_scale`). The batches are in the global
            model space either way; under ``"instance"`` a model re-scales each window from
            the entries it is given (its task mask in training, the user's mask at inference:
            the same computation, fallbacks included), and :attr:`WindowSplit.scale` holds
            each window's parameters fitted from its first ``window - horizon`` steps (so a
            forecast target never shapes its own scale), for evaluation in instance-scaled
            units.
        horizon: trailing steps of each window that instance scaling must not see (the
            forecast horizon); 0 for unconditional generation and imputation.
        batch_size: windows per batch.
        num_workers: DataLoader worker processes.
        seed: Sines generation and the training shuffle order.
        treat_nan_as_missing: NaN in the data marks a missing value (batches carry a mask)
            instead of being an error.
    """

    def __init__(
        self,
        dataset: str = "stocks",
        path: str | None = None,
        columns: list[str | int] | None = None,
        window: int = 24,
        stride: int = 1,
        split: Literal["all", "chronological"] = "all",
        val_fraction: float = 0.05,
        test_fraction: float = 0.05,
        scaling: Literal["global", "instance"] = "global",
        horizon: int = 0,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        treat_nan_as_missing: bool = False,
    ) -> None:
        super().__init__()
        # Saved with the checkpoint, and logged by :meth:`setup` under their own key.
        self.save_hyperparameters(logger=False)
        _check_options(window, stride, split, scaling, val_fraction, test_fraction, batch_size)
        if isinstance(horizon, bool) or not isinstance(horizon, int) or not 0 <= horizon < window:
            raise ValueError(f"horizon must be an integer in [0, window={window}); got {horizon!r}")
        self.horizon = horizon
        check_int("num_workers", num_workers, minimum=0)
        check_int("seed", seed, minimum=0)
        self.window, self.stride, self.batch_size = window, stride, batch_size
        self.num_workers, self.seed = num_workers, seed
        self.scaling, self.treat_nan_as_missing = scaling, treat_nan_as_missing
        parts, self.feature_names = self._load_parts(
            dataset, path, columns, split, val_fraction, test_fraction, treat_nan_as_missing
        )
        self.n_features = len(self.feature_names)
        # A feature may vary over the series but not in its training part: say where.
        source = f"data.path {path!r}" if path is not None else f"dataset {dataset!r}"
        part = "all windows" if split == "all" else "the training split (the series' first part)"
        self.scaler = MinMaxScaler(self.n_features).fit(
            parts[0], names=self.feature_names, where=f"{source}, {part}"
        )
        splits = [self._make_split(part) for part in parts]
        self.train_split, self.val_split, self.test_split = (
            (splits[0],) * 3 if split == "all" else splits
        )

    def _load_parts(
        self,
        dataset: str,
        path: str | None,
        columns: list[str | int] | None,
        split: str,
        val_fraction: float,
        test_fraction: float,
        treat_nan_as_missing: bool,
    ) -> tuple[list[Tensor], list[str]]:
        """The raw float64 windows of each split (one part under ``"all"``) and feature names."""
        if path is None and dataset == "sines":
            if self.stride != 1 or columns is not None:
                raise ValueError(
                    "dataset='sines' generates independent windows: stride must be 1 and columns "
                    f"None; got stride={self.stride}, columns={columns!r}"
                )
            sines = torch.from_numpy(
                make_sines(_SINES_WINDOWS, self.window, _SINES_FEATURES, self.seed)
            )
            names = [str(f) for f in range(_SINES_FEATURES)]
            sizes = _split_sizes(len(sines), val_fraction, test_fraction)
            return ([sines] if split == "all" else list(torch.split(sines, sizes))), names
        if path is not None:
            series, names = load_series(
                path,
                columns,
                treat_nan_as_missing,
                arg_names={
                    "source": "data.path",
                    "columns": "data.columns",
                    "allow_missing": "data.treat_nan_as_missing",
                },
            )
            where = f"'{path}'"
        elif dataset in BUILTIN_DATASETS:
            series, names = load_builtin(dataset)
            if columns is not None:
                keep = select_columns(names, columns, f"dataset {dataset!r}", "data.columns")
                series, names = series[:, keep], [names[k] for k in keep]
            where = f"dataset {dataset!r}"
        else:
            raise ValueError(
                f"dataset must be one of {list(BUILTIN_DATASETS)} (or give path=...); "
                f"got {dataset!r}"
            )
        series = torch.from_numpy(series)
        if split == "all":
            return [sliding_windows(series, self.window, self.stride, where)], names
        sizes = _split_sizes(len(series), val_fraction, test_fraction)
        named = zip(("training", "validation", "test"), torch.split(series, sizes), strict=True)
        windows = [
            sliding_windows(part, self.window, self.stride, f"the {name} split of {where}")
            for name, part in named
        ]
        return windows, names

    def _make_split(self, raw: Tensor) -> WindowSplit:
        """Scale the raw windows of one split to model space; unobserved entries become 0."""
        observed = ~raw.isnan()
        mask = observed if self.treat_nan_as_missing else None
        scale = None
        if self.scaling == "instance":
            # Only the history may set a window's scale: the horizon is what is predicted.
            history = observed.clone()
            history[:, self.window - self.horizon :] = False
            scale = fit_window_scale(raw, history, span=self.scaler.data_max - self.scaler.data_min)
        # Batches stay in the global model space under either scaling: an affine image of the
        # raw values that a model re-scales per window from the entries it is given (as it
        # must at inference), fallbacks included; ``scale`` is for evaluation.
        values = self.scaler.transform(raw)
        return WindowSplit(values.nan_to_num(0.0).float(), mask, raw, scale)

    def _loader(self, split: WindowSplit, shuffle: bool) -> DataLoader:
        tensors = (split.values,) if split.mask is None else (split.values, split.mask)
        dataset = WholeBatchDataset(*tensors)
        kwargs = {
            "batch_size": self.batch_size,
            "num_workers": self.num_workers,
            "collate_fn": whole_batch,
        }
        if not shuffle:
            return DataLoader(dataset, **kwargs)
        sampler = EpochShuffleSampler(len(dataset), self.seed)
        # The loader draws its workers' base seed from ``generator``: a private one keeps the
        # global RNG, which model code may rely on, untouched at every epoch start.
        generator = torch.Generator().manual_seed(self.seed)
        return ResumableDataLoader(dataset, sampler=sampler, generator=generator, **kwargs)

    def setup(self, stage: str) -> None:
        """Log the data's hyper-parameters under ``data``: Lightning would merge them with the
        model's into one flat dict and refuse keys the two share with different values (both
        have a ``seed``, for different random streams)."""
        if self.trainer is None or not getattr(self.trainer, "enable_autolog_hparams", True):
            return
        hparams = {k: v for k, v in self.hparams_initial.items() if k != "_class_path"}
        for logger in self.trainer.loggers:
            logger.log_hyperparams({"data": hparams})

    def train_dataloader(self) -> ResumableDataLoader:
        """Training windows, shuffled: epoch ``e``'s order is a function of ``(seed, e)`` only
        (:class:`EpochShuffleSampler`), and the loader resumes mid-epoch from a checkpoint
        (:class:`ResumableDataLoader`)."""
        return self._loader(self.train_split, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_split, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_split, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """What the attached model predicts on, in order.

        A model that defines ``prediction_dataset(split)`` says itself what to iterate over
        given the test split (e.g. :class:`~tsgen.models.TimeBridge`: sample indices for
        generation, the test windows for imputation), and with ``prediction_batch_size`` in
        what batches; otherwise the test windows.
        """
        model = self.trainer.lightning_module if self.trainer is not None else None
        make_dataset = getattr(model, "prediction_dataset", None)
        if make_dataset is None:
            return self._loader(self.test_split, shuffle=False)
        return DataLoader(
            make_dataset(self.test_split),
            batch_size=getattr(model, "prediction_batch_size", self.batch_size),
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=whole_batch,
        )


def _check_options(
    window: int,
    stride: int,
    split: str,
    scaling: str,
    val_fraction: float,
    test_fraction: float,
    batch_size: int,
) -> None:
    for arg, value in (("window", window), ("stride", stride), ("batch_size", batch_size)):
        check_int(arg, value)
    for arg, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{arg} must be a number; got {value!r}")
    if split not in ("all", "chronological"):
        raise ValueError(f"split must be 'all' or 'chronological'; got {split!r}")
    if scaling not in ("global", "instance"):
        raise ValueError(f"scaling must be 'global' or 'instance'; got {scaling!r}")
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            "val_fraction and test_fraction must lie in (0, 1) with a sum below 1; got "
            f"val_fraction={val_fraction}, test_fraction={test_fraction}"
        )


def _split_sizes(n: int, val_fraction: float, test_fraction: float) -> list[int]:
    """``[train, val, test]`` counts for ``n`` items cut in order; val and test rounded."""
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    return [n - n_val - n_test, n_val, n_test]
