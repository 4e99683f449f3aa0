"""Tests for tsgen/writers.py: shards, their merge into index order, the CSV copy and file
permissions, on fake trainers; and ``TsgenTrainer.predict(output=...)`` on a tiny TimeBridge,
whose written samples are those of ``TimeBridge.sample``."""

from __future__ import annotations

import csv
import functools
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from lightning.pytorch import Trainer

from tsgen.cli import TsgenTrainer
from tsgen.data import WindowsDataModule
from tsgen.models import TimeBridge
from tsgen.nn import TrendSeasonTransformer
from tsgen.priors import NormalPrior
from tsgen.writers import PredictionWriter, merge_shards

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*does not have many workers:UserWarning",
    "ignore:You passed in a `val_dataloader` but have no `validation_step`",
    "ignore:.*LeafSpec",
)

TINY = functools.partial(TrendSeasonTransformer, d_model=16, encoder_layers=1, decoder_layers=1)


def _fake_trainer(
    rank: int = 0, datamodule: object = None, counts: list[int] | None = None
) -> SimpleNamespace:
    """What the writer reads of a trainer: its rank, strategy collectives and datamodule;
    ``counts``: what the ranks say they wrote (default: this process's count, one rank)."""
    strategy = SimpleNamespace(
        root_device=torch.device("cpu"),
        barrier=lambda name=None: None,
        broadcast=lambda obj, src=0: obj,
        all_gather=lambda tensor: tensor if counts is None else torch.tensor(counts),
    )
    return SimpleNamespace(
        global_rank=rank, is_global_zero=rank == 0, strategy=strategy, datamodule=datamodule
    )


def _values(index: list[int], shape: tuple[int, ...] = (3, 2)) -> torch.Tensor:
    """Samples that name their index: ``100 * index + position``."""
    positions = torch.arange(int(np.prod(shape)), dtype=torch.float32).reshape(shape)
    return 100.0 * torch.tensor(index, dtype=torch.float32).reshape(-1, *[1] * len(shape)) + (
        positions
    )


def _write(writer: PredictionWriter, rank: int, batch_idx: int, prediction: object) -> None:
    writer.write_on_batch_end(_fake_trainer(rank), None, prediction, None, None, batch_idx, 0)


def _indexed(index: list[int], shape: tuple[int, ...] = (3, 2)) -> dict[str, torch.Tensor]:
    return {"index": torch.tensor(index), "samples": _values(index, shape)}


def _names(directory: Path) -> set[str]:
    return {path.name for path in directory.iterdir()}


def test_shards_of_two_ranks_merge_in_index_order(tmp_path):
    writer = PredictionWriter(tmp_path / "out")
    writer.on_predict_start(_fake_trainer(0), None)
    # Lightning's unrepeated sampler: rank r of 2 gets r, r + 2, ...; rank 0 has a batch more.
    for rank, batches in ((1, [[1, 3], [5, 7]]), (0, [[0, 2], [4, 6], [8]])):
        for batch_idx, index in enumerate(batches):
            _write(writer, rank, batch_idx, _indexed(index))
    assert _names(tmp_path / "out") == {
        *(f"shard-rank000-batch{b:07d}.npz" for b in range(3)),
        *(f"shard-rank001-batch{b:07d}.npz" for b in range(2)),
    }
    writer.on_predict_end(_fake_trainer(0, counts=[3, 2]), None)
    out = tmp_path / "out"
    assert _names(out) == {"index.npy", "samples.npy", "samples.csv"}
    np.testing.assert_array_equal(np.load(out / "index.npy"), np.arange(9))
    np.testing.assert_array_equal(np.load(out / "samples.npy"), _values(list(range(9))).numpy())


def test_stale_shards_are_removed_when_prediction_starts(tmp_path):
    writer = PredictionWriter(tmp_path)
    _write(writer, 0, 0, _indexed([0, 1]))
    writer.on_predict_start(_fake_trainer(0), None)
    _write(writer, 0, 1, _indexed([0]))
    writer.on_predict_end(_fake_trainer(0), None)
    np.testing.assert_array_equal(np.load(tmp_path / "index.npy"), [0])


