"""The imputation and forecasting tables (issue 4, item 6): TimeBridge with the interpolation
prior on Stocks and ETTh1 (chronological split, instance scaling), against the interpolation
prior alone and the last observed value, scored on the held-out entries of the test windows.

    python scripts/reproduce_conditional.py all --datasets stocks     # train, evaluate, table
    python scripts/reproduce_conditional.py train --datasets etth1 --tasks impute \\
        --accelerator gpu --chunk-steps 2000 --time-budget 540
    python scripts/reproduce_conditional.py evaluate --datasets stocks --runs-per-setting 5
    python scripts/reproduce_conditional.py all --datasets stocks --tasks forecast \\
        --models timebridge_l2_upper                        # a variant of the config

Settings: imputation of windows of 24 with 70% of the entries missing at random (a fresh mask per
run); forecasting of the last 24 steps of windows of 48 from the first 24. Per run ``r`` (0..4): the
mask and the model's sampling seed are ``r``; the model draws ``--samples`` samples per window.
Scores over the unobserved entries (``tsgen.metrics.conditional``): MSE of the sample mean and the
sample CRPS, over all features and per feature, in original units and in instance-scaled units (each
window mapped to ``[0, 1]`` by the datamodule's per-window min-max: of the whole ground-truth window
for imputation, a unit that does not change with the random mask; of the 24 observed steps for
forecasting). A point baseline's CRPS is its MAE (the CRPS of a single value). For forecasting the
interpolation prior *is* the last observed value (a trailing gap takes the nearest observation), so
one baseline row stands for both.

``--models`` picks the TimeBridge models: ``timebridge`` is the (dataset, task) config as it
stands, trained in ``--runs/conditional/<dataset>/<task>/``; a variant (``MODELS``) is the config
with command-line overrides (a function of the dataset), trained in ``.../<task>_<variant>/``.
The baselines are scored beside every model and recorded with ``timebridge`` only (they do not
depend on the model).

Each run is saved in the run directory as it ends (``evaluation/run<r>.json``) and reused while
the checkpoint and the sampling settings stay the same: an interrupted evaluation resumes, and
processes given disjoint ``--only-runs`` share a setting's runs (the records are written by
whichever process finds every run scored). Each (dataset, task, method) writes
``docs/results/conditional/<dataset>-<task>-<method>.json``; ``table`` rebuilds
``docs/results.md`` from all records.

``--split validation`` scores the validation windows instead (the 5% of each series before the
test part), to choose between settings without looking at the test windows: its runs are saved in
``evaluation/validation/`` and its records in ``docs/results/conditional_validation/``, tabled
apart from the test windows'.

    python scripts/reproduce_conditional.py evaluate --datasets etth1 --tasks impute \\
        --models timebridge timebridge_l2_upper_window_fallback_unfloored --split validation \\
        --runs-per-setting 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from _machine import device_description
from _runs import (
    COMMIT,
    REPO,
    SCORED_FLOOR,
    UPPER_GRID,
    apply_sampling,
    check_trained_like,
    checkpoint_steps,
    config_steps,
    other_training_note,
    run_command,
    run_parser,
    save_record,
    train_chunked,
    training_record,
    write_json,
)
from _tables import CONDITIONAL_KINDS, sampling_grid, write_results_md

from tsgen.api import load, load_datamodule
from tsgen.data import forecast_mask, random_missing_mask
from tsgen.metrics import crps_samples, masked_mse, predictive_mean_mse
from tsgen.priors.interpolation import interpolate_missing

log = logging.getLogger("reproduce")

DATASETS = ("stocks", "etth1")
TASKS = ("impute", "forecast")
MISSING_RATIO = 0.7
HISTORY = 24
# What a saved run holds: a run saved before a change of the scores is scored again.
SCORES = (
    "mse and crps, original and instance units, overall and by feature; the predictive "
    "mean's mse and the fair crps"
)
# The configs as they stand.
DEFAULT_MODEL = "timebridge"
# The squared error and the grid that helped every unconditional config (docs/timebridge.md,
# "The squared-error loss" and "A grid for both ends of the bridge").
_L2_UPPER = ["--model.init_args.loss_norm", "l2", *UPPER_GRID]
# The same with features of fewer than two distinct observed values scaled over their median
# window range, not their global range (docs/timebridge.md, "The fallback scale").
_WINDOW_FALLBACK = [*_L2_UPPER, "--model.init_args.fallback_span", "window"]


def _scored_floor(*flags: str) -> Callable[[str], list[str]]:
    """``flags`` with the scale floor the variant was scored with on each dataset, its
    configs' then (``_runs.SCORED_FLOOR``): named, so that the variant keeps its meaning
    when a config's floor changes."""
    return lambda dataset: [*flags, "--model.init_args.scale_floor", str(SCORED_FLOOR[dataset])]


