"""The imputation and forecasting tables (issue 4, item 6): TimeBridge with the interpolation
prior on Stocks and ETTh1 (chronological split, instance scaling), against the interpolation
prior alone and the last observed value, scored on the held-out entries of the test windows.

    python scripts/reproduce_conditional.py all --datasets stocks     # train, evaluate, table
    python scripts/reproduce_conditional.py train --datasets etth1 --tasks impute \\
        --accelerator gpu --chunk-steps 2000 --time-budget 540
    python scripts/reproduce_conditional.py evaluate --datasets stocks --runs-per-setting 5

Settings: imputation of windows of 24 with 70% of the entries missing at random (a fresh mask
per run); forecasting of the last 24 steps of windows of 48 from the first 24. Per run ``r``
(0..4): the mask and the model's sampling seed are ``r``; the model draws ``--samples`` samples
per window. Scores over the unobserved entries (``tsgen.metrics.conditional``): MSE of the
sample mean and the sample CRPS, in original units and in instance-scaled units (each window
mapped to ``[0, 1]`` by the datamodule's per-window min-max: of the whole ground-truth window
for imputation, a unit that does not change with the random mask; of the 24 observed steps for
forecasting). A point baseline's CRPS is its MAE (the CRPS of a single
value). For forecasting the interpolation prior *is* the last observed value (a trailing gap
takes the nearest observation), so one baseline row stands for both.

Each (dataset, task, method) writes ``docs/results/conditional/<dataset>-<task>-<method>.json``;
``table`` rebuilds ``docs/results.md`` from all records.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import torch
from _machine import device_description
from _runs import (
    REPO,
    apply_sampling,
    check_trained_like,
    checkpoint_steps,
    config_steps,
    run_command,
    run_parser,
    save_record,
    train_chunked,
    training_record,
)
from _tables import sampling_grid, write_results_md

from tsgen.api import load, load_datamodule
from tsgen.data import random_missing_mask
from tsgen.metrics import crps_samples, masked_mse
from tsgen.priors.interpolation import interpolate_missing

log = logging.getLogger("reproduce")

DATASETS = ("stocks", "etth1")
TASKS = ("impute", "forecast")
MISSING_RATIO = 0.7
HISTORY = 24


def _config(dataset: str, task: str) -> Path:
    return REPO / "configs" / "timebridge" / f"{dataset}_{task}.yaml"


def _run_dir(runs: Path, dataset: str, task: str) -> Path:
    return runs / "conditional" / dataset / task


def train(args: argparse.Namespace) -> None:
    for dataset in args.datasets:
        for task in args.tasks:
            config = _config(dataset, task)
            train_chunked(
                _run_dir(args.runs, dataset, task),
                config,
                [],
                max_steps=args.max_steps or config_steps(config)[0],
                chunk_steps=args.chunk_steps,
                accelerator=args.accelerator,
                time_budget_s=args.time_budget,
            )


def _unit_scale(values: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Original units -> each window's [0, 1] (``values``: ``(B, ..., L, C)``)."""
    while low.dim() < values.dim():
        low, high = low.unsqueeze(1), high.unsqueeze(1)
    return (values - low) / (high - low)


def _scores(
    samples: torch.Tensor,
    target: torch.Tensor,
    scored: torch.Tensor,
    low: torch.Tensor,
    high: torch.Tensor,
) -> dict[str, float]:
    """MSE of the sample mean and CRPS, original and instance units. ``samples``: (B, S, L, C)."""
    out = {}
    for units, (x, y) in {
        "original": (samples, target),
        "instance": (_unit_scale(samples, low, high), _unit_scale(target, low, high)),
    }.items():
        out[f"mse_{units}"] = float(masked_mse(x.mean(dim=1), y, scored))
        out[f"crps_{units}"] = float(crps_samples(x, y, scored))
    return out