def test_a_new_prediction_leaves_no_file_of_an_earlier_one(tmp_path):
    """An imputation run (with a mask, small enough for a CSV), then a larger generation run into
    the same directory (no mask, no CSV): only the second run's files remain, and a file that no
    merge writes is left alone."""
    (tmp_path / "data.npy").write_bytes(b"the user's own")
    first = PredictionWriter(tmp_path, csv_max_values=12)
    first.on_predict_start(_fake_trainer(0), None)
    _write(first, 0, 0, {**_indexed([0, 1]), "mask": torch.ones(2, 3, 2, dtype=torch.bool)})
    first.on_predict_end(_fake_trainer(0), None)
    assert _names(tmp_path) == {"data.npy", "index.npy", "samples.npy", "mask.npy", "samples.csv"}
    second = PredictionWriter(tmp_path, csv_max_values=12)  # a new process makes a new writer
    second.on_predict_start(_fake_trainer(0), None)
    assert _names(tmp_path) == {"data.npy"}
    _write(second, 0, 0, _indexed([0, 1, 2, 3, 4]))  # 30 values: no CSV
    second.on_predict_end(_fake_trainer(0), None)
    assert _names(tmp_path) == {"data.npy", "index.npy", "samples.npy"}
    np.testing.assert_array_equal(np.load(tmp_path / "samples.npy"), _values(list(range(5))))
    assert (tmp_path / "data.npy").read_bytes() == b"the user's own"


def test_a_writer_removes_the_keys_it_merged_before(tmp_path):
    """Keys other than tsgen's own: the writer knows them from its earlier prediction."""
    writer = PredictionWriter(tmp_path)
    writer.on_predict_start(_fake_trainer(0), None)
    _write(writer, 0, 0, {**_indexed([0]), "extra": torch.zeros(1)})
    writer.on_predict_end(_fake_trainer(0), None)
    assert "extra.npy" in _names(tmp_path)
    writer.on_predict_start(_fake_trainer(0), None)
    _write(writer, 0, 0, _indexed([0]))
    writer.on_predict_end(_fake_trainer(0), None)
    assert _names(tmp_path) == {"index.npy", "samples.npy", "samples.csv"}


def test_a_merge_without_a_csv_removes_an_earlier_csv(tmp_path):
    (tmp_path / "samples.csv").write_text("sample,step\n")
    _write(PredictionWriter(tmp_path), 0, 0, _indexed([0], (2, 3, 2)))  # 4-d: no CSV
    merge_shards(tmp_path)
    assert _names(tmp_path) == {"index.npy", "samples.npy"}


def test_a_failed_clean_up_on_rank_zero_is_raised_on_every_rank(tmp_path):
    (tmp_path / "samples.csv").mkdir()  # unlink fails on a directory
    (tmp_path / "samples.csv" / "x").touch()
    with pytest.raises(OSError):
        PredictionWriter(tmp_path).on_predict_start(_fake_trainer(0), None)
    trainer = _fake_trainer(1)
    trainer.strategy.broadcast = lambda obj, src=0: "IsADirectoryError: samples.csv"
    message = "removing the earlier prediction's files failed on rank 0: IsADirectoryError"
    with pytest.raises(RuntimeError, match=message):
        PredictionWriter(tmp_path).on_predict_start(trainer, None)


def test_an_index_repeated_with_other_values_is_refused(tmp_path):
    writer = PredictionWriter(tmp_path)
    _write(writer, 0, 0, _indexed([0, 1]))
    _write(writer, 1, 0, {"index": torch.tensor([1, 2]), "samples": _values([5, 2])})
    with pytest.raises(RuntimeError, match=r"sample index 1 more than once with different 'samp"):
        writer.on_predict_end(_fake_trainer(0, counts=[1, 1]), None)
    with pytest.raises(RuntimeError, match="sample index 1 more than once"):
        merge_shards(tmp_path)  # the shards are left for inspection


