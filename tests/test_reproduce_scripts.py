"""The reproduction scripts' own logic: the last-value baseline, resumable chunked training and
the tables rebuilt from run records (the runs themselves take hours; they are not run here)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@pytest.fixture(scope="module")
def scripts() -> dict:
    sys.path.insert(0, str(SCRIPTS))
    try:
        import _runs
        import _tables
        import reproduce_conditional
        import reproduce_unconditional
    finally:
        sys.path.remove(str(SCRIPTS))
    return {
        "runs": _runs,
        "tables": _tables,
        "conditional": reproduce_conditional,
        "unconditional": reproduce_unconditional,
    }


def test_last_value_never_reads_unobserved_entries(scripts: dict) -> None:
    values = torch.tensor([[[1.0, 10.0], [2.0, 11.0], [3.0, 12.0], [4.0, 13.0]]])
    mask = torch.tensor([[[False, False], [True, False], [False, False], [True, False]]])
    fill = torch.tensor([-5.0, -7.0])
    got = scripts["conditional"]._last_value(values, mask, fill)
    # Feature 0: the first observation before it, then carried forward; feature 1 is never
    # observed, so it takes the fill value, not its hidden last value 13.
    assert got[0, :, 0].tolist() == [2.0, 2.0, 2.0, 4.0]
    assert got[0, :, 1].tolist() == [-7.0] * 4


def test_time_budget_needs_chunks(scripts: dict, tmp_path: Path) -> None:
    config = SCRIPTS.parent / "configs" / "timebridge" / "stocks.yaml"
    with pytest.raises(ValueError, match="--time-budget needs --chunk-steps"):
        scripts["runs"].train_chunked(
            tmp_path / "run", config, [], max_steps=10, chunk_steps=None, accelerator="cpu",
            time_budget_s=60.0,
        )  # fmt: skip
    with pytest.raises(ValueError, match="multiple of the config's checkpoint interval"):
        scripts["runs"].train_chunked(
            tmp_path / "run", config, [], max_steps=10, chunk_steps=1500, accelerator="cpu"
        )


def test_sines_are_scored_in_their_own_units_and_stocks_rescaled(
    scripts: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # TimeGAN's sines lie in [0.5, 1] and the papers score them as they are; min-max
    # rescaling would double every error. Stocks are rescaled in the papers as here.
    module = scripts["unconditional"]
    calls: list[tuple[float, bool]] = []  # (smallest real value, scaled) per evaluation

    def fake_evaluate(real, fake, metrics, *, scaled, **kwargs):
        calls.append((float(real.min()), scaled))
        return SimpleNamespace(metadata={"precision": "float32"}, to_dict=dict)

    saved: list[str] = []
    monkeypatch.setattr(module, "evaluate", fake_evaluate)
    monkeypatch.setattr(module, "save_record", lambda kind, name, record: saved.append(name))
    args = argparse.Namespace(
        datasets=["sines", "stocks"], models=["real"], runs=None, device="cpu", repeats=1,
        progress=False,
    )  # fmt: skip
    module.evaluate_runs(args)
    assert saved == ["sines-real", "stocks-real"]
    (sines_min, sines_scaled), (_, stocks_scaled) = calls
    assert sines_min >= 0.5 and sines_scaled is True
    assert stocks_scaled is False


def test_reference_objective_overrides_follow_the_dataset(scripts: dict) -> None:
    overrides = scripts["unconditional"].MODELS["gp_reference_objective"]
    for dataset, sigma_data in [("sines", "0.5"), ("stocks", "0.1"), ("etth1", "0.1")]:
        flags = overrides(dataset)
        assert flags[flags.index("--model.init_args.preconditioning") + 1] == "false"
        assert flags[flags.index("--model.init_args.time_input") + 1] == "raw"
        assert flags[flags.index("--model.init_args.sigma_data") + 1] == sigma_data


def _unconditional_record(model: str, values: dict[str, list[float]]) -> dict:
    results = {name: {"values": v} for name, v in values.items()}
    record = {
        "kind": "unconditional",
        "name": f"stocks-{model}",
        "dataset": "stocks",
        "model": model,
        "commit": "abc1234",
        "precision": "float32",
        "evaluation_device": "cpu",
        "evaluation": {"results": results, "wall_time_s": 12.0},
    }
    if model == "real":
        record["note"] = "two random disjoint halves of the windows"
    else:
        record.update(
            steps_trained=10000,
            steps_planned=10000,
            training=[{"device": "CPU: test", "wall_s": 600.0}],
            sampling={"n": 3662, "sampler": "hybrid", "n_intervals": 40, "use_ema": True,
                      "wall_s": 90.0},
        )  # fmt: skip
    return record


def test_results_md_is_rebuilt_from_records(
    scripts: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tmp_path / "docs" / "results"
    monkeypatch.setattr(scripts["runs"], "RESULTS", results)
    monkeypatch.setattr(scripts["tables"], "RESULTS", results)
    monkeypatch.setattr(scripts["tables"], "REPO", tmp_path)
    twenty = [0.01 * (i % 5) for i in range(20)]
    paper = {"context_fid": twenty, "correlational": twenty, "discriminative": twenty,
             "predictive": twenty}  # fmt: skip
    for model in ("gp", "real"):
        path = results / "unconditional" / f"stocks-{model}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_unconditional_record(model, paper)))
    conditional = {
        "kind": "conditional", "name": "stocks-impute-timebridge", "dataset": "stocks",
        "task": "impute", "method": "timebridge", "setting": "70% missing", "runs": 5,
        "metrics": {"mse_instance": [0.01, 0.02, 0.01, 0.02, 0.015]}, "provenance": "here",
        "commit": "abc1234", "run_commits": ["fed4321", "abc1234", "fed4321", "abc1234", "abc1234"],
    }  # fmt: skip
    validation = {**conditional, "kind": "conditional_validation", "runs": 3,
                  "metrics": {"mse_instance": [0.03, 0.03, 0.03]}}  # fmt: skip
    for record in (conditional, validation):
        path = results / record["kind"] / "stocks-impute-timebridge.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(record))

    text = scripts["tables"].write_results_md(tmp_path / "results.md").read_text()
    assert "### Stocks (24 x 6)" in text and "### Sines (24 x 5)\n\nNot run yet." in text
    table = [line for line in text.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    column = header.index("Discriminative")
    gp = scripts["tables"].MODEL_TITLES["gp"]
    cells = {
        tuple(row[:2]): row[column]
        for row in ([cell.strip() for cell in line.strip("|").split("|")] for line in table[2:])
    }
    # Repeats 0-4 are 0, .01, .02, .03, .04; real data comes before the GP model.
    assert cells["Diffusion-TS (published)", "5 runs"] == "0.067"
    assert cells["real vs real", "5"] == cells[gp, "5"] == "0.020 +- 0.020"
    assert cells["real vs real", "20"] == cells[gp, "20"] == "0.020 +- 0.007"
    median = header.index("Discriminative: median (range)")
    assert table[4].split("|")[median + 1].strip() == "0.020 (0.000-0.040)"
    models = [line.split("|")[1].strip() for line in table[3:7]]
    assert models == ["real vs real"] * 2 + [gp] * 2
    assert "10000 of 10000 steps trained" in text
    assert "### Stocks, impute: 70% missing, 5 runs" in text
    assert "| TimeBridge (interpolation prior) | 0.0150 +- 0.0062 | - | - | - |" in text
    # The runs were scored at two commits (a shared or resumed evaluation): both are named.
    assert (
        "- TimeBridge (interpolation prior): here; scored at commit abc1234, fed4321; [rec" in text
    )
    # The validation windows' table comes after the test windows' and links its own record.
    test, held_out = text.split("## Imputation and forecasting: the validation windows")
    assert "0.0150 +- 0.0062" in test and "0.0300 +- 0.0000" not in test
    assert "### Stocks, impute (validation windows): 70% missing, 3 runs" in held_out
    assert "| TimeBridge (interpolation prior) | 0.0300 +- 0.0000 | - | - | - |" in held_out
    assert "(results/conditional_validation/stocks-impute-timebridge.json)" in held_out


def test_checkpoints_are_sampled_with_their_configs_current_sampler(
    scripts: dict, tmp_path: Path
) -> None:
    from tsgen.models import TimeBridge
    from tsgen.priors import NormalPrior

    apply_sampling = scripts["runs"].apply_sampling
    model = TimeBridge(prior=NormalPrior(), rho=7.0, sample_t_min=1e-4, n_intervals=10)
    config = tmp_path / "config.yaml"
    config.write_text("model:\n  init_args:\n    n_intervals: 25\n    churn: 0.5\n")
    settings = apply_sampling(model, config)
    # The config's values, else the library's defaults: never what the checkpoint held.
    assert settings["n_intervals"] == model.hparams.n_intervals == 25
    assert settings["churn"] == model.hparams.churn == 0.5
    assert settings["rho"] == model.hparams.rho == 14.0
    assert settings["sample_t_min"] == model.grid_t_min == 1e-6  # resolved for the record
    assert set(settings) == set(TimeBridge.SAMPLING_OPTIONS)
    # Command-line overrides win, read as the CLI reads them (1e-4 is a string in YAML 1.1).
    flags = ["--model.init_args.rho", "7.0", "--model.init_args.sample_t_min", "1e-4"]
    assert apply_sampling(model, config, flags)["sample_t_min"] == model.grid_t_min == 1e-4
    assert model.hparams.rho == 7.0
    stocks = SCRIPTS.parent / "configs" / "timebridge" / "stocks.yaml"
    settings = apply_sampling(model, stocks)
    assert (settings["sampler"], settings["n_intervals"], settings["upper_intervals"]) == (
        "sde",
        100,
        25,
    )
    assert (settings["rho"], settings["sample_t_min"]) == (14.0, 1e-6)
    config.write_text("model:\n  init_args:\n    rho: -2.0\n")
    with pytest.raises(ValueError, match=r"rho must be a positive number; got -2\.0"):
        apply_sampling(model, config)
    config.write_text("model:\n  init_args:\n")
    assert apply_sampling(model, config)["rho"] == 14.0


def test_the_reference_objective_is_sampled_on_the_reference_grid(scripts: dict) -> None:
    from tsgen.models import TimeBridge
    from tsgen.priors import NormalPrior

    model = TimeBridge(prior=NormalPrior(), preconditioning=False, time_input="raw")
    stocks = SCRIPTS.parent / "configs" / "timebridge" / "stocks.yaml"
    flags = scripts["unconditional"].MODELS["gp_reference_objective"]("stocks")
    settings = scripts["runs"].apply_sampling(model, stocks, flags)
    assert (settings["rho"], settings["sample_t_min"]) == (7.0, 1e-4)


def test_every_unconditional_variant_has_a_table_title(scripts: dict) -> None:
    assert set(scripts["unconditional"].MODELS) <= set(scripts["tables"].MODEL_TITLES)


@pytest.mark.parametrize(
    ("variant", "time_distribution"), [("gp_l2", None), ("gp_l2_mixed", "mixed")]
)
def test_the_squared_error_variants_train_l2_and_sample_with_200_intervals(
    scripts: dict, variant: str, time_distribution: str | None
) -> None:
    from tsgen.models import TimeBridge
    from tsgen.priors import NormalPrior

    flags = scripts["unconditional"].MODELS[variant]("stocks")
    settings = _resolved(scripts, "stocks", variant)
    assert settings["loss_norm"] == "l2"
    assert settings["time_distribution"] == (time_distribution or "uniform")
    stocks = SCRIPTS.parent / "configs" / "timebridge" / "stocks.yaml"
    model = TimeBridge(prior=NormalPrior())
    settings = scripts["runs"].apply_sampling(model, stocks, flags)
    assert settings["n_intervals"] == 200 and model.hparams.n_intervals == 200


def test_the_fifth_log_uniform_variant_trains_mixed_times_with_that_fraction(scripts: dict) -> None:
    flags = scripts["unconditional"].MODELS["gp_l2_mixed20_upper"]("stocks")
    given = dict(zip(flags[::2], flags[1::2], strict=True))
    assert given["--model.init_args.time_distribution"] == "mixed"
    assert given["--model.init_args.log_fraction"] == "0.2"
    assert given["--model.init_args.loss_norm"] == "l2"
    assert "gp_l2_mixed20_upper" not in scripts["unconditional"].SAMPLED_FROM


def test_the_provenance_names_an_even_upper_grid(scripts: dict) -> None:
    sampling_grid = scripts["tables"].sampling_grid
    assert sampling_grid({"rho": 14.0, "sample_t_min": 1e-6}) == "rho 14 down to t = 1e-06"
    upper = {"rho": 14.0, "sample_t_min": 1e-6, "upper_intervals": 25, "upper_split": 0.5}
    assert (
        sampling_grid(upper) == "25 even intervals down to t = 0.5, then rho 14 down to t = 1e-06"
    )


def test_a_sampling_variant_trains_and_scores_its_sources_checkpoint(
    scripts: dict, tmp_path: Path
) -> None:
    from tsgen.models import TimeBridge

    unconditional = scripts["unconditional"]
    sampling = {f"--model.init_args.{name}" for name in TimeBridge.SAMPLING_OPTIONS}
    for variant, source in unconditional.SAMPLED_FROM.items():
        training = [
            {k: v for k, v in zip(f[::2], f[1::2], strict=True) if k not in sampling}
            for f in (unconditional.MODELS[m]("stocks") for m in (variant, source))
        ]
        # Only the sampler may differ: the checkpoint is the source's.
        assert training[0] == training[1]
        assert unconditional._run_dir(tmp_path, "stocks", variant) == unconditional._run_dir(
            tmp_path, "stocks", source
        )


def test_the_provenance_names_the_checkpoint_a_sampling_variant_scored(scripts: dict) -> None:
    record = _unconditional_record("gp_l2_upper", {})
    record.update(trained_as="gp_l2", kind="unconditional", name="stocks-gp_l2_upper")
    assert (
        scripts["tables"]
        ._provenance(record)
        .startswith(
            "the checkpoint of TimeBridge, GP prior, squared error, 200 intervals; 10000 of 10000"
        )
    )


def _resolved(scripts: dict, dataset: str, variant: str) -> dict[str, Any]:
    """TimeBridge's arguments for a variant of a dataset's config."""
    from tsgen.models import TimeBridge

    config = SCRIPTS.parent / "configs" / "timebridge" / f"{dataset}.yaml"
    flags = scripts["unconditional"].MODELS[variant](dataset)
    return scripts["runs"].model_arguments(TimeBridge, config, flags)


@pytest.mark.parametrize(
    ("dataset", "variant"),
    [
        ("stocks", "gp_empirical"),
        ("etth1", "gp_l2_upper"),
        ("sines", "gp_empirical_l2_upper"),
    ],
)
def test_the_configs_hold_their_best_measured_variant(
    scripts: dict, dataset: str, variant: str
) -> None:
    assert _resolved(scripts, dataset, "gp") == _resolved(scripts, dataset, variant)


def test_every_record_names_a_variant_that_samples_as_it_did(scripts: dict) -> None:
    """Each committed record's variant, on today's config, still gives the sampler the record
    saw (options a record predates are not compared; ``sample_t_min`` is saved resolved)."""
    from tsgen.models import TimeBridge

    compared = 0
    for record in scripts["runs"].load_records("unconditional"):
        if "sampling" not in record:
            continue
        settings = _resolved(scripts, record["dataset"], record["model"])
        for name in set(TimeBridge.SAMPLING_OPTIONS) - {"sample_t_min"}:
            if name in record["sampling"]:
                assert settings[name] == record["sampling"][name], (record["name"], name)
                compared += 1
    assert compared >= 60


def test_the_l1_variants_differ_from_the_configs_only_where_the_configs_moved(
    scripts: dict,
) -> None:
    moved = {"loss_norm", "time_distribution", "log_fraction", "t_min", "sampler",
             "n_intervals", "upper_intervals", "churn"}  # fmt: skip
    for dataset in ("stocks", "etth1", "sines"):
        settings, config = _resolved(scripts, dataset, "gp_l1"), _resolved(scripts, dataset, "gp")
        assert settings["loss_norm"] == "l1" and settings["sampler"] == "hybrid"
        # Sines' and Stocks' configs also left the stationary kernel, which their L1 variants
        # keep.
        prior_moved = {"prior"} if dataset in ("sines", "stocks") else set()
        assert {k for k in settings if settings[k] != config[k]} <= moved | prior_moved
        assert settings["prior"]["init_args"]["kernel"] == "rbf"
        normal = _resolved(scripts, dataset, "normal_l1")
        assert normal.pop("prior") == "tsgen.priors.NormalPrior"
        assert {k: v for k, v in settings.items() if k != "prior"} == normal


def _fake_checkpoint(path: Path, **hyper_parameters: object) -> Path:
    torch.save({"global_step": 10, "hyper_parameters": hyper_parameters}, path)
    return path


def test_a_run_directory_trained_with_other_settings_is_refused(
    scripts: dict, tmp_path: Path
) -> None:
    runs = scripts["runs"]
    etth1 = SCRIPTS.parent / "configs" / "timebridge" / "etth1.yaml"
    config = _resolved(scripts, "etth1", "gp")
    trained = {name: config[name] for name in ("loss_norm", "time_distribution", "t_min")}
    trained["prior"] = {"class_path": "tsgen.priors.GaussianProcessPrior", "init_args": {}}
    checkpoint = _fake_checkpoint(tmp_path / "last.ckpt", **trained)
    runs.check_trained_like(checkpoint, etth1)
    # An old L1 run left in the config's directory, or the normal prior's in the GP prior's.
    # On ETTh1 the L1 settings differ from the config's training only in the loss.
    with pytest.raises(ValueError, match=r"\(loss_norm: checkpoint 'l2', run 'l1'\)"):
        runs.check_trained_like(checkpoint, etth1, scripts["unconditional"].L1_CONFIG)
    normal = scripts["unconditional"].NORMAL_PRIOR
    with pytest.raises(ValueError, match=r"prior: checkpoint 'tsgen.priors.GaussianProcessPr"):
        runs.check_trained_like(checkpoint, etth1, normal)
    # The prior's own arguments: the stationary kernel's run is not the empirical one's.
    trained["prior"]["init_args"] = {"kernel": "rbf", "noise_variance": None, "mode": "fit"}
    stationary = _fake_checkpoint(tmp_path / "rbf.ckpt", **trained)
    runs.check_trained_like(stationary, etth1)
    empirical = scripts["unconditional"].EMPIRICAL_COVARIANCE
    with pytest.raises(ValueError, match=r"prior kernel: checkpoint 'rbf', run 'empirical'; pr"):
        runs.check_trained_like(stationary, etth1, empirical)
    # Options a checkpoint predates are not compared.
    runs.check_trained_like(_fake_checkpoint(tmp_path / "old.ckpt", seed=0), etth1)
    # Resuming refuses before any training starts.
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    _fake_checkpoint(run_dir / "checkpoints" / "last.ckpt", **trained)
    with pytest.raises(ValueError, match="a run directory left from another config or variant"):
        runs.train_chunked(
            run_dir, etth1, normal, max_steps=20, chunk_steps=None, accelerator="cpu"
        )


def test_a_renamed_record_says_under_which_name_it_was_scored(scripts: dict) -> None:
    record = _unconditional_record("gp_l1", {})
    record.update(kind="unconditional", name="stocks-gp_l1")
    record["renamed"] = {"from": "stocks-gp", "note": "scored as `gp` at commit abc1234"}
    assert "; scored as `gp` at commit abc1234; evaluated on" in scripts["tables"]._provenance(
        record
    )


def test_a_record_says_where_its_checkpoint_came_from(scripts: dict) -> None:
    record = _unconditional_record("gp", {})
    record.update(kind="unconditional", name="stocks-gp", checkpoint_note="a copy of gp_l2's run")
    assert scripts["tables"]._provenance(record).startswith("a copy of gp_l2's run; 10000 of")


def test_a_checkpoint_trained_with_other_overrides_is_noted(scripts: dict) -> None:
    note = scripts["runs"].other_training_note
    kernel = ["--model.init_args.prior.init_args.kernel", "empirical"]
    chunks = [{"overrides": kernel}, {"overrides": kernel}]
    assert note(chunks, kernel) is None
    assert note([], []) is None  # no chunk log: nothing to say
    said = note(chunks, [])
    assert said is not None
    assert said == (
        "trained with `--model.init_args.prior.init_args.kernel empirical` (other flags for this "
        "model's settings, as checked)"
    )
    assert note([{"overrides": []}, *chunks], ["--x", "1"]).startswith(
        "trained with no overrides and `--model"
    )


class _CountingImputer:
    """Stands in for a trained TimeBridge: fills hidden entries with the observed mean plus
    seeded noise, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def impute(self, values: torch.Tensor, mask: torch.Tensor, *, n_samples: int, seed: int):
        self.calls += 1
        noise = torch.randn((len(values), n_samples, *values.shape[1:]),
                            generator=torch.Generator().manual_seed(seed))  # fmt: skip
        mean = values.nan_to_num().sum() / mask.sum()
        return torch.where(mask[:, None], values[:, None], mean + noise)


