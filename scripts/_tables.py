"""Rebuild ``docs/results.md`` from the committed run records under ``docs/results/`` (and from
nothing else), next to the published numbers the records are compared with."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from _runs import REPO, RESULTS, SCORED_FLOOR, SCORED_FLOOR_METHODS, interval, load_records

from tsgen.metrics.evaluate import METRICS, PAPER_METRICS

__all__ = ["method_title", "sampling_grid", "write_results_md"]

# Diffusion-TS (Yuan & Qiao, ICLR 2024), Table 1, L = 24, mean of 5 runs, as quoted in
# ../shared/design/timebridge.md ("Numbers to beat").
PUBLISHED = {
    "sines": {"context_fid": 0.006, "correlational": 0.015, "discriminative": 0.006,
              "predictive": 0.093},
    "stocks": {"context_fid": 0.147, "correlational": 0.004, "discriminative": 0.067,
               "predictive": 0.036},
    "etth1": {"context_fid": 0.116, "correlational": 0.049, "discriminative": 0.061,
              "predictive": 0.119},
}  # fmt: skip
PUBLISHED_PREDICTIVE_ON_REAL = {"sines": 0.094, "stocks": 0.036, "etth1": 0.121}

DATASET_TITLES = {"sines": "Sines (24 x 5)", "stocks": "Stocks (24 x 6)", "etth1": "ETTh1 (24 x 7)"}
MODEL_TITLES = {
    "real": "real vs real",
    "gp": "TimeBridge, GP prior, the dataset's config",
    "normal": "normal prior, the dataset's config",
    "gp_l1": "TimeBridge, GP prior, absolute error, hybrid, 40 intervals",
    "normal_l1": "normal prior, absolute error, hybrid, 40 intervals",
    "gp_reference_objective": "TimeBridge, GP prior, the reference's objective",
    "gp_l2": "TimeBridge, GP prior, squared error, 200 intervals",
    "gp_l2_mixed": "TimeBridge, GP prior, squared error, mixed times, 200 intervals",
    "gp_l2_upper": "TimeBridge, GP prior, squared error, SDE, 100 intervals (25 above t = 0.5)",
    "gp_l2_mixed_upper": (
        "TimeBridge, GP prior, squared error, mixed times, SDE, 100 intervals (25 above t = 0.5)"
    ),
    "gp_l2_mixed20_upper": (
        "TimeBridge, GP prior, squared error, mixed times (a fifth log-uniform), SDE, "
        "100 intervals (25 above t = 0.5)"
    ),
    "gp_l2_mixed20_t1e6_upper": (
        "TimeBridge, GP prior, squared error, mixed times (a fifth log-uniform) down to "
        "t = 1e-6, SDE, 100 intervals (25 above t = 0.5)"
    ),
    "gp_empirical": "TimeBridge, GP prior with the windows' covariance, the dataset's config",
    "gp_empirical_l2_upper": (
        "TimeBridge, GP prior with the windows' covariance, squared error, SDE, "
        "100 intervals (25 above t = 0.5)"
    ),
}
CONDITIONAL_METRICS = {
    "mse_instance": "MSE (instance-scaled)",
    "predictive_mean_mse_instance": "MSE of the predictive mean (instance-scaled)",
    "crps_instance": "CRPS (instance-scaled)",
    "crps_fair_instance": "fair CRPS (instance-scaled)",
    "mse_original": "MSE (original units)",
    "crps_original": "CRPS (original units)",
}
_WINDOW_FALLBACK_TITLE = (
    "TimeBridge (interpolation prior), squared error, SDE, 100 intervals (25 above t = 0.5), "
    "a lone observed value scaled over the median window range"
)
METHOD_TITLES = {
    "timebridge": "TimeBridge (interpolation prior)",
    "timebridge_l1_hybrid": (
        "TimeBridge (interpolation prior), absolute error, hybrid, 40 intervals, a lone observed "
        "value scaled over the global range"
    ),
    "timebridge_l2_upper": (
        "TimeBridge (interpolation prior), squared error, SDE, 100 intervals (25 above t = 0.5), "
        "a lone observed value scaled over the global range"
    ),
    "timebridge_l2_upper_window_fallback": _WINDOW_FALLBACK_TITLE,
    "timebridge_l2_upper_window_fallback_mixed": (
        f"{_WINDOW_FALLBACK_TITLE}, mixed times down to 1e-6"
    ),
    "timebridge_l2_upper_window_fallback_floor": f"{_WINDOW_FALLBACK_TITLE}, scale floor 0.5",
    "timebridge_l2_upper_window_fallback_price_floor": (
        f"{_WINDOW_FALLBACK_TITLE}, scale floor 0.5 on the prices"
    ),
    "timebridge_l2_upper_window_fallback_load_floor": (
        f"{_WINDOW_FALLBACK_TITLE}, scale floor 0.5 on the loads"
    ),
    "timebridge_l2_upper_window_fallback_unfloored": f"{_WINDOW_FALLBACK_TITLE}, no scale floor",
    "interpolation": "interpolation prior alone",
    "last_value": "last observed value",
}


def method_title(method: str, dataset: str) -> str:
    """The title of a conditional method's rows on ``dataset``: :data:`METHOD_TITLES`, with
    the floor of the variants that take their dataset's (:data:`SCORED_FLOOR`)."""
    title = METHOD_TITLES[method]
    if method not in SCORED_FLOOR_METHODS:
        return title
    floor = SCORED_FLOOR[dataset]
    return f"{title}, no scale floor" if floor == 0 else f"{title}, scale floor {floor:g}"


