"""tsgen/data/windows.py: sliding windows, splits without leakage, scaling fitted on the training
split, the dataloaders' batches, NaN handling, linking window/n_features into a model, and a
training order that depends on (seed, epoch) only and resumes exactly from a checkpoint."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from lightning.fabric.utilities.data import _replace_dunder_methods
from lightning.fabric.utilities.distributed import DistributedSamplerWrapper
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities.data import _update_dataloader
from torch.utils.data import BatchSampler, DataLoader

from tsgen.data import EpochShuffleSampler, ResumableDataLoader, WindowsDataModule, sliding_windows
from tsgen.data.windows import WholeBatchDataset


def write_csv(name: str, data: np.ndarray, header: str = "a,b") -> str:
    rows = [",".join("" if np.isnan(v) else repr(float(v)) for v in row) for row in data]
    Path(name).write_text("\n".join([header, *rows]) + "\n")
    return name


def ramp(rows: int) -> np.ndarray:
    """Feature 0 is the row index (so windows reveal where they come from)."""
    t = np.arange(rows, dtype=np.float64)
    return np.stack([t, np.sin(t)], axis=1)


@settings(deadline=None, max_examples=25)
@given(rows=st.integers(1, 60), length=st.integers(1, 60), stride=st.integers(1, 7))
def test_sliding_window_count_and_content(rows: int, length: int, stride: int) -> None:
    series = ramp(rows)
    if length > rows:
        with pytest.raises(ValueError, match=f"window={length} is longer than the series"):
            sliding_windows(series, length, stride)
        return
    windows = sliding_windows(series, length, stride)
    assert windows.shape == ((rows - length) // stride + 1, length, 2)
    np.testing.assert_array_equal(windows[:, :, 0], windows[:, :1, 0] + np.arange(length))
    np.testing.assert_array_equal(windows[:, 0, 0], np.arange(len(windows)) * stride)
    np.testing.assert_array_equal(
        sliding_windows(torch.from_numpy(series), length, stride), windows
    )


def test_sliding_window_errors() -> None:
    with pytest.raises(ValueError, match=r"series must be 2-D \(T, C\); got shape \(5,\)"):
        sliding_windows(np.zeros(5), 2)
    with pytest.raises(ValueError, match="stride must be a positive integer; got 0"):
        sliding_windows(np.zeros((5, 1)), 2, stride=0)


def test_window_longer_than_user_series() -> None:
    path = write_csv("short.csv", ramp(31))
    with pytest.raises(
        ValueError, match=r"^window=48 is longer than the series \(31 rows\) in 'short.csv'$"
    ):
        WindowsDataModule(path=path, window=48)


@pytest.mark.parametrize(
    ("dataset", "shape"),
    [("stocks", (3662, 24, 6)), ("etth1", (17397, 24, 7)), ("sines", (10000, 24, 5))],
)
def test_builtin_protocol_window_counts(dataset: str, shape: tuple) -> None:
    dm = WindowsDataModule(dataset=dataset)
    assert (dm.window, dm.n_features) == shape[1:] and len(dm.feature_names) == shape[2]
    values = dm.train_split.values
    assert values.shape == shape and values.dtype == torch.float32
    assert values.amin(dim=(0, 1)).eq(-1).all() and values.amax(dim=(0, 1)).eq(1).all()
    assert dm.val_split is dm.train_split and dm.test_split is dm.train_split  # all-windows
    back = dm.scaler.inverse_transform(values.double())
    torch.testing.assert_close(back, dm.train_split.raw, rtol=1e-5, atol=1e-5 * back.abs().max())


def test_chronological_scaler_is_fitted_on_training_rows_only() -> None:
    dm = WindowsDataModule(dataset="stocks", split="chronological")
    train_rows = 3685 - 2 * round(3685 * 0.05)
    assert len(dm.train_split.values) == train_rows - 23
    torch.testing.assert_close(dm.scaler.data_max, dm.train_split.raw.amax(dim=(0, 1)))
    assert dm.train_split.values.max() == 1
    # GOOG's test prices lie above the training maximum: mapped above 1, not clipped.
    assert dm.test_split.values[..., 0].max() > 1.2


@pytest.mark.parametrize("stride", [1, 3])
def test_no_window_crosses_a_split_boundary(stride: int) -> None:
    dm = WindowsDataModule(
        path=write_csv("ramp.csv", ramp(200)),
        window=8,
        stride=stride,
        split="chronological",
        val_fraction=0.1,
        test_fraction=0.2,
    )
    bounds = {"train": (0, 140), "val": (140, 160), "test": (160, 200)}
    for name, (start, stop) in bounds.items():
        rows = getattr(dm, f"{name}_split").raw[..., 0]  # row indices of every window
        assert rows.min() == start and rows.max() <= stop - 1
        assert len(rows) == (stop - start - 8) // stride + 1
    assert dm.scaler.data_max[0] == 139


def test_too_short_split_names_the_split() -> None:
    with pytest.raises(ValueError, match=r"\(10 rows\) in the validation split of 'ramp.csv'"):
        WindowsDataModule(path=write_csv("ramp.csv", ramp(200)), window=24, split="chronological")


def test_dataloaders_yield_batches_in_model_space() -> None:
    dm = WindowsDataModule(dataset="sines", window=16, batch_size=32, split="chronological")
    shapes = {"train": 9000, "val": 500, "test": 500, "predict": 500}
    for stage, n in shapes.items():
        loader = getattr(dm, f"{stage}_dataloader")()
        batch = next(iter(loader))
        assert isinstance(batch, torch.Tensor) and batch.shape == (32, 16, 5)
        assert batch.dtype == torch.float32 and len(loader.dataset) == n
    torch.testing.assert_close(next(iter(dm.test_dataloader())), dm.test_split.values[:32])
    first = next(iter(dm.train_dataloader()))
    torch.testing.assert_close(next(iter(dm.train_dataloader())), first)  # seeded shuffle
    assert not torch.equal(first, dm.train_split.values[:32])


def test_nan_is_an_error_unless_treated_as_missing() -> None:
    data = ramp(60)
    data[[3, 40], 1] = np.nan
    path = write_csv("gaps.csv", data)
    with pytest.raises(
        ValueError,
        match=r"^data.path 'gaps.csv': column 'b' holds 2 NaN.*data.treat_nan_as_missing",
    ):
        WindowsDataModule(path=path, window=10)
    dm = WindowsDataModule(path=path, window=10, batch_size=100, treat_nan_as_missing=True)
    values, mask = next(iter(dm.val_dataloader()))
    assert values.shape == mask.shape == (51, 10, 2) and mask.dtype == torch.bool
    assert (~mask).sum() == 4 + 10  # row 3 lies in 4 windows, row 40 in 10
    assert values[~mask].eq(0).all() and values.isfinite().all()
    assert not mask[3, 0, 1] and mask[3, 0, 0]


def test_instance_scaling_per_window() -> None:
    data = ramp(60)
    data[5, 1] = np.nan
    dm = WindowsDataModule(
        path=write_csv("gaps.csv", data), window=12, scaling="instance", treat_nan_as_missing=True
    )
    split = dm.train_split
    scaled = split.scale.transform(split.raw)
    observed = scaled.masked_fill(~split.mask, torch.nan)
    torch.testing.assert_close(observed.nan_to_num(-2).amax(dim=1), torch.ones(49, 2).double())
    torch.testing.assert_close(observed.nan_to_num(2).amin(dim=1), -torch.ones(49, 2).double())
    back = split.scale.inverse_transform(scaled)
    torch.testing.assert_close(back[split.mask], split.raw[split.mask], rtol=1e-9, atol=1e-9)
    # The batches stay in the global model space: the model re-scales per window itself.
    global_values = dm.scaler.transform(split.raw).nan_to_num(0.0).float()
    torch.testing.assert_close(split.values, global_values)


def test_instance_scales_never_see_the_forecast_horizon() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(40, 2))
    spiked = data.copy()
    spiked[30:, :] += 100.0  # only ever inside the last 4 steps of windows ending at row >= 30
    scales = []
    for name, series in (("plain.csv", data), ("spiked.csv", spiked)):
        dm = WindowsDataModule(
            path=write_csv(name, series), window=10, scaling="instance", horizon=4
        )
        scales.append(dm.train_split.scale)
    # Windows whose history (first 6 steps) ends before row 30 get identical scales.
    history_clean = slice(0, 30 - 6 + 1)
    torch.testing.assert_close(scales[0].low[history_clean], scales[1].low[history_clean])
    torch.testing.assert_close(scales[0].high[history_clean], scales[1].high[history_clean])
    with pytest.raises(ValueError, match=r"horizon must be an integer in \[0, window=10\)"):
        WindowsDataModule(path=write_csv("h.csv", data), window=10, horizon=10)


def test_user_columns_and_builtin_columns() -> None:
    path = write_csv("three.csv", np.c_[ramp(30), np.cos(np.arange(30.0))], header="a,b,c")
    dm = WindowsDataModule(path=path, columns=["c", "a"], window=5)
    assert dm.feature_names == ["c", "a"] and dm.n_features == 2
    dm = WindowsDataModule(dataset="etth1", columns=["OT"], window=24)
    assert dm.n_features == 1 and dm.train_split.values.shape == (17397, 24, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dataset": "ettm2"}, r"dataset must be one of \['sines', 'stocks', 'etth1'\]"),
        ({"dataset": "sines", "stride": 2}, "stride must be 1"),
        ({"split": "random"}, "split must be 'all' or 'chronological'; got 'random'"),
        ({"scaling": "zscore"}, "scaling must be 'global' or 'instance'"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "sum below 1"),
        ({"window": 0}, "window must be a positive integer; got 0"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"num_workers": -1}, "num_workers must be an integer >= 0"),
        ({"seed": -1}, "seed must be an integer >= 0; got -1"),
        ({"dataset": "stocks", "seed": "a"}, "seed must be an integer >= 0; got 'a'"),
        ({"columns": ["Price"]}, r"data.columns names 'Price', which is not a column"),
    ],
)
def test_bad_options(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WindowsDataModule(**kwargs)


def test_non_numeric_user_column_message() -> None:
    Path("prices.csv").write_text("Date,Open\n2020-01-01,1\n2020-01-02,2\n")
    expected = (
        r"^data.path 'prices.csv': column 'Date' is not numeric; "
        r"drop it or pass data.columns=\[\.\.\.\]"
    )
    with pytest.raises(ValueError, match=expected):
        WindowsDataModule(path="prices.csv", window=2)


class _Shapes(LightningModule):
    """A stand-in model that only records the shapes it was built with."""

    def __init__(self, window: int = 1, n_features: int = 1) -> None:
        super().__init__()
        self.window, self.n_features = window, n_features


class _LinkedCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        for key in ("window", "n_features"):
            parser.link_arguments(f"data.{key}", f"model.{key}", apply_on="instantiate")


def test_window_and_n_features_link_into_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["tsgen"])  # LightningCLI warns about pytest's own arguments
    path = write_csv("three.csv", np.c_[ramp(30), np.cos(np.arange(30.0))], header="a,b,c")
    args = ["--data=tsgen.data.WindowsDataModule", f"--data.path={path}", "--data.window=7"]
    cli = _LinkedCLI(
        _Shapes, subclass_mode_data=True, run=False, args=[*args, "--trainer.logger=false"]
    )
    assert (cli.model.window, cli.model.n_features) == (7, 3)


def ramp_module(
    rows: int = 40, window: int = 4, batch_size: int = 8, **kwargs
) -> WindowsDataModule:
    """37 windows of a ramp by default (5 batches an epoch, the last one short); feature 0 of a
    window's first step tells which window it is."""
    np.save("ramp.npy", ramp(rows))
    return WindowsDataModule(path="ramp.npy", window=window, batch_size=batch_size, **kwargs)


