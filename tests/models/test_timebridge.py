"""Tests for tsgen/models/timebridge.py: training, checkpoints, exact resume, sampling and the
conditional tasks, on small data that the tests make."""

from __future__ import annotations

import functools
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

import tsgen
from tsgen.cli import TsgenTrainer
from tsgen.data import WindowsDataModule
from tsgen.models import TimeBridge, fourier_regression_loss
from tsgen.nn import TrendSeasonTransformer
from tsgen.priors import InterpolationPrior, NormalPrior, TrendPrior
from tsgen.priors.interpolation import interpolate_missing
from tsgen.sde import (
    VESDE,
    OrnsteinUhlenbeck,
    PerSampleNoise,
    bridge_coefficients,
    bridge_preconditioning,
    karras_grid,
    uniform_then_karras_grid,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*does not have many workers:UserWarning",
    "ignore:.*LeafSpec.*:DeprecationWarning",
)

TINY = functools.partial(TrendSeasonTransformer, d_model=16, encoder_layers=1, decoder_layers=1)


def _series(path: Path, rows: int = 240, copies: int = 2, seed: int = 0) -> Path:
    """A fast sine (period 7 steps) plus noise, repeated in ``copies`` identical features."""
    rng = np.random.default_rng(seed)
    steps = np.arange(rows)
    base = np.sin(2 * np.pi * steps / 7) + 0.05 * rng.standard_normal(rows) + 3.0
    np.save(path, np.repeat(base[:, None], copies, axis=1))
    return path


def _trainer(root: Path, steps: int, **kwargs) -> Trainer:
    options = {
        "max_steps": steps,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "limit_val_batches": 0,
        "default_root_dir": root,
        "enable_checkpointing": False,
    }
    return Trainer(**{**options, **kwargs})


def _model(**kwargs) -> TimeBridge:
    options = {
        "network": TINY,
        "prior": NormalPrior(),
        "window": 12,
        "n_features": 2,
        "warmup_steps": 3,
        "ema_every": 2,
        "n_intervals": 6,
    }
    return TimeBridge(**{**options, **kwargs})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TimeBridge, Path]:
    root = tmp_path_factory.mktemp("timebridge")
    data = WindowsDataModule(path=str(_series(root / "s.npy")), window=12, batch_size=16)
    model = _model()
    checkpoint = ModelCheckpoint(dirpath=root / "ckpt", save_last=True, every_n_train_steps=5)
    trainer = _trainer(root, 10, enable_checkpointing=True, callbacks=[checkpoint])
    trainer.fit(model, data)
    return model, root / "ckpt" / "last.ckpt"


def test_training_fits_the_prior_and_copies_the_scaler(trained):
    model, _ = trained
    assert model.prior.is_fitted
    assert bool(model.scaler.fitted)
    assert model.global_step == 10


def test_samples_are_in_original_units_and_independent_of_the_batch(trained):
    model, _ = trained
    full = model.sample(10, seed=3, batch_size=4)
    part = model.sample(3, seed=3)
    assert full.shape == (10, 12, 2)
    torch.testing.assert_close(full[:3], part, rtol=1e-6, atol=1e-5)
    # Unconditional samples are clamped to [-1, 1] in model space: the training range here.
    assert float(full.min()) >= float(model.scaler.data_min.min()) - 1e-5
    assert float(full.max()) <= float(model.scaler.data_max.max()) + 1e-5
    assert not torch.equal(model.sample(3, seed=4), part)


@pytest.mark.parametrize(
    ("sampler", "posterior_variance", "nfe"),
    [
        ("hybrid", "none", 17),
        ("sde", "none", 6),
        ("ode", "none", 10),
        ("ancestral", "none", 6),
        ("ancestral", "diagonal", 11),
    ],
)
def test_every_sampler_runs_with_its_evaluation_count(trained, sampler, posterior_variance, nfe):
    model, _ = trained
    calls = []
    hook = model.ema.average.register_forward_hook(lambda *_: calls.append(1))
    hp = model.hparams
    saved = hp.sampler, hp.posterior_variance
    try:
        hp.sampler, hp.posterior_variance = sampler, posterior_variance
        x = model.sample(4, seed=0)
    finally:
        hook.remove()
        hp.sampler, hp.posterior_variance = saved
    assert torch.isfinite(x).all()
    # 6 intervals: 3n - 1 (hybrid), n (sde: Euler-Maruyama), 1 + 2(n - 1) - 1 (ode: Heun after a
    # first Euler-Maruyama interval, Euler on the last), n (ancestral), 2n - 1 (with Tweedie).
    assert len(calls) == nfe