def _floored(floor: str, *flags: str, not_on: dict[str, str]) -> Callable[[str], list[str]]:
    """``flags`` with the scale floor ``floor``; on a dataset of ``not_on`` (dataset -> why:
    a floor for another dataset's features, or another variant's settings there) an error
    before anything runs."""

    def overrides(dataset: str) -> list[str]:
        if dataset in not_on:
            raise ValueError(f"this variant does not apply to {dataset}: {not_on[dataset]}")
        return [*flags, "--model.init_args.scale_floor", floor]

    return overrides


# Model name -> command-line overrides of the (dataset, task) config, a function of the dataset.
# Each variant names every setting it stands for, so that it means the same whichever config it
# changes; a floor per feature (a list) fits one dataset's features only, and its variant says
# which.
MODELS: dict[str, Callable[[str], list[str]]] = {
    DEFAULT_MODEL: lambda dataset: [],
    "timebridge_l2_upper": _scored_floor(*_L2_UPPER, "--model.init_args.fallback_span", "global"),
    # The imputation configs before the floor per feature (Stocks) and as they stand (ETTh1).
    "timebridge_l2_upper_window_fallback": _scored_floor(*_WINDOW_FALLBACK),
    # The same with a fifth of the training times log-uniform, down to the sampler's last time,
    # which kept Stocks' exact column relations in unconditional generation (docs/timebridge.md,
    # "What the outlying classifiers find").
    "timebridge_l2_upper_window_fallback_mixed": _scored_floor(
        *_WINDOW_FALLBACK,
        "--model.init_args.time_distribution", "mixed",
        "--model.init_args.log_fraction", "0.2",
        "--model.init_args.t_min", "1e-6",
    ),
    # The window-fallback settings with each window's feature scaled over at least half its
    # median window range, as etth1_impute.yaml has it (docs/timebridge.md, "The floor, measured").
    "timebridge_l2_upper_window_fallback_floor": _floored(
        "0.5", *_WINDOW_FALLBACK,
        not_on={"etth1": "timebridge_l2_upper_window_fallback has these settings there"},
    ),
    # Stocks only: the same floor on its five prices alone, as stocks_impute.yaml has it: it
    # narrowed their errors and widened the volume's (docs/timebridge.md, "The floor per
    # feature (Stocks)").
    "timebridge_l2_upper_window_fallback_price_floor": _floored(
        "[0.5, 0.5, 0.5, 0.5, 0.5, 0.0]", *_WINDOW_FALLBACK,
        not_on={"etth1": "a floor for Stocks' six features"},
    ),
    # ETTh1 only: its config's floor on the six loads alone: with it the oil temperature OT
    # is the one feature whose original-units MSE is above interpolation's (docs/timebridge.md,
    # "The floor per feature (ETTh1)").
    "timebridge_l2_upper_window_fallback_load_floor": _floored(
        "[0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.0]", *_WINDOW_FALLBACK,
        not_on={"stocks": "a floor for ETTh1's seven features"},
    ),
    # No floor: on ETTh1 most of the deficit it removed came from the features the window
    # fallback now scales (docs/timebridge.md, "The fallback scale").
    "timebridge_l2_upper_window_fallback_unfloored": _floored(
        "0.0", *_WINDOW_FALLBACK,
        not_on={"stocks": "timebridge_l2_upper_window_fallback has these settings there"},
    ),
    # The imputation configs before they took the window fallback and the squared error: the
    # reference's absolute error, the hybrid sampler on 40 intervals of the rho grid, the
    # global fallback scale.
    "timebridge_l1_hybrid": _scored_floor(
        "--model.init_args.loss_norm", "l1",
        "--model.init_args.sampler", "hybrid",
        "--model.init_args.n_intervals", "40",
        "--model.init_args.upper_intervals", "0",
        "--model.init_args.fallback_span", "global",
    ),
}  # fmt: skip


def _config(dataset: str, task: str) -> Path:
    return REPO / "configs" / "timebridge" / f"{dataset}_{task}.yaml"