def window_ids(batch: torch.Tensor) -> list[float]:
    return batch[:, 0, 0].tolist()


def epoch_ids(loader: DataLoader) -> list[list[float]]:
    return [window_ids(batch) for batch in loader]


def flat(batches: list[list[float]]) -> list[float]:
    return [i for batch in batches for i in batch]


def test_training_order_is_a_function_of_seed_and_epoch() -> None:
    loader = ramp_module().train_dataloader()
    assert isinstance(loader, ResumableDataLoader)
    assert isinstance(loader.sampler, EpochShuffleSampler)
    first = epoch_ids(loader)
    assert first == epoch_ids(loader)  # iterating again without set_epoch repeats the epoch
    loader.sampler.set_epoch(1)
    second = epoch_ids(loader)
    assert second != first and sorted(flat(second)) == sorted(flat(first))
    fresh = ramp_module().train_dataloader()
    assert epoch_ids(fresh) == first
    fresh.sampler.set_epoch(1)
    assert epoch_ids(fresh) == second
    assert epoch_ids(ramp_module(seed=1).train_dataloader()) != first
    # Evaluation loaders stay in order.
    assert flat(epoch_ids(ramp_module().val_dataloader())) == sorted(flat(first))


def test_sampler_seeds_differ_for_shifted_seed_and_epoch() -> None:
    a, b = EpochShuffleSampler(100, 0), EpochShuffleSampler(100, 1)
    a.set_epoch(1)
    assert list(a) != list(b)  # not seeded from seed + epoch
    with pytest.raises(ValueError, match="seed must be an integer >= 0; got -1"):
        EpochShuffleSampler(100, -1)