def test_checkpoint_loads_in_a_fresh_process_and_samples_the_same(trained, tmp_path):
    model, checkpoint = trained
    out = tmp_path / "fresh.npy"
    code = (
        "import numpy as np, tsgen; "
        f"m = tsgen.load({str(checkpoint)!r}, weights_only=False); "
        f"np.save({str(out)!r}, m.sample(5, seed=7).numpy())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded = tsgen.load(checkpoint, weights_only=False)
    here = loaded.sample(5, seed=7)
    np.testing.assert_allclose(np.load(out), here.numpy(), rtol=0, atol=1e-5)
    # The checkpoint is the state at step 10: the trained model's samples are the same.
    torch.testing.assert_close(model.sample(5, seed=7), here, rtol=0, atol=1e-5)


def test_python_built_checkpoints_need_weights_only_false(trained):
    _, checkpoint = trained
    with pytest.raises(ValueError, match="weights_only=False"):
        tsgen.load(checkpoint)


def test_load_refuses_files_that_are_not_tsgen_checkpoints(tmp_path):
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ValueError, match="not a tsgen checkpoint"):
        tsgen.load(path)
    torch.save({"tsgen_class": "os.system"}, path)
    with pytest.raises(ValueError, match="not a tsgen one"):
        tsgen.load(path)
    torch.save({"tsgen_class": "tsgen.models.timebridge.default_fourier_weight"}, path)
    with pytest.raises(ValueError, match="which is not a tsgen model"):
        tsgen.load(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tsgen.load(tmp_path / "missing.ckpt")


def test_load_names_a_file_torch_cannot_read(trained, tmp_path):
    """Text, a truncated checkpoint: a ValueError naming the file and torch's error."""
    text = tmp_path / "notes.ckpt"
    # torch's errors depend on the text: KeyError or UnpicklingError under weights_only.
    for content in ("hello\n", "not a checkpoint\n"):
        text.write_text(content)
        for weights_only in (True, False):
            with pytest.raises(ValueError, match=r"'.*notes\.ckpt' is not a readable torch ch"):
                tsgen.load(text, weights_only=weights_only)
    with pytest.raises(ValueError, match="is not a readable torch checkpoint"):
        tsgen.api.load_datamodule(text)
    _, checkpoint = trained
    truncated = tmp_path / "truncated.ckpt"
    whole = checkpoint.read_bytes()
    truncated.write_bytes(whole[: len(whole) // 2])
    message = r"'.*truncated\.ckpt' is not a readable .*: torch.load raised RuntimeError: Pytorch"
    with pytest.raises(ValueError, match=message):
        tsgen.load(truncated, weights_only=False)


def test_load_names_a_model_class_whose_module_is_missing(tmp_path):
    path = tmp_path / "renamed.ckpt"
    torch.save({"tsgen_class": "tsgen.nosuchmodule.X"}, path)
    message = (
        r"'.*renamed\.ckpt' names the model class 'tsgen\.nosuchmodule\.X', whose module "
        r"'tsgen\.nosuchmodule' cannot be imported \(ModuleNotFoundError: No module named"
    )
    with pytest.raises(ValueError, match=message):
        tsgen.load(path)


def _fit_steps(root: Path, steps: int, ckpt_path: str | None = None, every: int = 4):
    root.mkdir(parents=True, exist_ok=True)
    data = WindowsDataModule(path=str(_series(root / "s.npy")), window=12, batch_size=16)
    torch.manual_seed(0)  # the same initial weights in every run
    model = _model()
    checkpoint = ModelCheckpoint(dirpath=root / "ckpt", save_top_k=-1, every_n_train_steps=every)
    trainer = _trainer(
        root, steps, enable_checkpointing=True, callbacks=[checkpoint], accumulate_grad_batches=2
    )
    # A model built in Python keeps its module arguments as objects in the checkpoint.
    trainer.fit(model, data, ckpt_path=ckpt_path, weights_only=False)
    return model, trainer


def test_resume_continues_exactly(tmp_path):
    """Weights, EMA, optimizer, schedule, step and the training noise all continue: 10 steps
    straight equal 4 steps, a checkpoint, and 6 more in a new trainer (mid-epoch: 14 batches
    per epoch, 2 per optimizer step)."""
    straight, straight_trainer = _fit_steps(tmp_path / "a", 10)
    _fit_steps(tmp_path / "b", 4)
    (checkpoint,) = (tmp_path / "b" / "ckpt").glob("*step=4.ckpt")
    resumed, resumed_trainer = _fit_steps(tmp_path / "b2", 10, ckpt_path=str(checkpoint))
    assert resumed.global_step == straight.global_step == 10
    for (name, a), (_, b) in zip(
        straight.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    schedules = [t.lr_scheduler_configs[0].scheduler for t in (straight_trainer, resumed_trainer)]
    assert schedules[0].state_dict() == schedules[1].state_dict()


class _NaNAfter(torch.nn.Module):
    """A network whose output turns NaN from its ``after``-th call in training."""

    def __init__(self, window: int, n_features: int, after: int = 6) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.calls, self.after = 0, after

    def forward(self, x, t):
        if self.training:
            self.calls += 1
        out = self.scale * x
        return out * math.nan if self.calls >= self.after else out


def test_nan_loss_stops_training_and_names_the_last_good_checkpoint(tmp_path):
    data = WindowsDataModule(path=str(_series(tmp_path / "s.npy")), window=12, batch_size=16)
    model = _model(network=_NaNAfter)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_train_steps=2)
    trainer = _trainer(tmp_path, 20, enable_checkpointing=True, callbacks=[checkpoint])
    with pytest.raises(RuntimeError, match=r"training loss became NaN at step 5; the last good"):
        trainer.fit(model, data)
    last = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    assert last["global_step"] == 4
    weights = [v for v in last["state_dict"].values() if v.is_floating_point()]
    assert all(torch.isfinite(v).all() for v in weights)


@pytest.fixture(scope="module")
def imputer(tmp_path_factory: pytest.TempPathFactory) -> tuple[TimeBridge, WindowsDataModule]:
    root = tmp_path_factory.mktemp("impute")
    data = WindowsDataModule(
        path=str(_series(root / "s.npy", rows=1200)),
        window=12,
        batch_size=32,
        split="chronological",
        val_fraction=0.05,
        test_fraction=0.1,
        scaling="instance",
    )
    model = _model(
        network=functools.partial(TrendSeasonTransformer, d_model=32, encoder_layers=1),
        prior=InterpolationPrior(),
        task="impute",
        scaling="instance",
        missing_ratio=(0.3, 0.7),
        lr=2e-3,
        warmup_steps=20,
        ema_every=1,
        ema_decay=0.9,
        n_intervals=20,
        # Without it this small network is far from the identity at small t after 1000 steps
        # (mean |D - x0| 0.45 at t = 1e-3 against 0.01 with it).
        preconditioning=True,
    )
    _trainer(root, 1000).fit(model, data)
    return model, data


def test_imputation_keeps_observed_entries_and_beats_interpolation(imputer):
    """The two features are the same series: a model can copy what one feature observes into
    the other's gaps, which interpolation along time cannot."""
    model, data = imputer
    raw = data.test_split.raw[:48]
    generator = torch.Generator().manual_seed(1)
    mask = torch.rand(raw.shape, generator=generator) >= 0.5
    series = torch.where(mask, raw, torch.full_like(raw, math.nan))
    imputed = model.impute(series, n_samples=4, seed=0)
    assert imputed.shape == (48, 4, 12, 2)
    observed = mask[:, None].expand_as(imputed)
    assert torch.equal(imputed[observed], raw[:, None].expand_as(imputed)[observed])
    missing = ~mask
    model_mse = float((imputed.mean(1) - raw)[missing].square().mean())
    baseline = interpolate_missing(raw, mask, raw.nanmean(dim=(0, 1)), "linear")
    baseline_mse = float((baseline - raw)[missing].square().mean())
    assert model_mse < 0.75 * baseline_mse, (model_mse, baseline_mse)


def test_impute_and_forecast_take_numpy_and_answer_numpy(imputer):
    model, data = imputer
    history = data.test_split.raw[:3, :8].numpy()
    forecast = model.forecast(history, horizon=4, n_samples=2, seed=0)
    assert isinstance(forecast, np.ndarray) and forecast.shape == (3, 2, 4, 2)
    assert np.isfinite(forecast).all()
    again = model.forecast(torch.from_numpy(history), horizon=4, n_samples=2, seed=0)
    np.testing.assert_allclose(again.numpy(), forecast, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda m: m.impute(torch.zeros(10, 12, 2), torch.ones(10, 12, 3, dtype=torch.bool)),
            ValueError,
            r"impute\(\): mask has shape \(10, 12, 3\) but series has shape \(10, 12, 2\)",
        ),
        (
            lambda m: m.impute(torch.zeros(10, 12, 3)),
            ValueError,
            r"series has shape \(10, 12, 3\) but the model takes windows \(batch >= 1, 12, 2\)",
        ),
        (
            lambda m: m.impute(torch.zeros(0, 12, 2), torch.ones(0, 12, 2, dtype=torch.bool)),
            ValueError,
            r"impute\(\): series has shape \(0, 12, 2\) but the model takes windows \(batch >= 1",
        ),
        (
            lambda m: m.impute(
                torch.zeros(1, 12, 2), torch.ones(1, 12, 2, dtype=torch.bool), batch_size=0
            ),
            ValueError,
            "batch_size must be a positive integer; got 0",
        ),
        (
            lambda m: m.forecast(torch.zeros(2, 8, 3), horizon=4),
            ValueError,
            r"forecast\(\): history has shape \(2, 8, 3\) but the model takes \(batch >= 1, "
            r"steps, 2\)",
        ),
        (
            lambda m: m.forecast(torch.zeros(0, 8, 2), horizon=4),
            ValueError,
            r"forecast\(\): history has shape \(0, 8, 2\)",
        ),
        (
            lambda m: m.forecast(torch.tensor([math.inf]).expand(1, 8, 2), horizon=4),
            ValueError,
            r"forecast\(\): history holds 16 infinite values; mark missing values with NaN",
        ),
        (
            lambda m: m.impute(torch.zeros(2, 12, 2), torch.ones(2, 12, 2)),
            TypeError,
            "mask must be a bool array",
        ),
        (
            lambda m: m.impute(
                torch.full((1, 12, 2), math.nan), torch.ones(1, 12, 2, dtype=torch.bool)
            ),
            ValueError,
            "NaN or infinite values where mask is True",
        ),
        (
            lambda m: m.forecast(torch.zeros(2, 12, 2), horizon=12),
            ValueError,
            r"horizon must be an integer in \[1, 11\]",
        ),
        (
            lambda m: m.forecast(torch.zeros(2, 3, 2), horizon=4),
            ValueError,
            "history has 3 steps but a horizon of 4 needs at least",
        ),
        (lambda m: m.sample(4), ValueError, "sample\\(\\) needs a model trained with task='gen"),
    ],
)
def test_conditional_entry_points_name_what_is_wrong(imputer, call, error, message):
    model, _ = imputer
    with pytest.raises(error, match=message):
        call(model)


def test_predict_imputes_test_windows_whatever_the_batching(imputer, tmp_path):
    """``predict`` on an imputation model: each test window gets its own seeded mask (70%
    hidden) and ``num_samples`` completions in original units, observed entries kept, and the
    result does not depend on how many windows a predict batch holds."""
    model, data = imputer
    outputs = []
    for batch_size in (1000, 24):
        model.hparams.num_samples, model.hparams.sample_batch_size = 2, batch_size
        out = tmp_path / f"predict-{batch_size}"
        TsgenTrainer(logger=False, enable_progress_bar=False).predict(
            model, datamodule=data, output=str(out)
        )
        outputs.append({k: np.load(out / f"{k}.npy") for k in ("index", "samples", "mask")})
    first, second = outputs
    raw = data.test_split.raw.numpy()
    assert first["samples"].shape == (len(raw), 2, 12, 2)
    np.testing.assert_array_equal(first["index"], np.arange(len(raw)))
    np.testing.assert_array_equal(first["mask"], second["mask"])
    assert 0.6 < 1 - first["mask"].mean() < 0.8
    np.testing.assert_allclose(first["samples"], second["samples"], rtol=0, atol=1e-6)
    observed = np.broadcast_to(first["mask"][:, None], first["samples"].shape)
    np.testing.assert_array_equal(
        first["samples"][observed], np.broadcast_to(raw[:, None], observed.shape)[observed]
    )


def test_variance_exploding_bridges_train_and_sample(tmp_path):
    data = WindowsDataModule(path=str(_series(tmp_path / "s.npy")), window=12, batch_size=16)
    model = _model(process=VESDE(), preconditioning=True)
    _trainer(tmp_path, 4).fit(model, data)
    assert torch.isfinite(model.sample(4, seed=0)).all()


def test_ema_is_updated_after_every_ema_every_optimizer_steps(tmp_path):
    data = WindowsDataModule(path=str(_series(tmp_path / "s.npy")), window=12, batch_size=16)
    model = _model(ema_every=3)
    initial = [p.detach().clone() for p in model.network.parameters()]

    def ema_is_initial() -> bool:
        averaged = model.ema.average.parameters()
        return all(torch.equal(a, b) for a, b in zip(averaged, initial, strict=True))

    _trainer(tmp_path, 2).fit(model, data)
    assert ema_is_initial()
    _trainer(tmp_path, 3).fit(model, data)  # a new trainer: steps 1-3, the third updates
    assert not ema_is_initial()


def test_imputation_samples_do_not_depend_on_the_number_of_samples(imputer):
    model, data = imputer
    raw = data.test_split.raw[:3]
    series = raw.masked_fill(torch.rand(raw.shape, generator=torch.Generator()) < 0.5, math.nan)
    four = model.impute(series, n_samples=4, seed=5)
    two = model.impute(series, n_samples=2, seed=5, batch_size=3)
    torch.testing.assert_close(four[:, :2], two, rtol=0, atol=1e-6)


def test_trends_need_a_trend_prior(trained):
    model, _ = trained
    with pytest.raises(ValueError, match="needs a model with a trend prior"):
        model.sample(2, trends=torch.zeros(2, 12, 2))
    trend = _model(prior=TrendPrior(method="polynomial", degree=1))
    with pytest.raises(ValueError, match=(
        r"sample\(\): trends must be an array of shape \(n, window, features\) = \(2, 12, 2\); "
        r"got Tensor of shape \(3, 12, 2\)"
    )):  # fmt: skip
        trend.sample(2, trends=np.zeros((3, 12, 2)))


def test_a_process_with_per_coordinate_coefficients_is_refused():
    rates = OrnsteinUhlenbeck(rate=torch.tensor([0.5, 3.0]))
    with pytest.raises(ValueError, match=(
        r"process must have the same coefficients for every coordinate \(scalar ones\); "
        r"OrnsteinUhlenbeck's bridge coefficients have shapes \[\(2,\), \(2,\), \(2,\)\]"
    )):  # fmt: skip
        _model(process=rates)


def test_forecast_takes_a_numpy_integer_horizon(imputer):
    model, data = imputer
    history = data.test_split.raw[:2, :8]
    plain = model.forecast(history, horizon=4, n_samples=1)
    torch.testing.assert_close(model.forecast(history, horizon=np.int64(4), n_samples=1), plain)


def test_unconditional_models_refuse_conditional_calls(trained):
    model, _ = trained
    with pytest.raises(ValueError, match="needs a model trained with task='impute' or 'forecast'"):
        model.impute(torch.zeros(1, 12, 2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "forecast"}, r"task='forecast' needs horizon in \[1, window=12\)"),
        ({"task": "impute"}, "needs a prior conditioned on observed values"),
        ({"prior": InterpolationPrior()}, "needs a prior that samples without observed values"),
        ({"sampler": "euler"}, "sampler must be one of"),
        ({"posterior_variance": "full"}, "posterior_variance must be one of"),
        ({"missing_ratio": (0.5, 0.2)}, "missing_ratio must be"),
        ({"sigma_data": 0.0}, "sigma_data must be a positive"),
        ({"n_intervals": 1}, "n_intervals"),
        ({"scaling": "instance"}, "task='generate' needs scaling='global'"),
        ({"time_input": "sigma"}, "time_input must be one of"),
        ({"loss_weight": "edm"}, "loss_weight must be one of"),
        ({"loss_norm": "huber"}, "loss_norm must be one of"),
        ({"time_distribution": "normal"}, "time_distribution must be one of"),
        ({"log_fraction": 1.0}, "log_fraction must be a number strictly between 0 and 1"),
        ({"t_min": 0.0}, r"t_min must lie in \(0, "),
        ({"sample_t_min": 1.0}, r"sample_t_min must be None or a number in \(0, "),
        ({"churn": 1.5}, r"churn must be a number in \[0, 1\]"),
        ({"scale_floor": -0.5}, "scale_floor must be a finite number >= 0"),
        ({"scale_floor": [0.5, 0.5, 0.5]}, "a list of n_features=2 of them; got"),
        ({"scale_floor": [0.5, -1.0]}, "scale_floor must be a finite number >= 0"),
        ({"scale_floor": [0.5, 0.0]}, "scale_floor applies to scaling='instance' only"),
        ({"scale_floor": 0.5}, "scale_floor applies to scaling='instance' only"),
    ],
)
def test_bad_configuration_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _model(**kwargs)