def _run_dir(runs: Path, dataset: str, task: str, model: str = DEFAULT_MODEL) -> Path:
    """``.../<task>`` for the configs as they stand, ``.../<task>_<variant>`` for the model
    ``timebridge_<variant>``."""
    variant = model.removeprefix(f"{DEFAULT_MODEL}_")
    name = task if model == DEFAULT_MODEL else f"{task}_{variant}"
    return runs / "conditional" / dataset / name


def _check_models(datasets: list[str], models: list[str]) -> None:
    """Raise before anything runs if a variant does not apply to one of ``datasets``."""
    for dataset in datasets:
        for model in models:
            MODELS[model](dataset)


def train(args: argparse.Namespace) -> None:
    _check_models(args.datasets, args.models)
    for dataset in args.datasets:
        for task in args.tasks:
            for model in args.models:
                config = _config(dataset, task)
                train_chunked(
                    _run_dir(args.runs, dataset, task, model),
                    config,
                    MODELS[model](dataset),
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
) -> dict[str, float | list[float]]:
    """MSE of the sample mean and CRPS, and the sample-count-free pair: the predictive mean's
    MSE and the fair CRPS; in original and instance units, over all features
    (``mse_instance``, ``predictive_mean_mse_instance``, ``crps_fair_original``, ...) and per
    feature (``mse_instance_by_feature``, a list of ``C``). The MSE of the sample mean
    charges ``Var / S`` and the sample CRPS ``E|X - X'| / 2S`` for drawing ``S`` samples; the
    pair estimates the scores of the predictive distribution itself, so that models scored
    with different sample counts compare. A point prediction (``S = 1``) is its own
    predictive mean and has no spread: there the pair equals the MSE and the CRPS (= MAE).
    ``samples``: (B, S, L, C)."""
    point = samples.shape[1] == 1

    def metrics(x: torch.Tensor, y: torch.Tensor, where: torch.Tensor) -> dict[str, float]:
        mse = float(masked_mse(x.mean(dim=1), y, where))
        crps = float(crps_samples(x, y, where))
        return {
            "mse": mse,
            "crps": crps,
            "predictive_mean_mse": mse if point else float(predictive_mean_mse(x, y, where)),
            "crps_fair": crps if point else float(crps_samples(x, y, where, fair=True)),
        }

    out: dict[str, float | list[float]] = {}
    features = torch.arange(target.shape[-1])
    for units, (x, y) in {
        "original": (samples, target),
        "instance": (_unit_scale(samples, low, high), _unit_scale(target, low, high)),
    }.items():
        out.update({f"{k}_{units}": v for k, v in metrics(x, y, scored).items()})
        # One feature can dominate (Stocks' volume): say which.
        alone = [metrics(x, y, scored & (features == c)) for c in features.tolist()]
        for name in alone[0]:
            out[f"{name}_{units}_by_feature"] = [feature[name] for feature in alone]
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


def _run_scores(
    model: Any, task: str, run: int, target: torch.Tensor, fill: torch.Tensor,
    low: torch.Tensor, high: torch.Tensor, n_samples: int, name: str = DEFAULT_MODEL,
) -> tuple[dict[str, dict[str, float | list[float]]], float]:  # fmt: skip
    """Run ``run`` of one setting: its mask (or the forecast split), the samples of ``model``
    (scored as ``name``) and the baselines, scored. ``target``: the windows scored (test or
    validation) ``(B, L, C)`` in original units.

    Returns:
        ``{method: {metric: value}}`` and TimeBridge's sampling time in seconds.
    """
    if task == "impute":
        ratios = torch.full((len(target),), MISSING_RATIO, dtype=torch.float64)
        generator = torch.Generator().manual_seed(run)
        mask = random_missing_mask(target.shape, ratios, generator=generator)
        tick = time.perf_counter()
        samples = model.impute(target, mask, n_samples=n_samples, seed=run).cpu()
        wall = time.perf_counter() - tick
        baselines = {
            "interpolation": interpolate_missing(target, mask, fill),
            "last_value": _last_value(target, mask, fill),
        }
    else:
        mask = forecast_mask(target.shape, target.shape[1] - HISTORY)
        tick = time.perf_counter()
        forecast = model.forecast(
            target[:, :HISTORY], horizon=target.shape[1] - HISTORY, n_samples=n_samples,
            seed=run,
        ).cpu()  # fmt: skip
        wall = time.perf_counter() - tick
        history = target[:, None, :HISTORY].expand(-1, n_samples, -1, -1)
        samples = torch.cat([history, forecast.to(target.dtype)], dim=2)
        baselines = {"last_value": _last_value(target, mask, fill)}
    predictions = {name: samples.to(target.dtype)}
    predictions.update({k: v[:, None] for k, v in baselines.items()})
    scores = {m: _scores(p, target, ~mask, low, high) for m, p in predictions.items()}
    return scores, wall


