"""Data: built-in datasets (offline, checksum-verified), a loader for users' own series, scaling
to model space, the sliding-windows datamodule (its training order a function of the seed and
the epoch, resumable mid-epoch) and observation masks for imputation and forecasting.

Example::

    from tsgen.data import WindowsDataModule

    dm = WindowsDataModule(dataset="stocks", window=24)
    dm.window, dm.n_features           # 24, 6
    dm.train_split.values.shape        # (3662, 24, 6), float32 in [-1, 1]
    dm.scaler.inverse_transform(dm.train_split.values.double())  # original units

    from tsgen.data import random_missing_mask, sample_missing_ratios

    g = torch.Generator().manual_seed(0)
    ratios = sample_missing_ratios(64, 0.1, 0.9, generator=g)     # (64,), one per window
    mask = random_missing_mask((64, 24, 6), ratios, generator=g)  # (64, 24, 6), True: observed
"""

from tsgen.data.datasets import (
    BUILTIN_DATASETS,
    PROTOCOL_UNITS_DATASETS,
    load_builtin,
    make_sines,
)
from tsgen.data.masks import (
    forecast_mask,
    geometric_runs_mask,
    random_missing_mask,
    sample_missing_ratios,
)
from tsgen.data.scaling import MinMaxScaler, WindowScale, fit_window_scale
from tsgen.data.series import load_series
from tsgen.data.windows import (
    EpochShuffleSampler,
    ResumableDataLoader,
    WindowsDataModule,
    WindowSplit,
    sliding_windows,
)

__all__ = [
    "BUILTIN_DATASETS",
    "PROTOCOL_UNITS_DATASETS",
    "EpochShuffleSampler",
    "MinMaxScaler",
    "ResumableDataLoader",
    "WindowScale",
    "WindowSplit",
    "WindowsDataModule",
    "fit_window_scale",
    "forecast_mask",
    "geometric_runs_mask",
    "load_builtin",
    "load_series",
    "make_sines",
    "random_missing_mask",
    "sample_missing_ratios",
    "sliding_windows",
]