def test_data_that_does_not_match_the_model_is_refused(tmp_path):
    data = WindowsDataModule(path=str(_series(tmp_path / "s.npy", copies=3)), window=12)
    with pytest.raises(ValueError, match=r"built for \(window, n_features\) = \(12, 2\)"):
        _trainer(tmp_path, 1).fit(_model(), data)


class _RecordTime(torch.nn.Module):
    """A backbone that returns zeros and remembers the time it was given."""

    def __init__(self, window: int, n_features: int) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.zeros(()))
        self.seen: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.seen = t
        return self.scale * x


@pytest.mark.parametrize("preconditioning", [False, True])
@pytest.mark.parametrize(("time_input", "expected"), [("raw", 0.01), ("log", math.log(0.01))])
def test_the_network_sees_raw_or_log_time(time_input, expected, preconditioning):
    model = _model(network=_RecordTime, time_input=time_input, preconditioning=preconditioning)
    model.denoise(model.network, torch.zeros(3, 12, 2), torch.full((3,), 0.01))
    torch.testing.assert_close(model.network.seen, torch.full((3,), expected))


_NO_TRAINER = "ignore:You are trying to `self.log\\(\\)`"


@pytest.mark.filterwarnings(_NO_TRAINER)
@pytest.mark.parametrize(
    ("distribution", "log_fraction", "below_1e_2"),
    [
        # Only "mixed" reads log_fraction.
        ("uniform", 0.2, 0.0099),
        ("log_uniform", 0.2, 0.5),
        ("mixed", 0.5, 0.255),
        ("mixed", 0.2, 0.108),
    ],
)
def test_training_draws_t_from_its_time_distribution(distribution, log_fraction, below_1e_2):
    model = _model(
        network=_RecordTime, time_distribution=distribution, log_fraction=log_fraction, t_min=1e-4
    )
    x0 = torch.randn(4000, 12, 2)
    model.prior.fit(x0)
    model.training_step(x0, 0)
    t = model.network.seen.exp()  # log t with the default time_input
    assert float(t.min()) >= 1e-4 and float(t.max()) <= 1.0
    assert abs(float((t < 1e-2).double().mean()) - below_1e_2) < 0.03