def _digest(path: Path) -> str:
    """A short SHA-256 of a file's bytes: which checkpoint a saved run scored."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _saved_run(path: Path, key: dict[str, Any], name: str) -> dict[str, Any] | None:
    """A run of model ``name`` scored before (by this or another process) under the same
    ``key`` (checkpoint digest and steps, samples, sampler, the windows' split and count,
    scores, missing ratio, history), else ``None``. A run directory taken over from another
    model (a variant's copied as a config's that has taken its settings, a config's moved to
    the variant that names the settings it left) holds runs saved under the other name: they
    are scored again under this one."""
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    # Compared as JSON gives them back (tuples as lists).
    same = saved["key"] == json.loads(json.dumps(key)) and name in saved["scores"]
    return saved if same else None


def evaluate_runs(args: argparse.Namespace) -> None:
    """Score every (dataset, task): runs ``0 .. runs_per_setting - 1``, or those of
    ``--only-runs``, each saved in the run directory as it ends (``evaluation/run<r>.json``;
    ``evaluation/<split>/run<r>.json`` for a split other than the test) and
    reused while its key stays the same (``_saved_run``), so that an evaluation
    resumes where it stopped and several processes can share the runs; the records are written
    once every run has been scored."""
    _check_models(args.datasets, args.models)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.runs_per_setting < 1:
        raise ValueError(f"--runs-per-setting must be at least 1; got {args.runs_per_setting}")
    wanted = range(args.runs_per_setting)
    if args.only_runs is not None and not set(args.only_runs) <= set(wanted):
        raise ValueError(
            f"--only-runs must name runs below --runs-per-setting ({args.runs_per_setting}); "
            f"got {args.only_runs}"
        )
    for dataset in args.datasets:
        for task in args.tasks:
            for name in args.models:
                _evaluate_setting(args, device, dataset, task, name, wanted)


def _split_windows(datamodule: Any, split: str) -> tuple[Any, dict[str, Any]]:
    """The windows of ``split`` and what a saved run's key says of them. The test key keeps
    the one field saved test runs have always carried, so that they are reused."""
    if split == "test":
        windows = datamodule.test_split
        return windows, {"test_windows": len(windows.raw)}
    windows = datamodule.val_split
    return windows, {"split": split, "windows": len(windows.raw)}


def _evaluation_dir(run_dir: Path, split: str) -> Path:
    """Where a setting's scored runs are saved: the test runs as ever, the others apart."""
    evaluation = run_dir / "evaluation"
    return evaluation if split == "test" else evaluation / split


def _evaluate_setting(
    args: argparse.Namespace, device: str, dataset: str, task: str, name: str, wanted: range
) -> None:
    """Score the runs of model ``name`` on (dataset, task) that are not saved yet; write its
    records once every wanted run is saved."""
    run_dir = _run_dir(args.runs, dataset, task, name)
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    steps = checkpoint_steps(checkpoint)
    if steps == 0:
        log.warning("no checkpoint in %s: train it first", run_dir)
        return
    overrides = MODELS[name](dataset)
    check_trained_like(checkpoint, _config(dataset, task), overrides)
    model = load(checkpoint, map_location=device)
    sampling = apply_sampling(model, _config(dataset, task), overrides)
    datamodule = load_datamodule(checkpoint)
    windows, described = _split_windows(datamodule, args.split)
    target = windows.raw  # (B, L, C) original units
    low, high = windows.scale.low, windows.scale.high
    fill = datamodule.train_split.raw.mean(dim=(0, 1))
    key = {"checkpoint": _digest(checkpoint), "steps": steps, "samples": args.samples,
           "sampling": sampling, **described, "scores": SCORES,
           "missing_ratio": MISSING_RATIO, "history": HISTORY}  # fmt: skip
    evaluation = _evaluation_dir(run_dir, args.split)
    paths = {run: evaluation / f"run{run}.json" for run in wanted}
    for run, path in paths.items():
        if args.only_runs is not None and run not in args.only_runs:
            continue
        if _saved_run(path, key, name) is None:
            scores, wall = _run_scores(
                model, task, run, target, fill, low, high, args.samples, name
            )
            write_json(path, {"key": key, "commit": COMMIT,
                              "device": device_description(device),
                              "wall_s": round(wall, 1), "scores": scores})  # fmt: skip
            log.info("%s %s %s run %d, instance MSE: %s", dataset, task, args.split, run, {
                m: round(v["mse_instance"], 5) for m, v in scores.items()
            })  # fmt: skip
    # Read again at the end: another process may have scored runs meanwhile.
    runs = {run: _saved_run(path, key, name) for run, path in paths.items()}
    missing = [run for run, saved in runs.items() if saved is None]
    if missing:
        log.info("%s %s %s (%s): runs %s not scored yet; no record written", dataset, task,
                 name, args.split, missing)  # fmt: skip
        return
    _save_records(dataset, task, name, run_dir, steps, sampling, args, target, runs)