def _unconditional(records: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## Unconditional generation (L = 24)",
        "",
        "The papers' protocol (`tsgen.metrics.evaluate`, metrics.md), lower is better. Each cell "
        'is mean +- the 95% t-interval half-width. Repeats "5": repeats 0-4, which is what a '
        '5-repeat run reports (repeat r depends only on the seed and r); "20": all 20 repeats, '
        "the rows to compare models with. Diffusion-TS: published, 5 runs.",
        "",
    ]
    by_dataset: dict[str, dict[str, dict[str, Any]]] = {}
    for record in records:
        by_dataset.setdefault(record["dataset"], {})[record["model"]] = record
    for dataset in ("sines", "stocks", "etth1"):
        models = by_dataset.get(dataset)
        if not models:
            lines += [f"### {DATASET_TITLES[dataset]}", "", "Not run yet.", ""]
            continue
        order = [m for m in MODEL_TITLES if m in models]
        # One row per model and repeat count, one column per metric: the table grows down, not
        # across, as variants are added.
        header = ["model", "repeats", *(METRICS[metric].label for metric in PAPER_METRICS)]
        header.append("Discriminative: median (range)")
        published = [f"{PUBLISHED[dataset][metric]:.3f}" for metric in PAPER_METRICS]
        rows = [header, ["---"] * len(header)]
        rows.append(["Diffusion-TS (published)", "5 runs", *published, "-"])
        for model in order:
            results = models[model]["evaluation"]["results"]
            for repeats in (5, 20):
                values = {m: results.get(m, {}).get("values", [])[:repeats] for m in PAPER_METRICS}
                row = [MODEL_TITLES[model], str(repeats)]
                # The predictive score varies in the fourth decimal between repeats.
                row += [interval(values[m], 4 if m == "predictive" else 3) for m in PAPER_METRICS]
                row.append(_median_range(values["discriminative"]))
                rows.append(row)
        lines += [f"### {DATASET_TITLES[dataset]}", ""]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines += [
            "",
            f"Published predictive score of real data on real data: "
            f"{PUBLISHED_PREDICTIVE_ON_REAL[dataset]:.3f}.",
            "",
        ]
        for model in order:
            lines.append(f"- {MODEL_TITLES[model]}: {_provenance(models[model])}")
        lines.append("")
    return lines


def _median_range(values: list[float]) -> str:
    """``median (min-max)``: the discriminative score's repeats have outliers (one classifier
    that trains well against a generator's small defect), which the mean mixes in."""
    if not values:
        return "-"
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def sampling_grid(sampling: dict[str, Any]) -> str:
    """The sampler's grid of a record, e.g. ``rho 14 down to t = 1e-06``, after
    ``12 even intervals down to t = 0.5`` where the record spent some there; records from before
    the grid was recorded sampled with the reference's, rho 7 down to ``t = 1e-4``."""
    karras = (
        f"rho {sampling.get('rho', 7.0):g} down to t = {sampling.get('sample_t_min', 1e-4):.0e}"
    )
    upper = sampling.get("upper_intervals", 0)
    if not upper:
        return karras
    return f"{upper} even intervals down to t = {sampling['upper_split']:g}, then {karras}"


def _provenance(record: dict[str, Any]) -> str:
    evaluation = record["evaluation"]
    parts = []
    if "steps_trained" in record:
        trained_as = record.get("trained_as", record["model"])
        if trained_as != record["model"]:
            parts.append(f"the checkpoint of {MODEL_TITLES.get(trained_as, trained_as)}")
        parts.append(f"{record['steps_trained']} of {record['steps_planned']} steps trained")
        devices = sorted({chunk["device"] for chunk in record.get("training", [])})
        wall = sum(chunk["wall_s"] for chunk in record.get("training", []))
        if devices:
            parts.append(f"trained on {', '.join(devices)} in {wall / 60:.0f} min")
        sampling = record["sampling"]
        ema = "on" if sampling["use_ema"] else "off"
        parts.append(
            f"{sampling['n']} windows sampled ({sampling['sampler']}, {sampling['n_intervals']} "
            f"intervals, {sampling_grid(sampling)}, EMA {ema}) in {sampling['wall_s']} s"
        )
    elif "note" in record:
        parts.append(record["note"])
    if "renamed" in record:
        parts.append(record["renamed"]["note"])
    if "checkpoint_note" in record:
        parts.insert(0, record["checkpoint_note"])
    parts.append(
        f"evaluated on {record['evaluation_device']} in {evaluation['wall_time_s']:.0f} s, "
        f"{record['precision']}, commit {record['commit']}"
    )
    path = RESULTS / record["kind"] / f"{record['name']}.json"
    parts.append(f"[record]({path.relative_to(REPO / 'docs')})")
    return "; ".join(parts)