@pytest.mark.filterwarnings(_NO_TRAINER)
def test_the_l1_bridge_weight_is_the_square_root_of_the_bridge_weight():
    """One window, the same draws: the two losses differ by the factor c_out(t) exactly."""
    x0 = torch.randn(1, 12, 2)
    losses = {}
    for weight in ("bridge", "bridge_l1", "uniform"):
        torch.manual_seed(0)  # the same (zero) network output in each model
        model = _model(network=_RecordTime, loss_weight=weight)
        model.prior.fit(x0)
        losses[weight] = model.training_step(x0, 0).detach()
    t = model.network.seen.exp()
    coefficients = bridge_coefficients(model.process, t.reshape(1, 1, 1), 1.0)
    c_out = bridge_preconditioning(coefficients, model.hparams.sigma_data).c_out.reshape(())
    torch.testing.assert_close(losses["bridge_l1"], losses["uniform"] / c_out)
    torch.testing.assert_close(losses["bridge"], losses["uniform"] / c_out**2)


@pytest.mark.filterwarnings(_NO_TRAINER)
@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_training_regresses_with_the_chosen_loss_norm(norm):
    """A network that outputs zeros, no preconditioning, uniform weight: the training loss is
    the loss of predicting 0 for x0, in the chosen norm."""
    x0 = torch.randn(6, 12, 2)
    model = _model(
        network=_RecordTime, preconditioning=False, loss_weight="uniform", loss_norm=norm
    )
    model.prior.fit(x0)
    loss = model.training_step(x0, 0).detach()
    expected = fourier_regression_loss(torch.zeros_like(x0), x0, model.fourier_weight, norm=norm)
    torch.testing.assert_close(loss, expected.mean())


