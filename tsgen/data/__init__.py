"""Data: built-in datasets (offline, checksum-verified), a loader for users' own series, scaling
to model space, and the sliding-windows datamodule.

Example::

    from tsgen.data import WindowsDataModule

    dm = WindowsDataModule(dataset="stocks", window=24)
    dm.window, dm.n_features           # 24, 6
    dm.train_split.values.shape        # (3662, 24, 6), float32 in [-1, 1]
    dm.scaler.inverse_transform(dm.train_split.values.double())  # original units
"""

from tsgen.data.datasets import BUILTIN_DATASETS, load_builtin, make_sines
from tsgen.data.scaling import MinMaxScaler, WindowScale, fit_window_scale
from tsgen.data.series import load_series
from tsgen.data.windows import WindowsDataModule, WindowSplit, sliding_windows

__all__ = [
    "BUILTIN_DATASETS",
    "MinMaxScaler",
    "WindowScale",
    "WindowSplit",
    "WindowsDataModule",
    "fit_window_scale",
    "load_builtin",
    "load_series",
    "make_sines",
    "sliding_windows",
]
