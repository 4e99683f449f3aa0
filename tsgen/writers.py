"""Writing ``predict`` results to disk shard by shard, on every rank (ARCHITECTURE.md, "Scale").

Each prediction batch becomes one ``.npz`` shard written atomically by the rank that made it;
when prediction ends, rank 0 merges the shards into one ``.npy`` file per key, ordered by the
samples' ``index`` (so the result does not depend on the number of processes or the batch
size), adds a CSV copy of small sample sets, and removes the shards. A prediction first
removes the files an earlier one wrote into the directory, so that none of them pass for its own.

Under DDP, Lightning gives ``predict`` an ``UnrepeatedDistributedSampler``: rank ``r`` of ``R``
gets items ``r, r + R, r + 2R, ...``, so ranks may run one item (and one batch) more than
others, and no item is repeated. A predict loader with its own ``DistributedSampler`` pads the
ranks to equal counts by repeating items instead: the merge keeps one copy of an index seen more
than once with the same values (up to float round-off) and refuses one seen with different
values.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter
from torch import Tensor

from tsgen._files import atomic_write

__all__ = ["PredictionWriter", "merge_shards"]

log = logging.getLogger(__name__)

_SHARD_GLOB = "shard-rank*-batch*.npz"
_CSV_NAME = "samples.csv"
# The keys of tsgen's models' ``predict_step``: their ``<key>.npy`` files are a merge's output.
_MODEL_KEYS = ("index", "samples", "mask")


class PredictionWriter(BasePredictionWriter):
    """Write every prediction batch to ``output_dir`` and merge the shards at the end.

    A batch's prediction is a tensor (written as ``samples``) or a mapping of tensors with a
    common first dimension; an ``"index"`` entry (sample ids) orders the merged result and is
    checked for duplicates (see :func:`merge_shards`).

    Output files: ``<key>.npy`` per key (``samples.npy``, ``index.npy``, ...) and, when
    ``samples`` is a ``(N, L, C)`` array of at most ``csv_max_values`` numbers, ``samples.csv``
    in long form (``sample, step, <feature names>``; ``sample`` is the index when there is one).
    Shards are named ``shard-rank<global rank>-batch<batch index>.npz``; the files are written
    through a temporary file and renamed, with the permissions the umask gives.

    When a prediction starts, rank 0 removes what an earlier prediction left in ``output_dir``:
    its shards, ``samples.csv`` and the ``<key>.npy`` files of the keys tsgen's models predict
    (``index``, ``samples``, ``mask``) and of any key this writer merged before, so the directory
    never mixes two runs. Other ``.npy`` files are left alone: they may be the user's own.

    Rank 0 checks that it sees every shard the other ranks wrote (under DDP on several nodes,
    ``output_dir`` must be on a filesystem they all share). If the clean-up or the merge fails on
    rank 0 (missing shards, conflicting duplicates), every rank raises, rather than the other
    ranks waiting for rank 0 forever.

    Args:
        output_dir: where the files go (created if needed).
        csv_max_values: the largest ``samples`` array also written as CSV.
        feature_names: CSV column names (default: those of the trainer's datamodule, if any).
    """

    def __init__(
        self,
        output_dir: str | Path,
        csv_max_values: int = 1_000_000,
        feature_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)
        self.csv_max_values = csv_max_values
        self.feature_names = list(feature_names) if feature_names is not None else None
        self._shards_written = 0  # by this process in the current prediction
        # Keys merged by earlier predictions of this writer: their files are stale in the next.
        self._merged_keys: set[str] = set()

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._shards_written = 0
        failure: BaseException | None = None
        message = None
        if trainer.is_global_zero:
            try:
                self.output_dir.mkdir(parents=True, exist_ok=True)
                _remove_outputs(self.output_dir, {*_MODEL_KEYS, *self._merged_keys})
            except Exception as error:
                failure, message = error, f"{type(error).__name__}: {error}"
        # A collective, like a barrier: no rank writes a shard before rank 0 has removed the
        # earlier run's files (its shards would go with them), and every rank learns whether
        # the removal failed.
        message = trainer.strategy.broadcast(message, src=0)
        _raise_rank_zero_failure(failure, message, "removing the earlier prediction's files")

    def write_on_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        arrays = _as_arrays(prediction)
        name = f"shard-rank{trainer.global_rank:03d}-batch{batch_idx:07d}.npz"
        _atomic_savez(self.output_dir / name, arrays)
        self._shards_written += 1

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # A collective: when it returns, every rank has written its shards.
        count = torch.tensor([self._shards_written], device=trainer.strategy.root_device)
        counts = [int(n) for n in trainer.strategy.all_gather(count).reshape(-1).tolist()]
        failure: BaseException | None = None
        message = None
        if trainer.is_global_zero:
            names = self.feature_names or getattr(trainer.datamodule, "feature_names", None)
            try:
                _check_shard_counts(self.output_dir, counts)
                written = merge_shards(self.output_dir, self.csv_max_values, names)
            except Exception as error:
                failure, message = error, f"{type(error).__name__}: {error}"
            else:
                self._merged_keys.update(p.stem for p in written if p.suffix == ".npy")
                log.info("predictions written to %s", ", ".join(str(p) for p in written))
        # A collective, like a barrier: the other ranks learn whether rank 0's merge failed.
        message = trainer.strategy.broadcast(message, src=0)
        _raise_rank_zero_failure(failure, message, "merging the prediction shards")


def merge_shards(
    output_dir: str | Path,
    csv_max_values: int = 1_000_000,
    feature_names: Sequence[str] | None = None,
) -> list[Path]:
    """Merge the shards in ``output_dir`` into ``<key>.npy`` files, write ``samples.csv`` for
    small sets (and remove an earlier one otherwise), delete the shards; returns the files
    written.

    With an ``index`` key, the rows are sorted by it; an index found more than once (a
    ``DistributedSampler`` that pads ranks to equal counts repeats items) is kept once when all
    its rows agree (up to float round-off: ``1e-5`` relative, or ``1e-5`` times the key's
    largest absolute value) and is an error otherwise.

    Raises:
        FileNotFoundError: when there are no shards.
        ValueError: when the keys' first dimensions differ.
        RuntimeError: for an index whose rows differ (two runs writing into one directory).
    """
    output_dir = Path(output_dir)
    shards = sorted(output_dir.glob(_SHARD_GLOB))
    if not shards:
        raise FileNotFoundError(f"no prediction shards in {output_dir}")
    parts: dict[str, list[np.ndarray]] = {}
    for shard in shards:
        with np.load(shard) as data:
            for key in data.files:
                parts.setdefault(key, []).append(data[key])
    merged = {key: np.concatenate(values) for key, values in parts.items()}
    lengths = {key: len(value) for key, value in merged.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(
            f"prediction shards in {output_dir} hold keys of different lengths: {lengths}"
        )
    if "index" in merged:
        merged = _sort_by_index(merged, output_dir)
    written = []
    for key, value in merged.items():
        path = output_dir / f"{key}.npy"
        atomic_write(path, lambda handle, value=value: np.save(handle, value))
        written.append(path)
    samples = merged.get("samples")
    if samples is not None and samples.ndim == 3 and samples.size <= csv_max_values:
        path = output_dir / _CSV_NAME
        ids = merged.get("index")
        atomic_write(
            path, lambda handle: _write_csv(handle, samples, feature_names, ids), text=True
        )
        written.append(path)
    else:
        # An earlier merge's CSV would pass for a copy of these samples.
        (output_dir / _CSV_NAME).unlink(missing_ok=True)
    for shard in shards:
        shard.unlink()
    return written


def _remove_outputs(output_dir: Path, keys: set[str]) -> None:
    """Remove the shards in ``output_dir``, ``samples.csv`` and the ``<key>.npy`` of ``keys``."""
    stale = [*output_dir.glob(_SHARD_GLOB), output_dir / _CSV_NAME]
    stale += [output_dir / f"{key}.npy" for key in sorted(keys)]
    for path in stale:
        path.unlink(missing_ok=True)


def _raise_rank_zero_failure(
    failure: BaseException | None, message: str | None, action: str
) -> None:
    """Raise rank 0's own ``failure``, or, on the other ranks, the ``message`` rank 0 broadcast
    about it (``None``: no failure)."""
    if failure is not None:
        raise failure
    if message is not None:
        raise RuntimeError(f"{action} failed on rank 0: {message}")


def _check_shard_counts(output_dir: Path, counts: Sequence[int]) -> None:
    """Check that ``output_dir`` holds ``counts[r]`` shards of every rank ``r``."""
    for rank, count in enumerate(counts):
        found = len(list(output_dir.glob(f"shard-rank{rank:03d}-batch*.npz")))
        if found != count:
            raise FileNotFoundError(
                f"rank {rank} wrote {count} prediction shards into {output_dir} but rank 0 finds "
                f"{found} there (with several nodes, the output directory must be on a "
                "filesystem that all of them share)"
            )


def _sort_by_index(merged: dict[str, np.ndarray], output_dir: Path) -> dict[str, np.ndarray]:
    """The rows in ``index`` order, one per index; repeated rows must agree (see
    :func:`merge_shards`)."""
    order = np.argsort(merged["index"], kind="stable")
    index = merged["index"][order]
    first = np.ones(len(index), dtype=bool)
    first[1:] = index[1:] != index[:-1]
    if not first.all():
        repeated = np.flatnonzero(~first)
        # For each repeated row, the position of its index's first row.
        original = np.maximum.accumulate(np.where(first, np.arange(len(index)), 0))[repeated]
        for key, value in merged.items():
            value = value[order]
            agree = _rows_agree(value[repeated], value[original], value)
            if not agree.all():
                raise RuntimeError(
                    f"prediction shards in {output_dir} hold sample index "
                    f"{index[repeated][~agree][0].item()} more than once with different {key!r} "
                    "(did two runs write into the same directory?)"
                )
        order = order[first]
    return {key: value[order] for key, value in merged.items()}


def _rows_agree(a: np.ndarray, b: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """Per row: whether ``a`` and ``b`` hold the same values, floats up to round-off."""
    if np.issubdtype(a.dtype, np.inexact):
        finite = np.abs(whole[np.isfinite(whole)])
        scale = float(finite.max()) if finite.size else 0.0
        same = np.isclose(a, b, rtol=1e-5, atol=1e-5 * scale, equal_nan=True)
    else:
        same = a == b
    return same.reshape(len(a), -1).all(axis=1)


def _as_arrays(prediction: Any) -> dict[str, np.ndarray]:
    items = prediction.items() if isinstance(prediction, Mapping) else [("samples", prediction)]
    arrays = {}
    for key, value in items:
        if not isinstance(value, Tensor):
            raise TypeError(
                f"PredictionWriter writes tensors; the prediction's {key!r} is "
                f"{type(value).__name__}"
            )
        arrays[key] = value.detach().to("cpu").numpy()
    return arrays


def _write_csv(
    handle: Any,
    samples: np.ndarray,
    feature_names: Sequence[str] | None,
    index: np.ndarray | None = None,
) -> None:
    n_features = samples.shape[2]
    names = list(feature_names) if feature_names and len(feature_names) == n_features else None
    ids = index.tolist() if index is not None and index.ndim == 1 else range(len(samples))
    writer = csv.writer(handle)
    writer.writerow(["sample", "step", *(names or [f"feature_{c}" for c in range(n_features)])])
    for i, series in zip(ids, samples, strict=True):
        for step, row in enumerate(series):
            writer.writerow([i, step, *(repr(float(v)) for v in row)])


def _atomic_savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    atomic_write(path, lambda handle: np.savez(handle, **arrays))