def test_shards_rank_zero_cannot_see_are_an_error(tmp_path):
    """E.g. DDP on two nodes writing into directories that are not shared."""
    writer = PredictionWriter(tmp_path)
    _write(writer, 0, 0, _indexed([0, 2]))
    message = r"rank 1 wrote 2 prediction shards into .* but rank 0 finds 0 there \(with several"
    with pytest.raises(FileNotFoundError, match=message):
        writer.on_predict_end(_fake_trainer(0, counts=[1, 2]), None)


def test_other_ranks_raise_when_the_merge_fails_on_rank_zero(tmp_path):
    """Rank 0 shares its failure (here simulated by the broadcast), instead of leaving the other
    ranks waiting for it."""
    trainer = _fake_trainer(1)
    trainer.strategy.broadcast = lambda obj, src=0: "RuntimeError: sample index 1 ..."
    with pytest.raises(RuntimeError, match="failed on rank 0: RuntimeError: sample index 1"):
        PredictionWriter(tmp_path).on_predict_end(trainer, None)


def test_an_index_repeated_with_the_same_values_is_kept_once(tmp_path):
    """A ``DistributedSampler`` that pads ranks to equal counts repeats items; the copies are
    computed in other batches, so they may differ by round-off."""
    writer = PredictionWriter(tmp_path)
    _write(writer, 0, 0, _indexed([0, 2]))
    padded = _indexed([1, 0])
    padded["samples"][1] += 1e-4  # about 5e-7 of the largest value (205)
    _write(writer, 1, 0, padded)
    merge_shards(tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "index.npy"), [0, 1, 2])
    np.testing.assert_array_equal(np.load(tmp_path / "samples.npy"), _values([0, 1, 2]).numpy())


def test_keys_of_different_lengths_are_refused(tmp_path):
    writer = PredictionWriter(tmp_path)
    _write(writer, 0, 0, {"index": torch.tensor([0, 1]), "samples": _values([0])})
    with pytest.raises(ValueError, match="keys of different lengths"):
        merge_shards(tmp_path)


def test_a_tensor_prediction_is_written_as_samples(tmp_path):
    writer = PredictionWriter(tmp_path)
    _write(writer, 0, 0, _values([0, 1]))
    _write(writer, 0, 1, _values([2]))
    writer.on_predict_end(_fake_trainer(0), None)
    assert _names(tmp_path) == {"samples.npy", "samples.csv"}
    np.testing.assert_array_equal(np.load(tmp_path / "samples.npy"), _values([0, 1, 2]).numpy())


def test_predictions_that_are_not_tensors_are_refused(tmp_path):
    with pytest.raises(TypeError, match="the prediction's 'samples' is list"):
        _write(PredictionWriter(tmp_path), 0, 0, {"samples": [1.0]})


def test_merging_nothing_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no prediction shards"):
        merge_shards(tmp_path)


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_the_csv_is_in_long_form_with_the_datamodule_feature_names(tmp_path):
    writer = PredictionWriter(tmp_path)
    _write(writer, 0, 0, _indexed([3, 1]))
    writer.on_predict_end(_fake_trainer(0, SimpleNamespace(feature_names=["a", "b"])), None)
    rows = _read_csv(tmp_path / "samples.csv")
    assert rows[0] == ["sample", "step", "a", "b"]
    assert len(rows) == 1 + 2 * 3
    # Sorted by index, and the ``sample`` column is the index.
    assert rows[1] == ["1", "0", "100.0", "101.0"]
    assert rows[-1] == ["3", "2", "304.0", "305.0"]


@pytest.mark.parametrize(
    ("feature_names", "header"),
    [(["x", "y"], ["x", "y"]), (["only one"], ["feature_0", "feature_1"])],
)
def test_given_feature_names_override_the_datamodule(tmp_path, feature_names, header):
    writer = PredictionWriter(tmp_path, feature_names=feature_names)
    _write(writer, 0, 0, _indexed([0]))
    writer.on_predict_end(_fake_trainer(0, SimpleNamespace(feature_names=["a", "b"])), None)
    assert _read_csv(tmp_path / "samples.csv")[0] == ["sample", "step", *header]


