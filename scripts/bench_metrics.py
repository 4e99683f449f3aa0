#!/usr/bin/env python
"""Benchmark of the papers' evaluation protocol (issue 4, item 2): wall time of Context-FID,
the correlational, discriminative and predictive scores on Stocks (3,662 windows of 24 x 6),
with all repeats trained at once, against the same metrics run one repeat at a time.

Goal: the full 5-repeat protocol in under 60 s on one H100, 20 repeats in under 3 minutes (the
TF1 reference needs about 45 minutes for 5, metrics.md). What is measured:

- ``batched``: ``tsgen.metrics.evaluate(real, fake, "paper", repeats=R)`` for each ``--repeats``
  value R, per metric and in total (the protocol's iteration counts: TS2Vec 600, discriminative
  2000, predictive 5000);
- ``one at a time`` (``--sequential``): each trained metric called R times with ``repeats=1``,
  which is what an implementation without stacking does; the ratio to ``batched`` is printed for
  each metric. Both sides run in this process, one after the other.

``real`` are the Stocks windows, ``fake`` the same windows shuffled with Gaussian noise of 5% of
each feature's standard deviation (shapes are what matters for the timing; the scores are
printed as a sanity check). ``--quick`` runs 2% of the iterations on 256 windows.

Usage::

    python scripts/bench_metrics.py --device cuda --repeats 5 20 --sequential --json bench.json
    python scripts/bench_metrics.py --device cpu --threads 1 --repeats 5
    python scripts/bench_metrics.py --device cpu --threads 1 --quick --sequential   # smoke test
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from _machine import device_description, git_commit, load_average

from tsgen.data import WindowsDataModule
from tsgen.metrics import (
    PAPER_METRICS,
    TRAINED_METRICS,
    context_fid,
    discriminative_score,
    evaluate,
    minmax_scale,
    predictive_score,
)

FULL_ITERATIONS = {"context_fid": 600, "discriminative": 2000, "predictive": 5000}
QUICK_FRACTION = 0.02
QUICK_WINDOWS = 256
SINGLE = {
    "context_fid": context_fid,
    "discriminative": discriminative_score,
    "predictive": predictive_score,
}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _data(quick: bool) -> tuple[np.ndarray, np.ndarray]:
    real = WindowsDataModule(dataset="stocks", window=24).train_split.raw.numpy()
    rng = np.random.default_rng(0)
    if quick:
        real = real[rng.permutation(len(real))[:QUICK_WINDOWS]]
    fake = real[rng.permutation(len(real))]
    fake = fake + rng.normal(0.0, 0.05, fake.shape) * real.std(axis=(0, 1))
    return real, fake


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, nargs="+", default=[5])
    parser.add_argument("--sequential", action="store_true", help="also one repeat at a time")
    parser.add_argument("--quick", action="store_true", help="2%% of the iterations, 256 windows")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--tf32", action="store_true", help="allow TF32 matmuls on CUDA")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    start = time.perf_counter()
    real, fake = _data(args.quick)
    scale = QUICK_FRACTION if args.quick else 1.0
    iterations = {k: max(1, round(v * scale)) for k, v in FULL_ITERATIONS.items()}
    print(
        f"{device_description(args.device)}; torch {torch.__version__}; threads "
        f"{torch.get_num_threads()}; TF32 {args.tf32}; commit {git_commit()}; load {load_average()}"
    )
    print(f"real {real.shape}, fake {fake.shape}; iterations {iterations}")

    rows = []
    for repeats in args.repeats:
        _synchronize(device)
        report = evaluate(
            real, fake, "paper", repeats=repeats, device=device, iterations=iterations,
            tf32=args.tf32,
        )  # fmt: skip
        row = {"repeats": repeats, "mode": "batched", "total_s": report.wall_time_s}
        row.update({name: report[name].seconds for name in PAPER_METRICS})
        row["values"] = {name: report[name].formatted() for name in PAPER_METRICS}
        rows.append(row)
        print(f"\nbatched, {repeats} repeats: {report.wall_time_s:.1f} s\n{report}")

        if args.sequential:
            # The metrics' inputs as evaluate() gives them: scaled to [0, 1] by the real windows.
            real_t, fake_t = minmax_scale(*(torch.from_numpy(x).float() for x in (real, fake)))
            sequential = {"repeats": repeats, "mode": "one at a time"}
            for name in TRAINED_METRICS:
                tick = time.perf_counter()
                for seed in range(repeats):
                    SINGLE[name](
                        real_t, fake_t, repeats=1, seed=seed, device=device,
                        iterations=iterations[name], tf32=args.tf32,
                    )  # fmt: skip
                _synchronize(device)
                sequential[name] = time.perf_counter() - tick
                print(
                    f"{name}: one repeat at a time {sequential[name]:.1f} s, batched "
                    f"{row[name]:.1f} s: {sequential[name] / row[name]:.1f}x"
                )
            rows.append(sequential)

    print(f"\ntotal wall time {time.perf_counter() - start:.1f} s")
    if args.json is not None:
        record = {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "device": device_description(args.device),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "threads": torch.get_num_threads(),
            "tf32": args.tf32,
            "commit": git_commit(),
            "load_average": load_average(),
            "iterations": iterations,
            "windows": len(real),
            "rows": rows,
        }
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