def test_checkpoints_from_before_time_input_keep_raw_time_and_their_sampler(trained, tmp_path):
    _, path = trained
    checkpoint = torch.load(path, weights_only=False)
    del checkpoint["hyper_parameters"]["time_input"]
    del checkpoint["hyper_parameters"]["sample_t_min"]
    del checkpoint["hyper_parameters"]["log_fraction"]
    checkpoint["hyper_parameters"]["rho"] = 7.0  # the default then
    torch.save(checkpoint, tmp_path / "old.ckpt")
    old = tsgen.load(tmp_path / "old.ckpt", weights_only=False)
    assert old.hparams.time_input == "raw" and old.hparams.rho == 7.0
    assert old.hparams.log_fraction == 0.5  # what "mixed" drew before the option
    assert old.hparams.sample_t_min == old.grid_t_min == old.hparams.t_min == 1e-4
    new = tsgen.load(path, weights_only=False)
    assert new.hparams.time_input == "log" and new.hparams.rho == 14.0
    assert new.hparams.sample_t_min is None and new.grid_t_min == 1e-6


def test_an_explicit_sample_t_min_survives_loading_an_old_checkpoint():
    # The CLI builds the model from the config and explicit flags, then restores the weights:
    # an old checkpoint's missing option must not overwrite a value the user gave.
    old = {"tsgen_format": 1, "hyper_parameters": {"time_input": "log"}}
    given = _model(sample_t_min=1e-5)
    given.on_load_checkpoint(old)
    assert given.grid_t_min == 1e-5
    unset = _model()
    unset.on_load_checkpoint(old)
    assert unset.grid_t_min == unset.hparams.t_min