@pytest.mark.parametrize(
    ("shape", "csv_max_values", "written"),
    [((3, 2), 12, True), ((3, 2), 11, False), ((2, 3, 2), 10**6, False), ((), 10**6, False)],
)
def test_the_csv_is_only_for_small_three_dimensional_samples(
    tmp_path, shape, csv_max_values, written
):
    writer = PredictionWriter(tmp_path, csv_max_values=csv_max_values)
    _write(writer, 0, 0, _indexed([0, 1], shape))  # 2 * 3 * 2 = 12 values for (3, 2)
    writer.on_predict_end(_fake_trainer(0), None)
    expected = (
        {"index.npy", "samples.npy", "samples.csv"} if written else {"index.npy", "samples.npy"}
    )
    assert _names(tmp_path) == expected


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_files_have_the_permissions_of_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        writer = PredictionWriter(tmp_path / "out")
        writer.on_predict_start(_fake_trainer(0), None)
        _write(writer, 0, 0, _indexed([0, 1]))
        shard = next((tmp_path / "out").glob("shard-*"))
        modes = {shard.name: stat.S_IMODE(shard.stat().st_mode)}
        writer.on_predict_end(_fake_trainer(0), None)
    finally:
        os.umask(previous)
    modes |= {path.name: stat.S_IMODE(path.stat().st_mode) for path in (tmp_path / "out").iterdir()}
    assert len(modes) == 4
    assert set(modes.values()) == {0o666 & ~umask}, modes


def test_a_failed_write_leaves_no_temporary_file(tmp_path):
    writer = PredictionWriter(tmp_path)
    _write(writer, 0, 0, {"index": torch.tensor([0]), "samples": _values([0])})
    (tmp_path / "samples.npy").mkdir()  # os.replace onto a directory fails
    with pytest.raises(OSError):
        merge_shards(tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------------------ end to end


def _series(path: Path, rows: int = 120) -> Path:
    rng = np.random.default_rng(0)
    steps = np.arange(rows)
    base = np.sin(2 * np.pi * steps / 7) + 0.05 * rng.standard_normal(rows) + 3.0
    np.save(path, np.stack([base, 2 * base], axis=1))
    return path


_QUIET = {
    "logger": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "enable_checkpointing": False,
}


def test_predict_writes_the_samples_of_the_python_api(tmp_path):
    """``TsgenTrainer.predict(output=...)`` in several batches (7 samples, 3 per batch) writes
    what ``model.sample(num_samples, seed)`` returns."""
    data = WindowsDataModule(path=str(_series(tmp_path / "s.npy")), window=12, batch_size=16)
    torch.manual_seed(0)
    model = TimeBridge(
        network=TINY,
        prior=NormalPrior(),
        window=12,
        n_features=2,
        warmup_steps=2,
        ema_every=1,
        n_intervals=4,
        num_samples=7,
        sample_batch_size=3,
        seed=5,
    )
    Trainer(max_steps=5, limit_val_batches=0, default_root_dir=tmp_path, **_QUIET).fit(model, data)
    out = tmp_path / "predictions"
    trainer = TsgenTrainer(default_root_dir=tmp_path, **_QUIET)
    assert trainer.predict(model, datamodule=data, output=str(out)) is None
    assert not any(isinstance(c, PredictionWriter) for c in trainer.callbacks)
    assert _names(out) == {"index.npy", "samples.npy", "samples.csv"}
    np.testing.assert_array_equal(np.load(out / "index.npy"), np.arange(7))
    expected = model.sample(7, seed=model.hparams.seed).numpy()
    np.testing.assert_allclose(np.load(out / "samples.npy"), expected, rtol=0, atol=1e-5)
    header = _read_csv(out / "samples.csv")[0]
    assert header == ["sample", "step", *data.feature_names]