@pytest.mark.parametrize(("epoch", "taken"), [(0, 2), (1, 3), (1, 0)])
def test_loader_state_resumes_mid_epoch_without_loading_skipped_batches(
    epoch: int, taken: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    loader = ramp_module().train_dataloader()
    loader.sampler.set_epoch(epoch)
    whole = epoch_ids(loader)
    batches = iter(loader)
    for _ in range(taken):
        next(batches)
    state = loader.state_dict()
    assert state == {"epoch": epoch, "batches": taken}

    loads = []
    getitems = WholeBatchDataset.__getitems__
    monkeypatch.setattr(
        WholeBatchDataset, "__getitems__", lambda self, i: loads.append(i) or getitems(self, i)
    )
    resumed = ramp_module().train_dataloader()
    resumed.load_state_dict(state)
    assert resumed.sampler.epoch == epoch and len(resumed) == len(whole)
    assert epoch_ids(resumed) == whole[taken:]
    assert len(loads) == len(whole) - taken  # the skipped batches were never loaded
    assert resumed.state_dict() == {"epoch": epoch, "batches": len(whole)}
    assert epoch_ids(resumed) == whole  # the skip applies once


def test_completed_epoch_state_does_not_skip_the_next_epoch() -> None:
    loader = ramp_module().train_dataloader()
    epoch_ids(loader)
    assert loader.state_dict() == {"epoch": 0, "batches": 5}
    resumed = ramp_module().train_dataloader()
    resumed.load_state_dict(loader.state_dict())
    resumed.sampler.set_epoch(1)  # what Lightning does at the next epoch's start
    loader.sampler.set_epoch(1)
    assert epoch_ids(resumed) == epoch_ids(loader)


def test_train_loader_survives_distributed_sampler_injection() -> None:
    """Lightning under DDP re-instantiates the training loader with a distributed sampler
    (``use_distributed_sampler=True``); the result must stay resumable, per process."""
    dm = ramp_module(rows=35)  # 32 windows: two processes get 16 each, 4 batches of 4
    dm.batch_size = 4
    with _replace_dunder_methods(DataLoader, "dataset"), _replace_dunder_methods(BatchSampler):
        loader = dm.train_dataloader()  # as Lightning requests it, recording the init args
    seen = []
    for rank in range(2):
        sampler = DistributedSamplerWrapper(loader.sampler, num_replicas=2, rank=rank, seed=0)
        shard = _update_dataloader(loader, sampler)
        assert isinstance(shard, ResumableDataLoader) and shard.sampler is sampler
        sampler.set_epoch(1)
        whole = epoch_ids(shard)
        assert len(whole) == len(shard) == 4
        seen += flat(whole)
        batches = iter(shard)
        next(batches)
        state = shard.state_dict()
        again = _update_dataloader(loader, sampler)
        again.load_state_dict(state)
        assert epoch_ids(again) == whole[1:]
    assert sorted(seen) == flat(epoch_ids(dm.val_dataloader()))


class _Recorder(LightningModule):
    """Records which windows each training step sees; its one parameter never moves."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.seen: list[list[float]] = []

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        self.seen.append(window_ids(batch))
        return self.weight * batch.mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


def _fit(
    max_steps: int,
    num_workers: int,
    root: Path,
    ckpt_path: Path | None = None,
    callbacks: list | None = None,
) -> _Recorder:
    model = _Recorder()
    trainer = Trainer(
        max_steps=max_steps,
        default_root_dir=root,
        accelerator="cpu",
        limit_val_batches=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        callbacks=callbacks,
    )
    trainer.fit(model, ramp_module(num_workers=num_workers), ckpt_path=ckpt_path)
    return model


@pytest.mark.parametrize(
    ("saved_at", "num_workers"),
    [(3, 0), (7, 0), (5, 0), (10, 0), (3, 2)],
    ids=["mid-epoch-0", "mid-epoch-1", "epoch-boundary", "second-boundary", "mid-epoch-workers"],
)
def test_resumed_training_sees_the_uninterrupted_batches(
    saved_at: int, num_workers: int, tmp_path: Path
) -> None:
    """5 batches an epoch: a checkpoint after step 3 or 7 falls mid-epoch, after 5 or 10 on a
    boundary. Workers fetch indices ahead of the batches handed out; the count must not."""
    total = 12
    straight = _fit(total, num_workers, tmp_path / "straight").seen
    checkpoints = ModelCheckpoint(
        dirpath=tmp_path / "ckpt", every_n_train_steps=saved_at, save_top_k=-1, save_last=True
    )
    _fit(saved_at, num_workers, tmp_path / "first", callbacks=[checkpoints])
    resumed = _fit(total, num_workers, tmp_path / "resumed", ckpt_path=tmp_path / "ckpt/last.ckpt")
    assert resumed.seen == straight[saved_at:]


def test_fractions_must_be_numbers() -> None:
    with pytest.raises(TypeError, match=r"val_fraction must be a number; got '0\.1'"):
        WindowsDataModule(val_fraction="0.1")


def test_a_feature_constant_in_the_training_split_names_source_split_and_column() -> None:
    series = np.random.default_rng(0).standard_normal((1000, 2))
    series[:900, 1] = 3.0  # varies only in the validation and test parts
    np.save("part.npy", series)
    with pytest.raises(ValueError, match=(
        r"data.path 'part.npy', the training split \(the series' first part\): feature\(s\) "
        r"\['1'\] are constant"
    )):  # fmt: skip
        WindowsDataModule(path="part.npy", window=8, split="chronological")