@pytest.mark.parametrize(
    ("preconditioning", "sample_t_min", "expected"),
    [(True, None, 1e-6), (False, None, 1e-4), (False, 1e-5, 1e-5), (True, 1e-3, 1e-3)],
)
def test_the_grid_ends_below_t_min_only_with_the_preconditioning(
    preconditioning, sample_t_min, expected
):
    model = _model(preconditioning=preconditioning, sample_t_min=sample_t_min)
    assert model.grid_t_min == expected


def test_set_sampling_validates_like_the_constructor():
    model = _model()
    model.set_sampling(rho=7.0, sample_t_min=1e-4, n_intervals=10)
    assert (model.hparams.rho, model.grid_t_min, model.hparams.n_intervals) == (7.0, 1e-4, 10)
    with pytest.raises(ValueError, match=r"rho must be a positive number; got -1"):
        model.set_sampling(rho=-1)
    with pytest.raises(ValueError, match=r"sample_t_min must be None or a number in \(0, "):
        model.set_sampling(sample_t_min=2.0)
    with pytest.raises(ValueError, match="'t_min' is not a sampling option; they are sampler"):
        model.set_sampling(t_min=1e-3)
    assert model.hparams.t_min == 1e-4 and model.hparams.rho == 7.0


class _RecordAllTimes(_RecordTime):
    """A zero backbone that keeps every time it is given."""

    def __init__(self, window: int, n_features: int) -> None:
        super().__init__(window, n_features)
        self.times: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.times.append(t)
        return super().forward(x, t)


@pytest.mark.parametrize("sample_t_min", [1e-5, 1e-3])
def test_the_sampler_runs_its_karras_grid_down_to_sample_t_min(sample_t_min):
    model = _model(
        network=_RecordAllTimes, time_input="raw", use_ema=False, sample_t_min=sample_t_min
    )
    model.prior.fit(torch.zeros(4, 12, 2))
    model.generate(2, PerSampleNoise([0, 1]))
    times = torch.unique(torch.cat(model.network.times))
    expected = karras_grid(1 - 1e-4, sample_t_min, 6, rho=14.0)[:-1]
    # Every grid time but the final 0 is evaluated, and so are the times inside each interval
    # where the SDE part of the hybrid step ends: the smallest is in the last interval.
    assert torch.isin(expected.to(times.dtype), times).all()
    assert float(times.min()) == pytest.approx((1 - model.hparams.churn) * sample_t_min)


