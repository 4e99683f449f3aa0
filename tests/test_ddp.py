"""Training and ``predict`` under Lightning's DDP strategy with two CPU processes (gloo).

A script (written into the test's directory, so that Lightning's ``ddp`` launcher can start the
second process by running it again) trains a tiny TimeBridge a few steps, saves a checkpoint,
and predicts from it with ``TsgenTrainer.predict(output=...)``, recording on every rank the
prediction batches it ran and the shards it left before rank 0 merged them. The test checks
that every rank's shards were written once, cover every sample once, and that the merged
samples equal a single-process ``predict`` from the same checkpoint (and ``model.sample``).

``strategy="ddp"`` (not ``ddp_spawn``): the launcher re-runs the script with ``LOCAL_RANK=1``;
the script is deterministic until the process group starts, so both ranks build the same
objects, and no model or callback has to be pickled to a spawned process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import tsgen
from tsgen.cli import TsgenTrainer
from tsgen.data import WindowsDataModule

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*does not have many workers:UserWarning",
    "ignore:.*LeafSpec",
)

# 9 samples in batches of 2 on 2 ranks: rank 0 gets samples 0, 2, 4, 6, 8 (3 batches), rank 1
# samples 1, 3, 5, 7 (2 batches); a padding sampler repeats sample 0 on rank 1.
NUM_SAMPLES, BATCH, TRAIN_STEPS = 9, 2, 4

SCRIPT = textwrap.dedent(
    """
    import functools, json, sys
    from pathlib import Path

    import numpy as np
    import torch
    from lightning.pytorch import Callback
    from torch.utils.data import DataLoader, DistributedSampler

    from tsgen.cli import TsgenTrainer, release_process_group
    from tsgen.data import WindowsDataModule
    from tsgen.models import TimeBridge
    from tsgen.nn import TrendSeasonTransformer
    from tsgen.priors import NormalPrior

    root = Path(sys.argv[1])
    num_samples, batch, steps = (int(a) for a in sys.argv[2:5])


    class Recorder(Callback):
        '''Per rank: the train sampler's indices, the predict batches, and the rank's shards
        as they are when prediction ends (before the writer, attached after this callback by
        TsgenTrainer.predict, merges them).'''

        def __init__(self, name):
            self.name, self.batches, self.record = name, [], {}

        def on_train_epoch_start(self, trainer, pl_module):
            loader = trainer.train_dataloader
            self.record["train_loader"] = type(loader).__name__
            self.record["train_sampler"] = type(loader.sampler).__name__
            self.record["train_indices"] = [int(i) for i in loader.sampler]

        def on_train_end(self, trainer, pl_module):
            self.record["global_step"] = trainer.global_step
            self._save(trainer)

        def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *args):
            self.batches.append([batch_idx, outputs["index"].tolist()])

        def on_predict_end(self, trainer, pl_module):
            out = Path(self.name)
            shards = {}
            for path in sorted(out.glob(f"shard-rank{trainer.global_rank:03d}-*.npz")):
                with np.load(path) as data:
                    shards[path.name] = data["index"].tolist()
            self.record.update(batches=self.batches, shards=shards)
            self.record["merged_before"] = (out / "samples.npy").exists()
            self._save(trainer)

        def _save(self, trainer):
            self.record["world_size"] = trainer.world_size
            name = f"{Path(self.name).name}-rank{trainer.global_rank}.json"
            (root / name).write_text(json.dumps(self.record))


    def trainer(recorder=None, **kwargs):
        return TsgenTrainer(
            accelerator="cpu",
            devices=2,
            strategy="ddp",
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            default_root_dir=root,
            callbacks=[recorder] if recorder else [],
            **kwargs,
        )


    data = WindowsDataModule(path=str(root / "s.npy"), window=12, batch_size=8)
    torch.manual_seed(0)
    model = TimeBridge(
        network=functools.partial(
            TrendSeasonTransformer, d_model=16, encoder_layers=1, decoder_layers=1
        ),
        prior=NormalPrior(),
        window=12,
        n_features=2,
        warmup_steps=2,
        ema_every=1,
        n_intervals=4,
        num_samples=num_samples,
        sample_batch_size=batch,
        seed=3,
    )
    fit = trainer(Recorder(str(root / "fit")), max_steps=steps, limit_val_batches=0)
    fit.fit(model, data)
    fit.save_checkpoint(root / "ddp.ckpt", weights_only=False)

    # Lightning's own sampler for predict (UnrepeatedDistributedSamplerWrapper).
    out = root / "ddp"
    trainer(Recorder(str(out))).predict(
        model, datamodule=data, ckpt_path=str(root / "ddp.ckpt"), weights_only=False,
        output=str(out),
    )

    # A loader with its own DistributedSampler, which pads rank 1 with sample 0.
    out = root / "padded"
    predictor = trainer(Recorder(str(out)))
    dataset = model.prediction_dataset(data.test_split)
    sampler = DistributedSampler(
        dataset, num_replicas=2, rank=predictor.global_rank, shuffle=False
    )
    loader = DataLoader(dataset, batch_size=batch, sampler=sampler, collate_fn=lambda b: b)
    predictor.predict(model, dataloaders=loader, output=str(out))
    release_process_group()
    """
)


def _series(path: Path, rows: int = 120) -> Path:
    rng = np.random.default_rng(0)
    base = np.sin(2 * np.pi * np.arange(rows) / 7) + 0.05 * rng.standard_normal(rows) + 3.0
    np.save(path, np.stack([base, 2 * base], axis=1))
    return path


def _record(root: Path, name: str, rank: int) -> dict:
    return json.loads((root / f"{name}-rank{rank}.json").read_text())


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    _series(root / "s.npy")
    script = root / "run_ddp.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    for key in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)  # the launcher sets these for the second process itself
    args = [str(root), str(NUM_SAMPLES), str(BATCH), str(TRAIN_STEPS)]
    # A session of its own: on a timeout (a rank stuck in a collective) both ranks are killed.
    process = subprocess.Popen(
        [sys.executable, str(script), *args],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"the DDP script timed out:\n{stdout[-3000:]}\n{stderr[-6000:]}")
    assert process.returncode == 0, stdout[-3000:] + stderr[-6000:]
    return root


def test_training_runs_on_both_ranks_with_disjoint_batches(ddp_run):
    records = [_record(ddp_run, "fit", rank) for rank in (0, 1)]
    for record in records:
        assert record["world_size"] == 2
        assert record["global_step"] == TRAIN_STEPS
        # Lightning rebuilt the resumable loader around a distributed sampler.
        assert record["train_loader"] == "ResumableDataLoader"
        assert record["train_sampler"] == "DistributedSamplerWrapper"
    indices = [record["train_indices"] for record in records]
    windows = len(WindowsDataModule(path=str(ddp_run / "s.npy"), window=12).train_split.values)
    assert len(indices[0]) == len(indices[1]) == -(-windows // 2)
    assert set(indices[0]) | set(indices[1]) == set(range(windows))
    assert len(set(indices[0]) & set(indices[1])) == 2 * len(indices[0]) - windows  # padding
    # The checkpoint holds the loader's position (each rank's: the ranks run the same batches).
    checkpoint = torch.load(ddp_run / "ddp.ckpt", map_location="cpu", weights_only=False)
    loops = checkpoint["loops"]["fit_loop"]["state_dict"]
    assert loops["combined_loader"] == [{"epoch": 0, "batches": TRAIN_STEPS}]


@pytest.mark.parametrize("name", ["ddp", "padded"])
def test_every_rank_writes_each_of_its_shards_once(ddp_run, name):
    seen = []
    for rank in (0, 1):
        record = _record(ddp_run, name, rank)
        assert not record["merged_before"]
        batch_ids = [batch_idx for batch_idx, _ in record["batches"]]
        assert batch_ids == list(range(len(batch_ids))) and batch_ids
        expected = {f"shard-rank{rank:03d}-batch{b:07d}.npz": ix for b, ix in record["batches"]}
        assert record["shards"] == expected
        seen.append(sorted(i for ix in expected.values() for i in ix))
    if name == "ddp":
        # UnrepeatedDistributedSampler: rank r gets r, r + 2, ...; no sample twice.
        assert seen == [list(range(0, NUM_SAMPLES, 2)), list(range(1, NUM_SAMPLES, 2))]
    else:
        # DistributedSampler pads rank 1 with sample 0 for equal counts.
        assert seen == [list(range(0, NUM_SAMPLES, 2)), [0, *range(1, NUM_SAMPLES, 2)]]
    names = {path.name for path in (ddp_run / name).iterdir()}
    assert names == {"index.npy", "samples.npy", "samples.csv"}


def test_ddp_samples_equal_a_single_process_run(ddp_run, tmp_path):
    model = tsgen.load(ddp_run / "ddp.ckpt", weights_only=False)
    data = WindowsDataModule(path=str(ddp_run / "s.npy"), window=12, batch_size=8)
    TsgenTrainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
    ).predict(model, datamodule=data, output=str(tmp_path))
    single = np.load(tmp_path / "samples.npy")
    assert single.shape == (NUM_SAMPLES, 12, 2)
    np.testing.assert_array_equal(np.load(tmp_path / "index.npy"), np.arange(NUM_SAMPLES))
    expected = model.sample(NUM_SAMPLES, seed=model.hparams.seed).numpy()
    np.testing.assert_allclose(single, expected, rtol=0, atol=1e-5)
    for name in ("ddp", "padded"):
        np.testing.assert_array_equal(np.load(ddp_run / name / "index.npy"), np.arange(NUM_SAMPLES))
        merged = np.load(ddp_run / name / "samples.npy")
        np.testing.assert_allclose(merged, single, rtol=0, atol=1e-5, err_msg=name)
    assert not torch.equal(torch.from_numpy(single[0]), torch.from_numpy(single[1]))