# The record kind (the folder of docs/results/) of the conditional scores of each split: the
# test windows report a model, the validation windows (the 5% of each series before the test
# part) choose between settings without looking at the test.
CONDITIONAL_KINDS = {"test": "conditional", "validation": "conditional_validation"}
_CONDITIONAL_INTRO = {
    "test": [
        "## Imputation and forecasting",
        "",
        "Chronological split (the last 5% of each series for testing), instance scaling; scored "
        "on the unobserved entries of the test windows only: MSE of the sample mean and the "
        "sample CRPS, in original units and with each window mapped to [0, 1] by its own "
        "min-max (`scripts/reproduce_conditional.py` says exactly how). In original units the "
        "mean over features is dominated by the feature of the largest scale (Stocks: the "
        "traded volume, about 1e7 shares, against prices of a few hundred dollars). Mean +- 95% "
        "t-interval over the runs (run r: mask and sampling seed r). The MSE of the sample "
        "mean and the sample CRPS grow as fewer samples are drawn (by Var / S and E|X - X'| / "
        "2S); the MSE of the predictive mean (`tsgen.metrics.predictive_mean_mse`) and the fair "
        "CRPS (`crps_samples(..., fair=True)`) are unbiased estimates of the predictive "
        "distribution's own scores, free of the sample count (docs/metrics.md); for the point "
        'baselines they equal the MSE and the CRPS. A "-" marks a record scored before these '
        "two existed whose run directory is gone. No published figure exists for these "
        "settings; these tables are the baseline for later work. Each record also holds every "
        "score per feature, and the two in original units.",
    ],
    "validation": [
        "## Imputation and forecasting: the validation windows",
        "",
        "Scored as above on the validation windows (the 5% of each series before the test "
        "part; `reproduce_conditional.py evaluate --split validation`), where settings are "
        "chosen without looking at the test windows.",
    ],
}


def _conditional(records: list[dict[str, Any]], split: str = "test") -> list[str]:
    """The tables of the conditional records of one split, a table per (dataset, task)."""
    if not records:
        return []
    lines = [*_CONDITIONAL_INTRO[split], ""]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["dataset"], record["task"]), []).append(record)
    for (dataset, task), group in sorted(groups.items()):
        setting = group[0]["setting"]
        header = ["method", *CONDITIONAL_METRICS.values()]
        rows = [header, ["---"] * len(header)]
        for record in sorted(group, key=lambda r: list(METHOD_TITLES).index(r["method"])):
            row = [method_title(record["method"], dataset)]
            row += [interval(record["metrics"].get(m, []), 4) for m in CONDITIONAL_METRICS]
            rows.append(row)
        name = DATASET_TITLES[dataset].split(" (")[0]
        runs = group[0]["runs"]
        where = "" if split == "test" else f" ({split} windows)"
        lines += [f"### {name}, {task}{where}: {setting}, {runs} runs", ""]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines.append("")
        for record in group:
            # Runs shared between processes or resumed may have been scored at other commits.
            commits = sorted(set(record.get("run_commits", [record.get("commit")])) - {None})
            parts = [record["provenance"]]
            if record.get("training"):
                parts.append(f"`{record['config']}`")
            if commits:
                parts.append(f"scored at commit {', '.join(commits)}")
            parts.append(f"[record](results/{record['kind']}/{record['name']}.json)")
            lines.append(f"- {method_title(record['method'], dataset)}: {'; '.join(parts)}")
        lines.append("")
    return lines


def write_results_md(path: Path = REPO / "docs" / "results.md") -> Path:
    """Rebuild ``docs/results.md`` from ``docs/results/**/*.json``."""
    lines = [
        "# Results",
        "",
        "Rebuilt by `python scripts/reproduce_unconditional.py table` (or the conditional "
        "script's) from the run records in `docs/results/`; do not edit by hand.",
        "",
    ]
    lines += _unconditional(load_records("unconditional"))
    for split, kind in CONDITIONAL_KINDS.items():
        lines += _conditional(load_records(kind), split)
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path