def test_conditional_runs_are_shared_between_processes_and_reused(
    scripts: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = scripts["conditional"]
    model = _CountingImputer()
    raw = torch.randn(6, 24, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def windows(values: torch.Tensor) -> SimpleNamespace:
        low, high = values.amin(dim=1, keepdim=True), values.amax(dim=1, keepdim=True)
        return SimpleNamespace(raw=values, scale=SimpleNamespace(low=low, high=high))

    # The validation windows: others than the test split's, and fewer of them.
    datamodule = SimpleNamespace(test_split=windows(raw), val_split=windows(raw[:4] + 1.0),
                                 train_split=SimpleNamespace(raw=raw))  # fmt: skip
    records: list[dict] = []
    kinds: list[str] = []
    monkeypatch.setattr(module, "checkpoint_steps", lambda checkpoint: 10)
    monkeypatch.setattr(module, "check_trained_like", lambda checkpoint, config, flags: None)
    monkeypatch.setattr(module, "load", lambda checkpoint, map_location: model)
    monkeypatch.setattr(module, "load_datamodule", lambda checkpoint: datamodule)
    monkeypatch.setattr(module, "apply_sampling", lambda model, config, flags: {
        "sampler": "hybrid", "n_intervals": 4, "rho": 14.0, "sample_t_min": 1e-6})  # fmt: skip

    def save_record(kind: str, name: str, record: dict) -> None:
        kinds.append(kind)
        records.append(record)

    monkeypatch.setattr(module, "save_record", save_record)
    checkpoint = tmp_path / "conditional" / "stocks" / "impute" / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"weights")

    def evaluate(
        only_runs: list[int] | None, models: tuple[str, ...] = ("timebridge",), split: str = "test"
    ) -> None:
        module.evaluate_runs(argparse.Namespace(
            datasets=["stocks"], tasks=["impute"], runs=tmp_path, device="cpu",
            runs_per_setting=3, samples=4, only_runs=only_runs, models=list(models), split=split,
        ))  # fmt: skip

    evaluate([0])  # one process's share: saved, but no record until every run is scored
    assert model.calls == 1 and records == []
    evaluate([1, 2])  # the other's: it finds run 0 and writes the records
    assert model.calls == 3
    methods = {record["method"]: record for record in records}
    assert set(methods) == {"timebridge", "interpolation", "last_value"}
    evaluation = checkpoint.parent.parent / "evaluation"
    run_files = sorted(evaluation.glob("run*.json"))
    saved = [json.loads(path.read_text())["scores"]["timebridge"] for path in run_files]
    assert methods["timebridge"]["metrics"]["mse_instance"] == [s["mse_instance"] for s in saved]
    assert methods["timebridge"]["seeds"] == [0, 1, 2]
    # The test runs' key keeps the field saved runs have always carried, so they are reused.
    assert {"test_windows": 6}.items() <= json.loads(run_files[0].read_text())["key"].items()
    assert "run_commits" not in methods["timebridge"]
    assert (methods["timebridge"]["split"], methods["timebridge"]["windows"]) == ("test", 6)
    assert set(kinds) == {"conditional"}
    by_feature = methods["timebridge"]["metrics"]["mse_instance_by_feature"]
    assert [len(values) for values in by_feature] == [2, 2, 2]

    records.clear()
    evaluate(None)  # resumed with nothing left: every run reused, the same records
    assert model.calls == 3
    assert {r["method"]: r["metrics"] for r in records} == {
        m: r["metrics"] for m, r in methods.items()
    }
    # The validation windows: runs of their own, saved apart, in records of another kind.
    records.clear()
    kinds.clear()
    evaluate(None, split="validation")
    assert model.calls == 6
    assert set(kinds) == {"conditional_validation"} and len(records) == 3
    validation = {record["method"]: record for record in records}["timebridge"]
    assert (validation["split"], validation["windows"]) == ("validation", 4)
    assert validation["metrics"] != methods["timebridge"]["metrics"]
    assert len(list((evaluation / "validation").glob("run*.json"))) == 3
    evaluate(None)  # the test runs are still saved
    assert model.calls == 6
    checkpoint.write_bytes(b"retrained")  # another checkpoint: nothing saved applies to it
    evaluate(None)
    assert model.calls == 9

    # A variant: its own run directory, and a record of its own without the baselines'.
    variant = tmp_path / "conditional" / "stocks" / "impute_l2_upper" / "checkpoints"
    variant.mkdir(parents=True)
    (variant / "last.ckpt").write_bytes(b"variant")
    records.clear()
    evaluate(None, models=("timebridge_l2_upper",))
    assert model.calls == 12
    assert [r["method"] for r in records] == ["timebridge_l2_upper"]
    assert records[0]["overrides"] == module.MODELS["timebridge_l2_upper"]("stocks")
    assert len(list((variant.parent / "evaluation").glob("run*.json"))) == 3
    kinds.clear()
    evaluate(None, models=("timebridge_l2_upper",), split="validation")
    assert model.calls == 15 and kinds == ["conditional_validation"]
    assert len(list((variant.parent / "evaluation" / "validation").glob("run*.json"))) == 3

    # The variant's run directory copied as the config's, which has taken its settings: the
    # same checkpoint, but the saved runs scored the variant, so the config's are scored anew.
    shutil.rmtree(checkpoint.parent.parent)
    shutil.copytree(variant.parent, checkpoint.parent.parent)
    records.clear()
    evaluate(None)
    assert model.calls == 18
    assert {r["method"] for r in records} == {"timebridge", "interpolation", "last_value"}
    with pytest.raises(ValueError, match="--only-runs must name runs below"):
        evaluate([3])
    with pytest.raises(ValueError, match="--runs-per-setting must be at least 1; got 0"):
        module.evaluate_runs(argparse.Namespace(
            datasets=["stocks"], models=["timebridge"], runs_per_setting=0, only_runs=None,
            device="cpu",
        ))  # fmt: skip


def test_every_conditional_model_has_a_title_and_a_run_directory(
    scripts: dict, tmp_path: Path
) -> None:
    module = scripts["conditional"]
    assert set(module.MODELS) <= set(scripts["tables"].METHOD_TITLES)
    directories = {module._run_dir(tmp_path, "stocks", "forecast", m) for m in module.MODELS}
    assert len(directories) == len(module.MODELS)
    assert module._run_dir(tmp_path, "stocks", "forecast", "timebridge").name == "forecast"
    assert module.MODELS["timebridge_l2_upper"]("stocks")[:2] == [
        "--model.init_args.loss_norm", "l2"
    ]  # fmt: skip


def test_conditional_variants_name_their_scale_floor(scripts: dict) -> None:
    module, tables = scripts["conditional"], scripts["tables"]

    def floor(model: str, dataset: str) -> str:
        flags = module.MODELS[model](dataset)
        return flags[flags.index("--model.init_args.scale_floor") + 1]

    # A floor for one dataset's features, or another variant's settings on a dataset: refused
    # there, before anything runs.
    not_on = {
        "timebridge_l2_upper_window_fallback_floor": "etth1",
        "timebridge_l2_upper_window_fallback_price_floor": "etth1",
        "timebridge_l2_upper_window_fallback_load_floor": "stocks",
        "timebridge_l2_upper_window_fallback_unfloored": "stocks",
    }
    for model, dataset in not_on.items():
        with pytest.raises(ValueError, match=f"this variant does not apply to {dataset}: "):
            module.MODELS[model](dataset)
    with pytest.raises(ValueError, match="does not apply to etth1: a floor for Stocks'"):
        module.train(argparse.Namespace(
            datasets=["stocks", "etth1"], models=["timebridge_l2_upper_window_fallback_price_floor"]
        ))  # fmt: skip
    runs = scripts["runs"]
    for model in set(module.MODELS) - {"timebridge"}:
        datasets = [d for d in module.DATASETS if not_on.get(model) != d]
        floors = {dataset: floor(model, dataset) for dataset in datasets}
        if model in runs.SCORED_FLOOR_METHODS:  # the floor its dataset's configs held
            assert floors == {d: str(runs.SCORED_FLOOR[d]) for d in datasets}
        else:
            assert len(set(floors.values())) == 1, model
    assert set(module.MODELS) >= runs.SCORED_FLOOR_METHODS
    title = "_l2_upper_window_fallback"
    assert tables.method_title(f"timebridge{title}", "etth1").endswith(", scale floor 0.5")
    assert tables.method_title(f"timebridge{title}", "stocks").endswith(", no scale floor")
    assert tables.method_title("timebridge", "stocks") == "TimeBridge (interpolation prior)"


@pytest.mark.parametrize("dataset", ["stocks", "etth1"])
def test_conditional_variants_mean_the_same_whichever_config_they_change(
    scripts: dict, dataset: str
) -> None:
    from tsgen.models import TimeBridge

    module = scripts["conditional"]
    config = module._config(dataset, "impute")

    def arguments(model: str) -> dict:
        return scripts["runs"].model_arguments(TimeBridge, config, module.MODELS[model](dataset))

    # The imputation configs hold the settings of a variant with their floor: Stocks' on the
    # prices alone, ETTh1's on every feature ...
    floored = {"stocks": "_price_floor", "etth1": ""}[dataset]
    assert arguments("timebridge") == arguments(f"timebridge_l2_upper_window_fallback{floored}")
    # ... and timebridge_l1_hybrid their earlier ones (the records renamed to it).
    earlier = arguments("timebridge_l1_hybrid")
    assert {k: earlier[k] for k in ("loss_norm", "sampler", "n_intervals", "upper_intervals")} == {
        "loss_norm": "l1", "sampler": "hybrid", "n_intervals": 40, "upper_intervals": 0
    }  # fmt: skip
    assert (earlier["fallback_span"], arguments("timebridge_l2_upper")["fallback_span"]) == (
        "global", "global"
    )  # fmt: skip
    later = arguments("timebridge_l2_upper_window_fallback")
    changed = {k for k in earlier if earlier[k] != later[k]}
    assert changed == {"loss_norm", "sampler", "n_intervals", "upper_intervals", "fallback_span"}


def test_scores_say_which_feature_the_error_comes_from(scripts: dict) -> None:
    target = torch.zeros(2, 4, 2, dtype=torch.float64)
    target[:, 0] = 1.0  # every window and feature spans [0, 1]: instance units = original
    samples = target[:, None].repeat(1, 3, 1, 1)
    samples[:, :, 1:, 1] += 2.0  # feature 1 off by 2 at every scored step, feature 0 exact
    scored = torch.zeros_like(target, dtype=torch.bool)
    scored[:, 1:] = True
    low, high = target.amin(dim=1, keepdim=True), target.amax(dim=1, keepdim=True)
    scores = scripts["conditional"]._scores(samples, target, scored, low, high)
    assert scores["mse_instance_by_feature"] == [0.0, 4.0]
    assert scores["crps_original_by_feature"] == [0.0, 2.0]
    assert scores["mse_instance"] == 2.0  # the features weigh by their scored entries
    # Equal samples have no spread: the sample-count-free pair equals the MSE and the CRPS.
    assert scores["predictive_mean_mse_instance_by_feature"] == [0.0, 4.0]
    assert scores["crps_fair_original"] == scores["crps_original"] == 1.0


def test_scores_free_of_the_sample_count(scripts: dict) -> None:
    score = scripts["conditional"]._scores
    target = torch.zeros(1, 2, 1, dtype=torch.float64)
    target[0, 0] = 1.0  # the window spans [0, 1]: instance units = original
    scored = torch.tensor([False, True]).view(1, 2, 1)
    low, high = target.amin(dim=1, keepdim=True), target.amax(dim=1, keepdim=True)
    # Two samples at y -+ 1: sample mean exact, unbiased variance 2, |X - y| = 1, |X - X'| = 2.
    samples = target[:, None].repeat(1, 2, 1, 1)
    samples[0, :, 1, 0] = torch.tensor([-1.0, 1.0])
    spread = score(samples, target, scored, low, high)
    assert spread["mse_instance"] == 0.0
    assert spread["predictive_mean_mse_instance"] == -1.0  # 0 - 2 / 2: an estimate, not a norm
    assert spread["crps_original"] == 0.5  # 1 - (2 + 2) / (2 * 4), pairs s = s' included
    assert spread["crps_fair_original"] == 0.0  # 1 - (2 + 2) / (2 * 2), pairs s != s' only
    # A point prediction (S = 1, the baselines) is its own mean, without spread.
    point = score(samples[:, 1:], target, scored, low, high)
    assert point["predictive_mean_mse_original"] == point["mse_original"] == 1.0
    assert point["crps_fair_instance"] == point["crps_instance"] == 1.0


def test_forecasts_are_scored_on_the_horizon_only(scripts: dict) -> None:
    module = scripts["conditional"]

    class Persistence:  # forecasts the last observed step, the last-value baseline's guess
        def forecast(self, history: torch.Tensor, *, horizon: int, n_samples: int, seed: int):
            last = history[:, None, -1:]
            return last.expand(-1, n_samples, horizon, -1)

    target = torch.randn(4, 48, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    low, high = target.amin(dim=1, keepdim=True), target.amax(dim=1, keepdim=True)
    fill = torch.zeros(2, dtype=torch.float64)
    scores, _ = module._run_scores(Persistence(), "forecast", 0, target, fill, low, high, 3)
    assert set(scores) == {"timebridge", "last_value"}
    expected = float(((target[:, 24:] - target[:, 23:24]) ** 2).mean())
    assert scores["timebridge"]["mse_original"] == pytest.approx(expected)
    for name, value in scores["last_value"].items():
        assert scores["timebridge"][name] == pytest.approx(value), name


@pytest.mark.parametrize(
    ("dataset", "empirical", "stationary"),
    [
        ("sines", "gp_empirical_l2_upper", "gp_l2_upper"),
        ("stocks", "gp_empirical", "gp_l2_mixed20_t1e6_upper"),
        ("etth1", "gp_empirical", "gp"),
    ],
)
def test_the_empirical_covariance_variants_change_only_the_prior(
    scripts: dict, dataset: str, empirical: str, stationary: str
) -> None:
    """Each windows'-covariance variant is its stationary twin with the kernel swapped; where
    the config moved to the windows' covariance (Sines, Stocks), the RBF settings live on as
    the variant its earlier record names."""
    variant = _resolved(scripts, dataset, empirical)
    config = _resolved(scripts, dataset, stationary)
    assert config["prior"]["init_args"]["kernel"] == "rbf"
    assert variant["prior"]["init_args"] == {
        **config["prior"]["init_args"],
        "kernel": "empirical",
        "noise_variance": pytest.approx(1e-6),
    }
    assert {k: v for k, v in variant.items() if k != "prior"} == {
        k: v for k, v in config.items() if k != "prior"
    }


def test_nested_flags_are_read_as_the_cli_reads_them(scripts: dict, tmp_path: Path) -> None:
    from tsgen.models import TimeBridge

    arguments = scripts["runs"].model_arguments
    etth1 = SCRIPTS.parent / "configs" / "timebridge" / "etth1.yaml"
    gp = "tsgen.priors.GaussianProcessPrior"

    def prior(*flags: str) -> Any:
        return arguments(TimeBridge, etth1, list(flags))["prior"]

    short = prior("--model.init_args.prior.kernel", "empirical")
    assert short == prior("--model.init_args.prior.init_args.kernel", "empirical")
    assert short["init_args"] == {"kernel": "empirical", "mode": "fit"}
    # Naming the same class again keeps its arguments; another class drops them.
    kept = prior("--model.init_args.prior.kernel", "empirical", "--model.init_args.prior", gp)
    assert kept == short
    normal = "tsgen.priors.NormalPrior"
    assert (
        prior("--model.init_args.prior.kernel", "empirical", "--model.init_args.prior", normal)
        == normal
    )
    assert prior("--model.init_args.prior.class_path", normal) == {
        "class_path": normal,
        "init_args": {},
    }
    # List values are read as the CLI reads them, floats included.
    noise = prior("--model.init_args.prior.noise_variance", "[1e-6, 2e-6]")["init_args"]
    assert noise["noise_variance"] == [1e-6, 2e-6]
    # A config's nested object with its arguments left blank.
    config = tmp_path / "blank.yaml"
    config.write_text(
        f"model:\n  init_args:\n    prior:\n      class_path: {gp}\n      init_args:\n"
    )
    blank = arguments(TimeBridge, config, ["--model.init_args.prior.kernel", "matern32"])
    assert blank["prior"] == {"class_path": gp, "init_args": {"kernel": "matern32"}}


def test_a_prior_argument_left_to_its_default_is_compared_too(
    scripts: dict, tmp_path: Path
) -> None:
    runs = scripts["runs"]
    etth1 = SCRIPTS.parent / "configs" / "timebridge" / "etth1.yaml"
    defaults = {"kernel": "empirical", "mode": "fit", "variance": None, "length_scale": None}
    saved = {**defaults, "noise_variance": 1e-6, "mean": None, "n_starts": 3, "max_iter": 500}
    prior = {"class_path": "tsgen.priors.GaussianProcessPrior", "init_args": saved}
    checkpoint = _fake_checkpoint(tmp_path / "last.ckpt", prior=prior)
    empirical = scripts["unconditional"].EMPIRICAL_COVARIANCE
    runs.check_trained_like(checkpoint, etth1, empirical)
    # The run leaves noise_variance to its default (None): not the checkpoint's training.
    with pytest.raises(ValueError, match=r"prior noise_variance: checkpoint 1e-06, run None"):
        runs.check_trained_like(checkpoint, etth1, empirical[:2])