def _last_value(values: torch.Tensor, mask: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """Each entry replaced by the last observation at or before it (the first observation
    before a feature's first one; ``fill[c]`` for a feature never observed in the window)."""
    length = values.shape[1]
    steps = torch.arange(length).view(1, length, 1).expand_as(mask)
    previous = torch.where(mask, steps, -1).cummax(dim=1).values
    first = torch.where(mask, steps, length).amin(dim=1, keepdim=True).expand_as(previous)
    index = torch.where(previous >= 0, previous, first).clamp(max=length - 1)
    carried = torch.where(first < length, values.nan_to_num().gather(1, index), fill)
    return torch.where(mask, values, carried)


def evaluate_runs(args: argparse.Namespace) -> None:
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    for dataset in args.datasets:
        for task in args.tasks:
            run_dir = _run_dir(args.runs, dataset, task)
            checkpoint = run_dir / "checkpoints" / "last.ckpt"
            steps = checkpoint_steps(checkpoint)
            if steps == 0:
                log.warning("no checkpoint in %s: train it first", run_dir)
                continue
            check_trained_like(checkpoint, _config(dataset, task))
            model = load(checkpoint, map_location=device)
            sampling = apply_sampling(model, _config(dataset, task))
            datamodule = load_datamodule(checkpoint)
            split = datamodule.test_split
            target = split.raw  # (B, L, C) original units
            low, high = split.scale.low, split.scale.high
            fill = datamodule.train_split.raw.mean(dim=(0, 1))
            results: dict[str, dict[str, list[float]]] = {}
            wall = {"timebridge": 0.0}
            for run in range(args.runs_per_setting):
                if task == "impute":
                    ratios = torch.full((len(target),), MISSING_RATIO, dtype=torch.float64)
                    generator = torch.Generator().manual_seed(run)
                    mask = random_missing_mask(target.shape, ratios, generator=generator)
                    tick = time.perf_counter()
                    samples = model.impute(target, mask, n_samples=args.samples, seed=run).cpu()
                    wall["timebridge"] += time.perf_counter() - tick
                    baselines = {
                        "interpolation": interpolate_missing(target, mask, fill),
                        "last_value": _last_value(target, mask, fill),
                    }
                else:
                    mask = torch.zeros_like(target, dtype=torch.bool)
                    mask[:, :HISTORY] = True
                    tick = time.perf_counter()
                    forecast = model.forecast(
                        target[:, :HISTORY], horizon=target.shape[1] - HISTORY,
                        n_samples=args.samples, seed=run,
                    ).cpu()  # fmt: skip
                    wall["timebridge"] += time.perf_counter() - tick
                    history = target[:, None, :HISTORY].expand(-1, args.samples, -1, -1)
                    samples = torch.cat([history, forecast.to(target.dtype)], dim=2)
                    baselines = {"last_value": _last_value(target, mask, fill)}
                scored = ~mask
                predictions = {"timebridge": samples.to(target.dtype)}
                predictions.update({k: v[:, None] for k, v in baselines.items()})
                for method, prediction in predictions.items():
                    scores = _scores(prediction, target, scored, low, high)
                    for key, value in scores.items():
                        results.setdefault(method, {}).setdefault(key, []).append(value)
                log.info("%s %s run %d: %s", dataset, task, run, {
                    m: round(v["mse_instance"][-1], 5) for m, v in results.items()
                })  # fmt: skip
            setting = (
                f"{MISSING_RATIO:.0%} of the entries missing at random, windows of "
                f"{target.shape[1]}"
                if task == "impute"
                else f"horizon {target.shape[1] - HISTORY} after {HISTORY} observed steps"
            )
            for method, metrics in results.items():
                if method == "timebridge":
                    provenance = (
                        f"{steps} of {config_steps(_config(dataset, task))[0]} steps trained; "
                        f"{args.samples} samples per window ({sampling['sampler']}, "
                        f"{sampling['n_intervals']} intervals, {sampling_grid(sampling)}) on "
                        f"{device_description(device)}"
                        f", {wall['timebridge']:.0f} s for {args.runs_per_setting} runs"
                    )
                else:
                    provenance = "deterministic point prediction; CRPS = MAE"
                record = {
                    "dataset": dataset,
                    "task": task,
                    "method": method,
                    "setting": setting,
                    "test_windows": len(target),
                    "runs": args.runs_per_setting,
                    "seeds": list(range(args.runs_per_setting)),
                    "samples_per_window": args.samples if method == "timebridge" else 1,
                    "sampling": sampling if method == "timebridge" else {},
                    "config": str(_config(dataset, task).relative_to(REPO)),
                    "steps_trained": steps,
                    "training": training_record(run_dir) if method == "timebridge" else [],
                    "precision": "float32",
                    "device": device_description(device),
                    "metrics": metrics,
                    "provenance": provenance,
                }
                path = save_record("conditional", f"{dataset}-{task}-{method}", record)
                log.info("wrote %s", path)


def main() -> None:
    parser = run_parser(__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--runs-per-setting", type=int, default=5)
    parser.add_argument("--samples", type=int, default=20, help="samples per test window")
    run_command(parser.parse_args(), train, evaluate_runs, write_results_md)


if __name__ == "__main__":
    main()