def test_upper_intervals_spend_part_of_the_grid_evenly_next_to_T():
    model = _model(network=_RecordAllTimes, time_input="raw", use_ema=False, sampler="sde")
    model.set_sampling(n_intervals=8, upper_intervals=3, upper_split=0.4, sample_t_min=1e-3)
    grid = model.sampling_grid()
    torch.testing.assert_close(
        grid, uniform_then_karras_grid(1 - 1e-4, 0.4, 1e-3, 3, 5, rho=14.0, dtype=torch.float64)
    )
    model.prior.fit(torch.zeros(4, 12, 2))
    model.generate(2, PerSampleNoise([0, 1]))
    # The SDE sampler evaluates the network once per interval, at its start.
    times = torch.stack([t[0] for t in model.network.times])
    torch.testing.assert_close(times, grid[:-1].to(times.dtype))
    model.set_sampling(upper_intervals=0)
    torch.testing.assert_close(
        model.sampling_grid(), karras_grid(1 - 1e-4, 1e-3, 8, rho=14.0, dtype=torch.float64)
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"upper_intervals": -1}, "upper_intervals must be an integer >= 0; got -1"),
        ({"upper_split": 1.0}, r"upper_split must be a number in \(0, 0.9999\); got 1.0"),
        (
            {"upper_intervals": 5, "n_intervals": 6},
            "upper_intervals must leave at least 2 of the n_intervals below upper_split; got "
            "upper_intervals=5 with n_intervals=6",
        ),
        (
            {"upper_intervals": 2, "upper_split": 1e-4, "sample_t_min": 1e-3},
            r"upper_split must lie above the grid's last time 0.001 \(sample_t_min\); got 0.0001",
        ),
    ],
)
def test_bad_upper_grid_options_are_named(options, message):
    model = _model()
    with pytest.raises(ValueError, match=message):
        model.set_sampling(**options)
        model.sampling_grid()


def test_a_scale_floor_keeps_hidden_values_near_the_unit_range(tmp_path) -> None:
    """With 90% of a window hidden its observed range can be tiny; the floor (a fraction of the
    feature's median window range, fitted at set-up) keeps the hidden values within a few
    units of [-1, 1], and the training windows are scaled with it."""
    from tsgen.models.timebridge import _rescale_from

    data = WindowsDataModule(
        path=str(_series(tmp_path / "s.npy", rows=400)), window=12, batch_size=16,
        split="chronological", scaling="instance",
    )  # fmt: skip
    model = _model(prior=InterpolationPrior(), task="impute", scaling="instance", scale_floor=0.5)
    _trainer(tmp_path, 1).fit(model, data)
    windows = data.train_split.values
    span = model.window_span
    assert bool((span > 0).all())
    torch.testing.assert_close(
        span, (windows.amax(dim=1) - windows.amin(dim=1)).median(dim=0).values
    )
    observed = torch.rand(windows.shape, generator=torch.Generator().manual_seed(0)) >= 0.9
    free = _rescale_from(windows, observed).abs().amax()
    floored = _rescale_from(windows, observed, model._scale_floor()).abs().amax()
    # A window's full range is at most max(range) / (0.5 * median range) floors wide.
    bound = 1 + 2 * float(((windows.amax(1) - windows.amin(1)) / (0.5 * span)).max())
    assert float(floored) <= bound < float(free)


def test_a_list_of_scale_floors_floors_each_feature_by_its_own() -> None:
    """``scale_floor=[f_0, ..., f_C-1]``: feature ``c`` is scaled over at least ``f_c`` of its
    median window range, and a 0 leaves it unfloored, as ``scale_floor=0`` does."""
    from tsgen.models.timebridge import _rescale_from

    options = {"prior": InterpolationPrior(), "task": "impute", "scaling": "instance"}
    model = _model(**options, scale_floor=[0.5, 0.0])
    unfloored, uniform = _model(**options), _model(**options, scale_floor=0.5)
    for m in (model, unfloored, uniform):
        m.window_span.copy_(torch.tensor([0.8, 0.6]))
    torch.testing.assert_close(model._scale_floor(), torch.tensor([0.4, 0.0]))
    assert _model(**options, scale_floor=[0.0, 0.0])._scale_floor() is None
    # Nearly constant observed values: the floored feature is widened, the other is not.
    windows = 0.01 * torch.randn(4, 12, 2, generator=torch.Generator().manual_seed(0))
    observed = torch.ones_like(windows, dtype=torch.bool)
    by_feature = _rescale_from(windows, observed, model._scale_floor())
    alone = {
        "floored": _rescale_from(windows, observed, uniform._scale_floor()),
        "free": _rescale_from(windows, observed, unfloored._scale_floor()),
    }
    torch.testing.assert_close(by_feature[..., 0], alone["floored"][..., 0])
    torch.testing.assert_close(by_feature[..., 1], alone["free"][..., 1])
    assert float(by_feature[..., 0].abs().amax()) < 0.5 < float(by_feature[..., 1].abs().amax())