def _save_records(
    dataset: str, task: str, name: str, run_dir: Path, steps: int, sampling: dict[str, Any],
    args: argparse.Namespace, target: torch.Tensor, runs: dict[int, dict[str, Any]],
) -> None:  # fmt: skip
    """The record of model ``name`` from the scored runs (``runs[r]``: a saved run), and with
    the configs as they stand the baselines' records too, in the split's folder of
    ``docs/results/`` (``CONDITIONAL_KINDS``)."""
    ordered = [runs[run] for run in sorted(runs)]
    setting = (
        f"{MISSING_RATIO:.0%} of the entries missing at random, windows of {target.shape[1]}"
        if task == "impute"
        else f"horizon {target.shape[1] - HISTORY} after {HISTORY} observed steps"
    )
    devices = sorted({run["device"] for run in ordered})
    wall = sum(run["wall_s"] for run in ordered)
    training = training_record(run_dir)
    overrides = MODELS[name](dataset)
    methods = list(ordered[0]["scores"]) if name == DEFAULT_MODEL else [name]
    for method in methods:
        metrics: dict[str, list[Any]] = {}
        for run in ordered:
            for metric, value in run["scores"][method].items():
                metrics.setdefault(metric, []).append(value)
        model = method == name
        if model:
            provenance = (
                f"{steps} of {config_steps(_config(dataset, task))[0]} steps trained; "
                f"{args.samples} samples per window ({sampling['sampler']}, "
                f"{sampling['n_intervals']} intervals, {sampling_grid(sampling)}) on "
                f"{' and '.join(devices)}, {wall:.0f} s for {len(ordered)} runs"
            )
            note = other_training_note(training, overrides)
            if note is not None:
                provenance = f"{note}; {provenance}"
        else:
            provenance = "deterministic point prediction; CRPS = MAE"
        record = {
            "dataset": dataset,
            "task": task,
            "method": method,
            "setting": setting,
            "split": args.split,
            "windows": len(target),
            "runs": len(ordered),
            "seeds": sorted(runs),
            "samples_per_window": args.samples if model else 1,
            "sampling": sampling if model else {},
            "config": str(_config(dataset, task).relative_to(REPO)),
            "overrides": overrides if model else [],
            "steps_trained": steps,
            "training": training if model else [],
            "precision": "float32",
            "device": " and ".join(devices),
            "metrics": metrics,
            "provenance": provenance,
        }
        commits = [run["commit"] for run in ordered]
        if set(commits) != {COMMIT}:
            # Runs scored by earlier processes (a resumed or shared evaluation) say their own.
            record["run_commits"] = commits
        path = save_record(CONDITIONAL_KINDS[args.split], f"{dataset}-{task}-{method}", record)
        log.info("wrote %s", path)


def main() -> None:
    parser = run_parser(__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument(
        "--models",
        nargs="+",
        choices=tuple(MODELS),
        default=[DEFAULT_MODEL],
        help="TimeBridge models: the configs as they stand, or variants of them",
    )
    parser.add_argument("--runs-per-setting", type=int, default=5)
    parser.add_argument("--samples", type=int, default=20, help="samples per window")
    parser.add_argument(
        "--split", choices=tuple(CONDITIONAL_KINDS), default="test",
        help="the windows scored: the test windows, or the validation windows to choose settings",
    )  # fmt: skip
    parser.add_argument(
        "--only-runs", type=int, nargs="+", default=None,
        help="score only these runs (to share a setting's runs between processes)",
    )  # fmt: skip
    run_command(parser.parse_args(), train, evaluate_runs, write_results_md)


if __name__ == "__main__":
    main()
