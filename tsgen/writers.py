"""Writing ``predict`` results to disk shard by shard, on every rank (ARCHITECTURE.md, "Scale").

Each prediction batch becomes one ``.npz`` shard written atomically by the rank that made it;
when prediction ends, rank 0 merges the shards into one ``.npy`` file per key, ordered by the
samples' ``index`` (so the result does not depend on the number of processes or the batch
size), adds a CSV copy of small sample sets, and removes the shards.
"""

from __future__ import annotations

import csv
import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter
from torch import Tensor

__all__ = ["PredictionWriter"]

log = logging.getLogger(__name__)

_SHARD_GLOB = "shard-rank*-batch*.npz"


class PredictionWriter(BasePredictionWriter):
    """Write every prediction batch to ``output_dir`` and merge the shards at the end.

    A batch's prediction is a tensor or a mapping of tensors with a common first dimension; an
    ``"index"`` entry (sample ids) orders the merged result and is checked for duplicates.

    Output files: ``<key>.npy`` per key (``samples.npy``, ``index.npy``, ...) and, when
    ``samples`` is a ``(N, L, C)`` array of at most ``csv_max_values`` numbers, ``samples.csv``
    in long form (``sample, step, <feature names>``).

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

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.is_global_zero:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            for stale in self.output_dir.glob(_SHARD_GLOB):
                stale.unlink()
        trainer.strategy.barrier("tsgen-prediction-writer-start")

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

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        trainer.strategy.barrier("tsgen-prediction-writer-end")
        if trainer.is_global_zero:
            names = self.feature_names or getattr(trainer.datamodule, "feature_names", None)
            written = merge_shards(self.output_dir, self.csv_max_values, names)
            log.info("predictions written to %s", ", ".join(str(p) for p in written))
        trainer.strategy.barrier("tsgen-prediction-writer-merged")


def merge_shards(
    output_dir: Path, csv_max_values: int = 1_000_000, feature_names: Sequence[str] | None = None
) -> list[Path]:
    """Merge the shards in ``output_dir`` into ``<key>.npy`` files (sorted by ``index`` when
    present), write ``samples.csv`` for small sets, delete the shards; returns the files."""
    shards = sorted(output_dir.glob(_SHARD_GLOB))
    if not shards:
        raise FileNotFoundError(f"no prediction shards in {output_dir}")
    parts: dict[str, list[np.ndarray]] = {}
    for shard in shards:
        with np.load(shard) as data:
            for key in data.files:
                parts.setdefault(key, []).append(data[key])
    merged = {key: np.concatenate(values) for key, values in parts.items()}
    if "index" in merged:
        order = np.argsort(merged["index"], kind="stable")
        index = merged["index"][order]
        duplicated = index[1:][index[1:] == index[:-1]]
        if duplicated.size:
            raise RuntimeError(
                f"prediction shards in {output_dir} hold sample index {int(duplicated[0])} more "
                "than once (did two runs write into the same directory?)"
            )
        merged = {key: value[order] for key, value in merged.items()}
    written = []
    for key, value in merged.items():
        path = output_dir / f"{key}.npy"
        _atomic_write(path, lambda handle, value=value: np.save(handle, value))
        written.append(path)
    samples = merged.get("samples")
    if samples is not None and samples.ndim == 3 and samples.size <= csv_max_values:
        path = output_dir / "samples.csv"
        _atomic_write(path, lambda handle: _write_csv(handle, samples, feature_names), text=True)
        written.append(path)
    for shard in shards:
        shard.unlink()
    return written


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


def _write_csv(handle: Any, samples: np.ndarray, feature_names: Sequence[str] | None) -> None:
    n_features = samples.shape[2]
    names = list(feature_names) if feature_names and len(feature_names) == n_features else None
    writer = csv.writer(handle)
    writer.writerow(["sample", "step", *(names or [f"feature_{c}" for c in range(n_features)])])
    for i, series in enumerate(samples):
        for step, row in enumerate(series):
            writer.writerow([i, step, *(repr(float(v)) for v in row)])


def _atomic_savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    _atomic_write(path, lambda handle: np.savez(handle, **arrays))


def _atomic_write(path: Path, write: Any, text: bool = False) -> None:
    """Write through a temporary file in the same directory, then rename it into place: a
    reader never sees a half-written file, and an interrupted run leaves none."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w" if text else "wb", **({"newline": ""} if text else {})) as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