def test_a_per_feature_scale_floor_lives_on_the_models_device() -> None:
    """A list floor made on the CPU would not mix with a CUDA ``window_span`` (the Stocks
    imputation config would fail at its first GPU step); the meta device stands in for CUDA."""
    options = {"prior": InterpolationPrior(), "task": "impute", "scaling": "instance"}
    model = _model(**options, scale_floor=[0.5, 0.0]).to("meta")
    assert model._scale_floor().device.type == "meta"


@pytest.mark.parametrize("fallback", ["global", "window"])
def test_a_feature_with_one_observed_value_is_scaled_over_the_fallback_span(fallback) -> None:
    """Inference and training (``_rescale_from`` in the global model space) scale a feature
    with fewer than two distinct observed values alike: about its value, over the feature's
    global range or its median window range."""
    from tsgen.models.timebridge import _rescale_from

    model = _model(
        prior=InterpolationPrior(), task="impute", scaling="instance", fallback_span=fallback
    )
    generator = torch.Generator().manual_seed(0)
    series = 10 + 4 * torch.rand(3, 12, 2, generator=generator, dtype=torch.float64)
    model.scaler.fit(series)
    model.window_span.copy_(torch.tensor([0.25, 0.5]))
    mask = torch.ones_like(series, dtype=torch.bool)
    mask[:, :, 0] = False
    mask[:, 4, 0] = True  # feature 0: one observed value; feature 1: all observed
    _, _, scale = model._conditional_inputs(series, mask, "impute")
    # The scale maps the global model space (span 2 per feature) to the window's.
    low, high = scale.low.squeeze(1), scale.high.squeeze(1)  # (3, 2)
    global_units = model.scaler.transform(series)
    expected = torch.tensor(0.25 if fallback == "window" else 2.0, dtype=series.dtype)
    torch.testing.assert_close(high[:, 0] - low[:, 0], expected.expand(3))
    torch.testing.assert_close((high + low)[:, 0] / 2, global_units[:, 4, 0])
    torch.testing.assert_close(low[:, 1], global_units[:, :, 1].amin(dim=1))
    training = _rescale_from(global_units, mask, None, model._fallback_span())
    torch.testing.assert_close(training, scale.transform(global_units))


def test_a_feature_never_observed_in_a_window_is_centred_at_the_datas_midpoint(imputer) -> None:
    """As in training: at inference a feature without an observed value in a window is
    scaled about the middle of its data range (0 in the global model space), not about 0 in
    original units (where prices near 130 came back imputed around 0)."""
    model = _model(prior=InterpolationPrior(), task="impute", scaling="instance")
    series = 120 + 20 * torch.rand(3, 12, 2, generator=torch.Generator().manual_seed(1),
                                   dtype=torch.float64)  # fmt: skip
    model.scaler.fit(series)
    mask = torch.ones_like(series, dtype=torch.bool)
    mask[1, :, 0] = False  # window 1 never observes feature 0
    _, _, scale = model._conditional_inputs(series, mask, "impute")
    centre = (scale.low + scale.high)[1, 0, 0] / 2  # in the global model space
    middle = (model.scaler.data_min + model.scaler.data_max)[0] / 2
    torch.testing.assert_close(
        model.scaler.inverse_transform(centre.expand(1, 2))[0, 0], middle.to(series)
    )
    # The trained imputer (a sine about 3 in both features): window 1's feature 0 comes back
    # about the data's level, not about 0.
    trained, data = imputer
    raw = data.test_split.raw[:3]
    hidden = torch.ones_like(raw, dtype=torch.bool)
    hidden[1, :, 0] = False
    imputed = trained.impute(raw, hidden, n_samples=4, seed=0)[1, :, :, 0]
    assert 2.0 < float(imputed.mean()) < 4.0, imputed.mean()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"fallback_span": "median"},
            r"fallback_span must be one of \('global', 'window'\); got 'median'",
        ),
        (
            {"fallback_span": "window", "scaling": "global"},
            "fallback_span='window' applies to scaling='instance' only; got scaling='global'",
        ),
    ],
)
def test_a_bad_fallback_span_is_named(options, message) -> None:
    with pytest.raises(ValueError, match=message):
        _model(prior=InterpolationPrior(), task="impute", **options)


def test_a_checkpoint_from_before_the_scale_floor_loads_without_one() -> None:
    model = _model(prior=InterpolationPrior(), task="impute", scaling="instance")
    state = {k: v for k, v in model.state_dict().items() if k != "window_span"}
    checkpoint = {"tsgen_format": tsgen.models.timebridge.CHECKPOINT_FORMAT, "state_dict": state,
                  "hyper_parameters": {"time_input": "log", "sample_t_min": None}}  # fmt: skip
    model.on_load_checkpoint(checkpoint)
    model.load_state_dict(checkpoint["state_dict"])
    assert model._scale_floor() is None and not bool(model.window_span.any())
