"""TimeBridge (Park et al., arXiv 2408.06672): a diffusion bridge from a chosen prior to the data
(timebridge.md). This module only wires shared parts together:

- the bridge marginal, preconditioning and sampler come from :mod:`tsgen.sde`;
- the prior ``x_T`` from :mod:`tsgen.priors`, the network from :mod:`tsgen.nn` (or any module
  ``(x (B, L, C), t (B,)) -> (B, L, C)`` chosen in the config);
- the loss, EMA and learning-rate schedule from the sibling modules of :mod:`tsgen.models`.

Tasks: ``"generate"`` (unconditional), ``"impute"`` and ``"forecast"`` (conditional: the prior is
the interpolation of the observed values, and observed entries are reset during sampling).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from numbers import Integral
from typing import Any, Literal

import numpy as np
import torch
from einops import rearrange
from lightning.pytorch import LightningModule
from torch import Tensor, nn
from torch.utils.data import Dataset

from tsgen._arrays import numpy_in_numpy_out
from tsgen._validation import check_choice, check_int, check_open_fraction
from tsgen.data.masks import forecast_mask, random_missing_mask, sample_missing_ratios
from tsgen.data.scaling import MinMaxScaler, WindowScale, fit_window_scale, median_window_span
from tsgen.data.windows import WholeBatchDataset, WindowSplit
from tsgen.models.ema import EMA
from tsgen.models.losses import (
    LOSS_NORMS,
    TIME_DISTRIBUTIONS,
    LossNorm,
    TimeDistribution,
    default_fourier_weight,
    fourier_regression_loss,
    training_times,
)
from tsgen.models.schedule import WarmupReduceOnPlateau
from tsgen.nn import TrendSeasonTransformer
from tsgen.priors import GaussianProcessPrior, InterpolationPrior, Prior, PriorCondition, TrendPrior
from tsgen.priors.base import normal_cdf
from tsgen.sde import (
    VPSDE,
    BridgeCoefficients,
    LinearSDE,
    NoiseSource,
    PerSampleNoise,
    bridge_coefficients,
    bridge_preconditioning,
    bridge_sample,
    expand_time,
    karras_grid,
    uniform_then_karras_grid,
)

__all__ = ["NetworkFactory", "TimeBridge"]

log = logging.getLogger(__name__)

NetworkFactory = Callable[[int, int], nn.Module]
"""``factory(window, n_features) -> network``; in a config, a ``class_path`` whose first two
arguments are the window length and the number of features (e.g.
``tsgen.nn.TrendSeasonTransformer``), the rest given as ``init_args``."""

Task = Literal["generate", "impute", "forecast"]

# The bridge's end time, and the sampler's gap below it (timebridge.md, "Sampling").
_T = 1.0
_T_GAP = 1e-4
# The sampler's last grid time with the preconditioning when none is given (docs/timebridge.md).
_PRECONDITIONED_SAMPLE_T_MIN = 1e-6
# What a random stream is for, the first entry of its seed sequence: training noise, sampling,
# and the masks of predict-time imputation never share numbers, whatever the user's seed.
_TRAINING_STREAM, _SAMPLE_STREAM, _MASK_STREAM = 0, 1, 2


def _stream(purpose: int, seed: int) -> int:
    """The :class:`~tsgen.sde.PerSampleNoise` stream of a purpose and a user seed (injective)."""
    return 3 * seed + purpose


def _check_number(name: str, value: Any, valid: Callable[[float], bool], expected: str) -> None:
    """A ``ValueError`` naming ``name`` unless ``value`` is a finite number (not a bool) that
    ``valid`` accepts."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (number and math.isfinite(value) and valid(value)):
        raise ValueError(f"{name} must be {expected}; got {value!r}")


def _check_use_ema(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool; got {value!r}")


def _check_sample_t_min(name: str, value: Any) -> None:
    if value is not None:
        _check_number(
            name, value, lambda v: 0 < v < _T - _T_GAP, f"None or a number in (0, {_T - _T_GAP})"
        )


# Sampling option -> its check ``(name, value) -> None``, raising a ValueError that names it.
_SAMPLING_CHECKS: dict[str, Callable[[str, Any], object]] = {
    "sampler": lambda n, v: check_choice(n, v, ("hybrid", "sde", "ode", "ancestral")),
    "n_intervals": lambda n, v: check_int(n, v, minimum=2),
    "churn": lambda n, v: _check_number(n, v, lambda x: 0 <= x <= 1, "a number in [0, 1]"),
    "rho": lambda n, v: _check_number(n, v, lambda x: x > 0, "a positive number"),
    "sample_t_min": _check_sample_t_min,
    "upper_intervals": lambda n, v: check_int(n, v, minimum=0),
    "upper_split": lambda n, v: _check_number(
        n, v, lambda x: 0 < x < _T - _T_GAP, f"a number in (0, {_T - _T_GAP})"
    ),
    "posterior_variance": lambda n, v: check_choice(n, v, ("none", "diagonal")),
    "observed_reset": lambda n, v: check_choice(n, v, ("marginal", "exact")),
    "use_ema": _check_use_ema,
}


def _check_sampling(**options: Any) -> None:
    """Validate sampling options of :class:`TimeBridge` (any subset), naming the bad one."""
    for name, value in options.items():
        if name not in _SAMPLING_CHECKS:
            raise ValueError(
                f"{name!r} is not a sampling option; they are {', '.join(_SAMPLING_CHECKS)}"
            )
        _SAMPLING_CHECKS[name](name, value)


def _pair(i: Tensor, j: Tensor) -> Tensor:
    """Cantor's pairing: one non-negative integer per pair ``(i, j)``, injective, so that sample
    ``j`` of window ``i`` has its own seed whatever the number of samples per window."""
    return (i + j) * (i + j + 1) // 2 + j


# Bumped when the checkpoint layout changes.
CHECKPOINT_FORMAT = 1


def _as_list(scale_floor: float | list[float] | tuple[float, ...]) -> list[float]:
    """``scale_floor`` as a list: one floor for every feature, or one per feature."""
    return list(scale_floor) if isinstance(scale_floor, (list, tuple)) else [scale_floor]


class TimeBridge(LightningModule):
    """A diffusion bridge between a prior and the data, learning ``D(x_t, t) ~ E[x_0 | x_t, x_T]``.

    Training draws ``t`` in ``[t_min, 1]`` (``time_distribution``), ``x_T`` from the prior and
    ``x_t`` from the bridge marginal ``N(a x_T + b x_0, c)``, and regresses ``x_0`` with the
    time + Fourier loss (``loss_norm``) times a weight of ``t`` (``loss_weight``). Sampling
    draws ``x_T`` from the prior and runs :func:`tsgen.sde.bridge_sample` (40 Karras intervals,
    churn 0.33: 119 network evaluations) with the EMA weights.

    Args:
        network: the backbone factory ``(window, n_features) -> module`` (default
            :class:`~tsgen.nn.TrendSeasonTransformer` with its default sizes).
        prior: the prior of ``x_T``, fitted on the training windows when training starts
            (default: :class:`~tsgen.priors.GaussianProcessPrior` for ``"generate"`` and
            :class:`~tsgen.priors.InterpolationPrior` for the conditional tasks).
        process: the linear SDE of the bridge (default ``VPSDE(beta_min=0.2, beta_d=10)``).
        window: window length ``L`` (linked from the datamodule).
        n_features: number of features ``C`` (linked from the datamodule).
        task: ``"generate"``, ``"impute"`` or ``"forecast"``.
        horizon: forecast steps (linked from the datamodule; ``task="forecast"`` needs ``>= 1``).
        scaling: how windows are put in model space, as in the datamodule (linked from it):
            ``"global"`` (the fitted min-max) or ``"instance"`` (each window from its own
            observed entries).
        scale_floor: under ``"instance"`` scaling, the narrowest range a window's feature is
            scaled over, as a fraction of the feature's median window range in the training
            data (``window_span``); ``0`` scales every window over its observed range, however
            narrow, which with many entries hidden puts hidden values up to hundreds of units
            outside ``[-1, 1]`` (docs/timebridge.md, "Imputation on ETTh1"). A list gives
            each of the ``n_features`` its own (on Stocks a floor helped the prices and hurt the
            volume: "The floor per feature (Stocks)").
        fallback_span: under ``"instance"`` scaling, the range a window's feature is scaled over
            where it has fewer than two distinct observed values: ``"global"`` (the feature's
            range over the whole series) or ``"window"`` (its median window range,
            ``window_span``). A window spans a small part of the global range (ETTh1's oil
            temperature 7%), so with ``"global"`` such a feature's hidden values sit within a
            few hundredths of its observed value in model space, below what the network resolves;
            on ETTh1 these features (1% of the test windows' features with 70% hidden: the data
            repeat values) carried almost all of the instance-scaled MSE (docs/timebridge.md,
            "The fallback scale").
        sigma_data: ``s_d`` of the preconditioning and of the bridge loss weight.
        preconditioning: wrap the network as ``c_skip x_t + c_out F(c_in x_t, t)`` (DDBM).
        loss_norm: the error of the time + Fourier loss: ``"l1"`` (absolute, the reference's)
            or ``"l2"`` (squared: its minimiser is the posterior mean the sampler assumes); see
            :func:`~tsgen.models.losses.fourier_regression_loss`.
        loss_weight: ``"bridge"`` (``1 / c_out^2``, the reference's; it is EDM's weight for a
            squared error, which with ``loss_norm="l1"`` is applied to L1: about 100 for
            ``t >= 0.1`` and much larger as ``t -> t_min``), ``"bridge_l1"`` (``1 / c_out``, its
            analogue for L1: the network's own error ``|F - F*|`` at unit scale for every
            ``t``) or ``"uniform"``.
        time_distribution: how training draws ``t``: ``"uniform"`` on ``[t_min, 1]`` (the
            reference's), ``"log_uniform"`` (each decade equally often) or ``"mixed"``
            (log-uniform with probability ``log_fraction``, uniform otherwise); see
            :func:`~tsgen.models.losses.training_times` and docs/timebridge.md.
        log_fraction: the log-uniform share of ``"mixed"`` training times, in ``(0, 1)``
            whatever the distribution (only ``"mixed"`` uses it).
        time_input: what the network is given as its time: ``"raw"`` (``t`` itself, the
            reference's) or ``"log"`` (``log t``). The sinusoidal codes of raw ``t`` in
            ``[1e-4, 1e-2]`` differ by less than 1e-2, so a raw-time network cannot tell
            these noise levels apart; ``log t`` spreads every decade of ``t`` evenly.
        fourier_weight: ``lambda_F``; ``None`` for ``sqrt(L) / 5``.
        t_min: the smallest training time.
        sample_t_min: the sampler's last grid time before its final step to 0. ``None``:
            ``1e-6`` with the preconditioning, where the denoiser tends to its input as
            ``t -> 0`` (``c_skip -> 1``, ``c_out -> 0``), so going below ``t_min`` asks the
            network for little extrapolation (docs/timebridge.md: what it changed on Stocks);
            ``t_min`` without it (the reference's ``1e-4``).
        lr, warmup_lr, warmup_steps, plateau_factor, plateau_patience, plateau_threshold,
            min_lr: the schedule (see :class:`~tsgen.models.schedule.WarmupReduceOnPlateau`),
            stepped once per optimizer step on the training loss.
        adam_betas: Adam's ``(beta1, beta2)``.
        ema_decay: decay of the weights' moving average used for sampling.
        ema_every: optimizer steps between EMA updates.
        sampler: ``"hybrid"``, ``"sde"``, ``"ode"`` or ``"ancestral"`` (one network evaluation
            per interval; see :func:`~tsgen.sde.bridge_sample` for each mode's known bias).
        n_intervals: sampler intervals (40: 119 network evaluations in hybrid mode).
        churn: the SDE fraction of each hybrid interval.
        posterior_variance: with ``sampler="ancestral"``, ``"diagonal"`` adds the Tweedie
            estimate of the posterior variance of ``x_0`` to each draw (two evaluations per
            interval); without it the ancestral chain's variance is too small at 40 intervals.
            Exact on Gaussian toys, but on Stocks it sampled worse than ``"hybrid"`` (the
            network does not see ``x_T``, which the identity assumes): not the default.
        rho: the exponent of the Karras grid, which is spaced in ``t``. The bridge's standard
            deviation grows as ``sqrt(t)`` near 0, so 14 is EDM's ``rho = 7`` in that noise
            scale. The reference used 7 in ``t`` down to ``1e-4``: 4 of its 40 grid times lie
            below ``t = 5e-4``, where the fine detail of data like Stocks is decided (13 with
            the defaults).
        upper_intervals: how many of the ``n_intervals`` are spent evenly in ``t`` between
            ``T`` and ``upper_split`` before the Karras grid takes over
            (:func:`~tsgen.sde.uniform_then_karras_grid`); 0: the Karras grid alone. The
            bridge's reverse dynamics change fast next to ``T`` too, which a Karras grid barely
            resolves (on Stocks with the squared error, 25 of 100 intervals there brought quick
            Context-FID from 0.14 to 0.013; docs/timebridge.md).
        upper_split: where the even upper part of the grid ends.
        missing_ratio: ``(low, high)``: training windows for ``"impute"`` hide each entry
            with a ratio drawn uniformly in this range per window.
        observed_reset: ``"marginal"`` resets observed entries after every sampler step to a
            fresh draw of the bridge marginal ``N((a_t + b_t) y, c_t)`` (exact at ``t = 0``);
            ``"exact"`` resets them to ``y`` (the reference; off the training distribution).
        num_samples: windows generated by ``predict`` for ``task="generate"``; samples per
            window for the conditional tasks.
        predict_missing_ratio: for ``"impute"``, the fraction of entries ``predict`` hides in
            each test window (at random, seeded by the window's index).
        sample_batch_size: the largest batch of the sampler in :meth:`sample`, :meth:`impute`
            and :meth:`forecast` (the results do not depend on it).
        seed: seeds the training noise (with the rank, epoch and batch index of each
            micro-batch, so a resumed run draws what an uninterrupted one would) and the
            ``predict`` samples.
        use_ema: sample with the EMA weights (``False``: the raw weights).
    """

    SAMPLING_OPTIONS = tuple(_SAMPLING_CHECKS)
    """The options that shape sampling only, not training (:meth:`set_sampling` changes them)."""

    def __init__(
        self,
        network: NetworkFactory | None = None,
        prior: Prior | None = None,
        process: LinearSDE | None = None,
        window: int = 24,
        n_features: int = 1,
        task: Task = "generate",
        horizon: int = 0,
        scaling: Literal["global", "instance"] = "global",
        scale_floor: float | list[float] = 0.0,
        fallback_span: Literal["global", "window"] = "global",
        sigma_data: float = 0.5,
        preconditioning: bool = True,
        loss_norm: LossNorm = "l1",
        loss_weight: Literal["bridge", "bridge_l1", "uniform"] = "bridge",
        time_distribution: TimeDistribution = "uniform",
        log_fraction: float = 0.5,
        time_input: Literal["raw", "log"] = "log",
        fourier_weight: float | None = None,
        t_min: float = 1e-4,
        sample_t_min: float | None = None,
        lr: float = 8e-4,
        warmup_lr: float = 1e-5,
        warmup_steps: int = 500,
        plateau_factor: float = 0.5,
        plateau_patience: int = 2000,
        plateau_threshold: float = 0.1,
        min_lr: float = 1e-5,
        adam_betas: tuple[float, float] = (0.9, 0.96),
        ema_decay: float = 0.995,
        ema_every: int = 10,
        sampler: Literal["hybrid", "sde", "ode", "ancestral"] = "hybrid",
        n_intervals: int = 40,
        churn: float = 0.33,
        posterior_variance: Literal["none", "diagonal"] = "none",
        rho: float = 14.0,
        upper_intervals: int = 0,
        upper_split: float = 0.5,
        missing_ratio: tuple[float, float] = (0.1, 0.9),
        observed_reset: Literal["marginal", "exact"] = "marginal",
        num_samples: int = 1000,
        predict_missing_ratio: float = 0.7,
        sample_batch_size: int = 1024,
        seed: int = 0,
        use_ema: bool = True,
    ) -> None:
        super().__init__()
        with warnings.catch_warnings():
            # From the CLI the hyper-parameters are the config (class paths), from Python the
            # objects themselves: both rebuild the model on load, so keep them all.
            warnings.filterwarnings("ignore", message=".*is an instance of `nn.Module`")
            self.save_hyperparameters()
        check_int("window", window, minimum=2)
        check_int("n_features", n_features)
        for name, value, minimum in (
            ("ema_every", ema_every, 1),
            ("num_samples", num_samples, 1),
            ("sample_batch_size", sample_batch_size, 1),
            ("warmup_steps", warmup_steps, 0),
            ("plateau_patience", plateau_patience, 0),
            ("seed", seed, 0),
        ):
            check_int(name, value, minimum=minimum)
        check_choice("task", task, ("generate", "impute", "forecast"))
        check_choice("scaling", scaling, ("global", "instance"))
        check_choice("fallback_span", fallback_span, ("global", "window"))
        check_choice("loss_norm", loss_norm, LOSS_NORMS)
        check_choice("loss_weight", loss_weight, ("bridge", "bridge_l1", "uniform"))
        check_choice("time_distribution", time_distribution, TIME_DISTRIBUTIONS)
        check_open_fraction("log_fraction", log_fraction)
        check_choice("time_input", time_input, ("raw", "log"))
        _check_sampling(
            sampler=sampler,
            n_intervals=n_intervals,
            churn=churn,
            rho=rho,
            sample_t_min=sample_t_min,
            upper_intervals=upper_intervals,
            upper_split=upper_split,
            posterior_variance=posterior_variance,
            observed_reset=observed_reset,
            use_ema=use_ema,
        )
        horizon_ok = not isinstance(horizon, bool) and isinstance(horizon, int)
        if task == "forecast" and not (horizon_ok and 1 <= horizon < window):
            raise ValueError(
                f"task='forecast' needs horizon in [1, window={window}) (link it from "
                f"data.horizon); got {horizon!r}"
            )
        if task == "generate" and scaling == "instance":
            raise ValueError(
                "task='generate' needs scaling='global': generated windows are returned to "
                "original units through the global scaler, and instance-scaled windows have no "
                "single scale to return to"
            )
        floors = _as_list(scale_floor)
        if not (
            len(floors) in (1, n_features)
            and all(
                isinstance(f, (int, float)) and not isinstance(f, bool) and 0 <= f < math.inf
                for f in floors
            )
        ):
            raise ValueError(
                "scale_floor must be a finite number >= 0, or a list of n_features="
                f"{n_features} of them; got {scale_floor!r}"
            )
        if any(floors) and scaling != "instance":
            raise ValueError(
                f"scale_floor applies to scaling='instance' only; got scale_floor={scale_floor!r} "
                f"with scaling={scaling!r}"
            )
        if fallback_span == "window" and scaling != "instance":
            raise ValueError(
                "fallback_span='window' applies to scaling='instance' only; got "
                f"scaling={scaling!r}"
            )
        if not 0 < t_min < _T - _T_GAP:
            raise ValueError(f"t_min must lie in (0, {_T - _T_GAP}); got {t_min!r}")
        if not (math.isfinite(sigma_data) and sigma_data > 0):
            raise ValueError(f"sigma_data must be a positive float; got {sigma_data!r}")
        if not 0 <= predict_missing_ratio < 1:
            raise ValueError(
                f"predict_missing_ratio must lie in [0, 1); got {predict_missing_ratio!r}"
            )
        low, high = missing_ratio
        if not 0 <= low <= high < 1:
            raise ValueError(
                "missing_ratio must be (low, high) with 0 <= low <= high < 1; got "
                f"{missing_ratio!r}"
            )
        self.fourier_weight = (
            default_fourier_weight(window) if fourier_weight is None else float(fourier_weight)
        )
        if not (math.isfinite(self.fourier_weight) and self.fourier_weight >= 0):
            raise ValueError(f"fourier_weight must be >= 0 or None; got {fourier_weight!r}")

        self.network = (network or TrendSeasonTransformer)(window, n_features)
        self.ema = EMA(self.network, ema_decay)
        self.process = process if process is not None else VPSDE(beta_min=0.2, beta_d=10.0)
        if not isinstance(self.process, LinearSDE):
            raise TypeError(
                f"process must be a linear SDE with closed-form marginals (tsgen.sde.LinearSDE); "
                f"got {type(self.process).__name__}"
            )
        # The loss weight and the preconditioning take one bridge coefficient per sample.
        shapes = [tuple(k.shape) for k in bridge_coefficients(self.process, torch.tensor(0.5), _T)]
        if any(shape != () for shape in shapes):
            raise ValueError(
                f"process must have the same coefficients for every coordinate (scalar ones); "
                f"{type(self.process).__name__}'s bridge coefficients have shapes {shapes}"
            )
        if prior is None:
            prior = GaussianProcessPrior() if task == "generate" else InterpolationPrior()
        self.prior = prior
        self._check_prior()
        self.scaler = MinMaxScaler(n_features)
        # Each feature's median window range in the global model space, set by setup().
        self.register_buffer("window_span", torch.zeros(n_features))
        self._accumulated_loss: Tensor | None = None
        self._accumulated_count = 0
        # The mean loss of the last optimizer step over its micro-batches and all ranks.
        self._step_loss = math.inf

    # ----------------------------------------------------------------------------------- set-up

    @property
    def conditional(self) -> bool:
        """Whether the task conditions on observed values (impute, forecast)."""
        return self.hparams.task != "generate"

    def _check_prior(self) -> None:
        fields = self.prior.condition_fields
        if self.conditional and not {"values", "mask"} <= set(fields):
            raise ValueError(
                f"task={self.hparams.task!r} needs a prior conditioned on observed values "
                f"(e.g. tsgen.priors.InterpolationPrior); got {type(self.prior).__name__}"
            )
        if not self.conditional and self.prior.condition_required and fields != ("trends",):
            raise ValueError(
                f"task='generate' needs a prior that samples without observed values; got "
                f"{type(self.prior).__name__} (use it with task='impute' or 'forecast')"
            )

    def setup(self, stage: str) -> None:
        """Before training: fit the prior on the datamodule's training windows and copy its
        scaler, checking that the data matches ``window`` and ``n_features``."""
        if stage != "fit":
            return
        datamodule = getattr(self.trainer, "datamodule", None)
        split = getattr(datamodule, "train_split", None)
        if split is None:
            raise ValueError(
                "TimeBridge trains from a tsgen.data.WindowsDataModule (it fits the prior on "
                "datamodule.train_split and stores the datamodule's scaler); got "
                f"{type(datamodule).__name__}"
            )
        windows = split.values
        expected = (self.hparams.window, self.hparams.n_features)
        if tuple(windows.shape[1:]) != expected:
            raise ValueError(
                f"the data's windows are (L, C) = {tuple(windows.shape[1:])} but the model was "
                f"built for (window, n_features) = {expected}; link data.window and "
                "data.n_features to the model (the tsgen CLI does)"
            )
        if getattr(datamodule, "scaling", self.hparams.scaling) != self.hparams.scaling:
            raise ValueError(
                f"the datamodule scales with {datamodule.scaling!r} but the model with "
                f"scaling={self.hparams.scaling!r}; they must agree"
            )
        if self.conditional and self.hparams.scaling == "instance":
            # The prior is fitted on windows as the model sees them: each scaled from what a
            # task gives (the history for forecasting, the observed entries otherwise).
            given = torch.ones_like(windows, dtype=torch.bool)
            if self.hparams.task == "forecast":
                given = forecast_mask(windows.shape, self.hparams.horizon)
            if split.mask is not None:
                given = given & split.mask
            observed = torch.ones_like(given) if split.mask is None else split.mask
            self.window_span.copy_(median_window_span(windows, observed))
            windows = _rescale_from(windows, given, self._scale_floor(), self._fallback_span())
        if split.mask is not None:
            # Unobserved entries hold 0 in the windows; fill them as the prior would see gaps.
            windows = torch.where(split.mask, windows, windows.new_zeros(()))
        log.info("fitting %s on %d training windows", type(self.prior).__name__, len(windows))
        self.prior.fit(windows.to(self.device))
        self.scaler.load_state_dict(datamodule.scaler.state_dict())

    def _scale_floor(self) -> Tensor | None:
        """The narrowest instance-scaling range per feature in the global model space
        (``scale_floor`` times ``window_span``), ``None`` without a floor."""
        floor = self.hparams.get("scale_floor")
        if floor is None or not any(_as_list(floor)):
            return None
        # On window_span's device: a per-feature list made on the CPU would not mix with CUDA.
        span = self.window_span
        return torch.as_tensor(floor, dtype=span.dtype, device=span.device) * span

    def _fallback_span(self) -> Tensor:
        """``(C,)``: the range in the global model space (where a feature's whole range is 2) of
        a window's feature with fewer than two distinct observed values: 2, or ``window_span``
        with ``fallback_span="window"`` (2 where no training window gave a span)."""
        span = torch.full_like(self.window_span, 2.0)
        if self.hparams.get("fallback_span", "global") == "window":
            span = torch.where(self.window_span > 0, self.window_span, span)
        return span

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        optimizer = torch.optim.Adam(
            self.network.parameters(), lr=hp.lr, betas=tuple(hp.adam_betas)
        )
        schedule = WarmupReduceOnPlateau(
            optimizer,
            lr=hp.lr,
            warmup_lr=hp.warmup_lr,
            warmup_steps=hp.warmup_steps,
            factor=hp.plateau_factor,
            patience=hp.plateau_patience,
            threshold=hp.plateau_threshold,
            min_lr=hp.min_lr,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def lr_scheduler_step(self, scheduler: WarmupReduceOnPlateau, metric: Any) -> None:
        # Driven by the training loss of this optimizer step, averaged over its micro-batches
        # and over the ranks, so that every rank takes the same decisions.
        scheduler.step(self._step_loss)

    # --------------------------------------------------------------------------------- training

    def _generator(self, device: torch.device, batch_idx: int) -> torch.Generator:
        """The training noise of one micro-batch: a generator seeded from ``(seed, rank, epoch,
        batch index)``. No state to save: a resumed run (on any number of ranks) draws what an
        uninterrupted one would."""
        rank = self.global_rank if self._trainer is not None else 0
        epoch = self.current_epoch if self._trainer is not None else 0
        key = [_TRAINING_STREAM, self.hparams.seed, rank, epoch, batch_idx]
        seed = int(np.random.SeedSequence(key).generate_state(1, np.uint64)[0] >> 1)
        return torch.Generator(device).manual_seed(seed)

    def denoise(
        self,
        network: nn.Module,
        x_t: Tensor,
        t: Tensor,
        coefficients: BridgeCoefficients | None = None,
    ) -> Tensor:
        """``D(x_t, t)``: the network's estimate of ``x_0``, with the DDBM preconditioning if
        enabled (timebridge.md, "Training"). ``x_t``: ``(B, L, C)``; ``t``: ``(B,)``;
        ``coefficients``: the bridge's ``(a, b, c)`` at ``t`` if already computed."""
        network_time = t.log() if self.hparams.time_input == "log" else t
        if not self.hparams.preconditioning:
            return network(x_t, network_time)
        if coefficients is None:
            coefficients = bridge_coefficients(self.process, expand_time(t, x_t), _T)
        pre = bridge_preconditioning(coefficients, self.hparams.sigma_data)
        return pre.c_skip * x_t + pre.c_out * network(pre.c_in * x_t, network_time)

    def _unpack(self, batch: Tensor | tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor | None]:
        if isinstance(batch, Tensor):
            return batch, None
        return batch[0], batch[1]

    def _task_mask(self, x0: Tensor, generator: torch.Generator) -> Tensor:
        """Training mask of a conditional task: True where the model is given the value."""
        if self.hparams.task == "forecast":
            return forecast_mask(x0.shape, self.hparams.horizon, device=x0.device)
        low, high = self.hparams.missing_ratio
        ratios = sample_missing_ratios(
            x0.shape[0], low, high, generator=generator, device=x0.device
        )
        return random_missing_mask(x0.shape, ratios, generator=generator, device=x0.device)

    def _prior_draw(self, x0: Tensor, observed: Tensor | None, noise: Tensor) -> Tensor:
        """``x_T`` for training windows ``x0`` from the prior's standard-normal block ``noise``."""
        n = x0.shape[0]
        if observed is not None:
            return self.prior.sample(n, noise, PriorCondition(values=x0, mask=observed))
        if isinstance(self.prior, TrendPrior):
            # Each window's own trend is its prior mean (scipy's filter runs on the host).
            return self.prior.sample(n, noise, PriorCondition(trends=self.prior.trend(x0)))
        return self.prior.sample(n, noise)

    def training_step(self, batch: Tensor | tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x0, data_mask = self._unpack(batch)
        generator = self._generator(x0.device, batch_idx)
        observed = loss_mask = None
        if self.conditional:
            observed = self._task_mask(x0, generator)
            if data_mask is not None:
                observed = observed & data_mask
            if self.hparams.scaling == "instance":
                # The window's scale comes from what the model is given, exactly as at
                # inference (see _rescale_from).
                x0 = _rescale_from(x0, observed, self._scale_floor(), self._fallback_span())
            loss_mask = ~observed if data_mask is None else ~observed & data_mask
        elif data_mask is not None:
            loss_mask = data_mask
        prior_noise = torch.randn(
            self.prior.noise_shape(x0.shape[0]),
            generator=generator,
            device=x0.device,
            dtype=x0.dtype,
        )
        x_T = self._prior_draw(x0, observed, prior_noise).to(x0.dtype)
        t = training_times(
            x0.shape[0],
            self.hparams.t_min,
            _T,
            self.hparams.time_distribution,
            log_fraction=self.hparams.log_fraction,
            generator=generator,
            device=x0.device,
            dtype=x0.dtype,
        )
        z = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        coefficients = bridge_coefficients(self.process, expand_time(t, x0), _T)
        a, b, c = coefficients
        x_t = a * x_T + b * x0 + c.sqrt() * z
        prediction = self.denoise(self.network, x_t, t, coefficients)
        target = x0
        if data_mask is not None:
            # Unknown truth: the Fourier term sees the prediction itself there.
            target = torch.where(data_mask, x0, prediction.detach())
        per_sample = fourier_regression_loss(
            prediction, target, self.fourier_weight, loss_mask, self.hparams.loss_norm
        )
        if self.hparams.loss_weight != "uniform":
            pre = bridge_preconditioning(coefficients, self.hparams.sigma_data)
            # 1 / c_out puts the network's own error |F - F*| at unit scale for the L1 loss
            # (|D - x0| = c_out |F - F*|), as 1 / c_out^2 does for a squared error.
            weight = (
                pre.c_out.reciprocal() if self.hparams.loss_weight == "bridge_l1" else pre.weight
            )
            per_sample = per_sample * weight.reshape(-1)
        loss = per_sample.mean()
        detached = loss.detach()
        self._accumulated_loss = (
            detached if self._accumulated_loss is None else self._accumulated_loss + detached
        )
        self._accumulated_count += 1
        self.log("train/loss", detached, prog_bar=True)
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # One value per optimizer step for every rank: the micro-batch mean, averaged over the
        # ranks (one collective and one host sync per step).
        loss = self._accumulated_loss / max(self._accumulated_count, 1)
        trainer = self._trainer
        reduced = trainer.strategy.reduce(loss, reduce_op="mean") if trainer else loss
        self._step_loss = float(reduced)  # the step's one host read, shared with the schedule
        self._accumulated_loss, self._accumulated_count = None, 0
        # A non-finite loss would poison the weights (and every later checkpoint): stop here,
        # before the step, so the last checkpoint written stays good. Every rank sees the same
        # reduced value, so all of them stop together.
        if not math.isfinite(self._step_loss):
            callback = trainer.checkpoint_callback if trainer else None
            last = getattr(callback, "last_model_path", "") or getattr(
                callback, "best_model_path", ""
            )
            where = f"the last good checkpoint is {last}" if last else "no checkpoint was written"
            raise RuntimeError(f"training loss became NaN at step {self.global_step}; {where}")

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        # Lightning counts this step in global_step only after this hook returns.
        if (self.global_step + 1) % self.hparams.ema_every == 0:
            self.ema.update(self.network)

    # -------------------------------------------------------------------------------- checkpoint

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["tsgen_format"] = CHECKPOINT_FORMAT
        checkpoint["tsgen_class"] = f"{type(self).__module__}.{type(self).__qualname__}"

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        version = checkpoint.get("tsgen_format")
        if version != CHECKPOINT_FORMAT:
            raise ValueError(
                f"checkpoint format {version!r} is not the one this version of tsgen reads "
                f"({CHECKPOINT_FORMAT})"
            )
        saved = checkpoint.get("hyper_parameters", {})
        # Written before scale_floor existed: no floor, and no window_span to load.
        checkpoint.get("state_dict", {}).setdefault(
            "window_span", torch.zeros_like(self.window_span)
        )
        # Written before these options existed: the network was always given raw t, and the
        # sampler stopped at the training's t_min.
        if "time_input" not in saved:
            self.hparams.time_input = "raw"
        if "sample_t_min" not in saved and self.hparams.sample_t_min is None:
            self.hparams.sample_t_min = self.hparams.t_min

    # --------------------------------------------------------------------------------- sampling

    def set_sampling(self, **options: Any) -> None:
        """Change how this model samples, validated as in the constructor: any of
        :attr:`SAMPLING_OPTIONS`, e.g. ``model.set_sampling(rho=14.0, sample_t_min=None)`` to
        sample a checkpoint that predates a default with the current one."""
        _check_sampling(**options)
        for name, value in options.items():
            self.hparams[name] = value

    @property
    def grid_t_min(self) -> float:
        """The sampler's last grid time before 0 (``sample_t_min`` resolved, see the class)."""
        hp = self.hparams
        if hp.sample_t_min is not None:
            return float(hp.sample_t_min)
        return _PRECONDITIONED_SAMPLE_T_MIN if hp.preconditioning else float(hp.t_min)

    def sampling_grid(self) -> Tensor:
        """The sampler's decreasing time grid, ``(n_intervals + 1,)`` in float64: from just
        below ``T`` to 0, Karras-spaced, with ``upper_intervals`` even ones above
        ``upper_split`` first."""
        hp = self.hparams
        t_max, n_upper = _T - _T_GAP, hp.upper_intervals
        if n_upper == 0:
            return karras_grid(
                t_max, self.grid_t_min, hp.n_intervals, rho=hp.rho, dtype=torch.float64
            )
        if hp.n_intervals - n_upper < 2:
            raise ValueError(
                f"upper_intervals must leave at least 2 of the n_intervals below upper_split; got "
                f"upper_intervals={n_upper} with n_intervals={hp.n_intervals}"
            )
        if not self.grid_t_min < hp.upper_split:
            raise ValueError(
                f"upper_split must lie above the grid's last time {self.grid_t_min:g} "
                f"(sample_t_min); got {hp.upper_split}"
            )
        return uniform_then_karras_grid(
            t_max,
            hp.upper_split,
            self.grid_t_min,
            n_upper,
            hp.n_intervals - n_upper,
            rho=hp.rho,
            dtype=torch.float64,
        )

    @torch.no_grad()
    def generate(
        self,
        n: int,
        noise: NoiseSource,
        *,
        values: Tensor | None = None,
        mask: Tensor | None = None,
        progress: bool = False,
    ) -> Tensor:
        """Sample ``n`` windows in model space ``(n, L, C)``.

        Args:
            n: number of windows.
            noise: the source of every random number (prior, sampler, observed resets); a
                :class:`~tsgen.sde.PerSampleNoise` makes window ``i`` independent of ``n``.
            values, mask: for the conditional tasks, ``(n, L, C)`` model-space values and the
                bool mask of the observed entries; the result equals ``values`` there.
            progress: show the sampler's progress bar.
        """
        hp = self.hparams
        network = self.ema.average if hp.use_ema else self.network
        device, dtype = self.device, next(self.network.parameters()).dtype
        condition = None
        if self.conditional:
            if values is None or mask is None:
                raise ValueError(f"task={hp.task!r} samples need values and mask")
            condition = PriorCondition(values=values.to(device, dtype), mask=mask.to(device))
        elif isinstance(self.prior, TrendPrior) and values is not None:
            condition = PriorCondition(trends=values.to(device, dtype))
        x_T = self.prior.sample(n, noise, condition).to(device, dtype)
        grid = self.sampling_grid().to(dtype=dtype, device=device)

        def predictor(x: Tensor, t: Tensor) -> Tensor:
            return self.denoise(network, x, t.expand(x.shape[0]))

        callback = None
        if self.conditional:
            callback = self._observed_reset(condition.values, condition.mask, noise, hp.n_intervals)
        was_training = network.training
        network.eval()  # dropout off while sampling, whatever the model's mode
        try:
            out = bridge_sample(
                self.process,
                predictor,
                x_T,
                grid,
                T=_T,
                mode=hp.sampler,
                churn=hp.churn,
                posterior_variance=hp.posterior_variance,
                noise=noise,
                callback=callback,
                progress=progress,
            )
        finally:
            network.train(was_training)
        return out.x if self.conditional else out.x.clamp(-1.0, 1.0)

    def _observed_reset(
        self, values: Tensor, mask: Tensor, noise: NoiseSource, n_steps: int
    ) -> Callable[[int, Tensor, Tensor], Tensor]:
        """After each sampler step, put observed entries back on the bridge: a fresh draw of
        ``N((a_t + b_t) y, c_t)`` (on them ``x_T = x_0 = y``), and ``y`` itself at ``t = 0``."""
        exact = self.hparams.observed_reset == "exact"
        y = torch.where(mask, values, torch.zeros_like(values))
        # The normals of every reset, drawn at once (one call per sample, not one per step):
        # (B, n_steps - 1, L, C), step k reads [:, k - 1].
        eps = None
        if not exact:
            shape = (values.shape[0], n_steps - 1, *values.shape[1:])
            eps = noise.normal(torch.Size(shape), values.dtype, values.device)

        def reset(k: int, t: Tensor, x: Tensor) -> Tensor:
            if exact or k == n_steps:
                return torch.where(mask, y, x)
            a, b, c = bridge_coefficients(self.process, t, _T)
            return torch.where(mask, (a + b) * y + c.sqrt() * eps[:, k - 1], x)

        return reset

    def _chunks(self, n: int, batch_size: int | None) -> list[range]:
        size = self.hparams.sample_batch_size if batch_size is None else batch_size
        check_int("batch_size", size)
        return [range(start, min(start + size, n)) for start in range(0, n, size)]

    @torch.no_grad()
    def sample(
        self,
        n: int,
        seed: int = 0,
        *,
        batch_size: int | None = None,
        trends: Tensor | None = None,
        progress: bool = False,
    ) -> Tensor:
        """Generate ``n`` windows in original units, ``(n, L, C)``.

        Sample ``i`` with seed ``s`` is the same whatever ``n`` and ``batch_size`` (its noise
        comes from its own generator, seeded by ``(i, s)``).

        Args:
            n: number of windows.
            seed: an integer ``>= 0``.
            batch_size: sampler batch (default ``sample_batch_size``).
            trends: for a trend prior, the trends to condition on, ``(n, L, C)`` in model space.
            progress: show a progress bar per batch.
        """
        if self.conditional:
            raise ValueError(
                f"this model was trained for task={self.hparams.task!r}; sample() needs a model "
                "trained with task='generate' (use impute() or forecast())"
            )
        check_int("n", n)
        check_int("seed", seed, minimum=0)
        if trends is not None and not isinstance(self.prior, TrendPrior):
            raise ValueError(
                f"sample(trends=...) needs a model with a trend prior; this one has "
                f"{type(self.prior).__name__}"
            )
        if isinstance(trends, np.ndarray):
            trends = torch.from_numpy(trends)
        expected = (n, self.hparams.window, self.hparams.n_features)
        if trends is not None and (
            not isinstance(trends, Tensor) or tuple(trends.shape) != expected
        ):
            raise ValueError(
                f"sample(): trends must be an array of shape (n, window, features) = {expected}; "
                f"got {_describe(trends)}"
            )
        out = []
        for chunk in self._chunks(n, batch_size):
            noise = PerSampleNoise(list(chunk), stream=_stream(_SAMPLE_STREAM, seed))
            part = trends[chunk.start : chunk.stop] if trends is not None else None
            out.append(self.generate(len(chunk), noise, values=part, progress=progress))
        return self.scaler.inverse_transform(torch.cat(out))

    def _conditional_inputs(
        self, series: Tensor, mask: Tensor, name: str
    ) -> tuple[Tensor, Tensor, WindowScale | None]:
        """Validated ``(B, L, C)`` series in original units -> model space, mask, scale."""
        expected = (self.hparams.window, self.hparams.n_features)
        if not isinstance(series, Tensor) or series.ndim != 3 or not series.is_floating_point():
            raise ValueError(
                f"{name}(): series must be a float array (batch, {expected[0]}, {expected[1]}); "
                f"got {_describe(series)}"
            )
        if tuple(series.shape[1:]) != expected or series.shape[0] == 0:
            raise ValueError(
                f"{name}(): series has shape {tuple(series.shape)} but the model takes windows "
                f"(batch >= 1, {expected[0]}, {expected[1]})"
            )
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            raise TypeError(f"{name}(): mask must be a bool array; got {_describe(mask)}")
        if mask.shape != series.shape:
            raise ValueError(
                f"{name}(): mask has shape {tuple(mask.shape)} but series has shape "
                f"{tuple(series.shape)}"
            )
        # Scaling and sampling run where the model is; results go back to the input's device.
        series, mask = series.to(self.device), mask.to(self.device)
        bad = mask & ~torch.isfinite(series)
        if bool(bad.any()):
            raise ValueError(
                f"{name}(): series has {int(bad.sum())} NaN or infinite values where mask is "
                "True (observed); mark them as missing"
            )
        values = self.scaler.transform(series.to(torch.float64))
        scale = None
        if self.hparams.scaling == "instance":
            # From the global model space, as in training: a feature without an observed value
            # in a window is centred at the data's midpoint there, not at 0 in original units.
            scale = _window_scale_from(values, mask, self._scale_floor(), self._fallback_span())
            values = scale.transform(values)
        return torch.where(mask, values, torch.zeros_like(values)), mask, scale

    @numpy_in_numpy_out
    @torch.no_grad()
    def impute(
        self,
        series: Tensor,
        mask: Tensor | None = None,
        n_samples: int = 1,
        seed: int = 0,
        *,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> Tensor:
        """Fill the missing entries of ``series`` ``(B, L, C)`` (original units).

        Args:
            series: the windows (a tensor or a NumPy array: the result is of the same kind);
                entries where ``mask`` is False may hold anything (NaN).
            mask: bool ``(B, L, C)``, True where observed; ``None``: the non-NaN entries.
            n_samples: samples per window.
            seed: sample ``j`` of window ``i`` has its own generator, seeded by
                ``(i, j, seed)``, so results depend neither on the batch size nor on ``n_samples``.

        Returns:
            ``(B, n_samples, L, C)`` in original units; observed entries equal ``series``.
        """
        self._require_conditional("impute")
        if mask is None:
            if not isinstance(series, Tensor):
                raise ValueError(f"impute(): series must be a float array; got {_describe(series)}")
            mask = ~torch.isnan(series)
        check_int("n_samples", n_samples)
        check_int("seed", seed, minimum=0)
        window_ids = torch.arange(getattr(series, "shape", (0,))[0])
        out = self._impute(series, mask, n_samples, seed, window_ids, batch_size, progress)
        return out.to(series.device)

    def _impute(
        self,
        series: Tensor,
        mask: Tensor,
        n_samples: int,
        seed: int,
        window_ids: Tensor,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> Tensor:
        """:meth:`impute` with the windows' global ids ``(B,)``: sample ``j`` of window ``i``
        draws from the generator of ``(window_ids[i], j, seed)``."""
        values, mask, scale = self._conditional_inputs(series, mask, "impute")
        batch = values.shape[0]
        values = values.repeat_interleave(n_samples, dim=0)
        mask_rep = mask.repeat_interleave(n_samples, dim=0)
        device = values.device
        window_ids = window_ids.to(device=device, dtype=torch.long)
        sample_ids = _pair(window_ids[:, None], torch.arange(n_samples, device=device))
        sample_ids = sample_ids.reshape(-1)
        out = []
        for chunk in self._chunks(batch * n_samples, batch_size):
            rows = slice(chunk.start, chunk.stop)
            noise = PerSampleNoise(sample_ids[rows], stream=_stream(_SAMPLE_STREAM, seed))
            out.append(
                self.generate(
                    len(chunk), noise, values=values[rows], mask=mask_rep[rows], progress=progress
                ).to(torch.float64)
            )
        samples = rearrange(torch.cat(out), "(b s) l c -> b s l c", s=n_samples)
        if scale is not None:
            samples = WindowScale(scale.low[:, None], scale.high[:, None]).inverse_transform(
                samples
            )
        samples = self.scaler.inverse_transform(samples)
        original = series.to(device=samples.device, dtype=samples.dtype)[:, None]
        return torch.where(mask[:, None], original, samples)

    @numpy_in_numpy_out
    @torch.no_grad()
    def forecast(
        self,
        history: Tensor,
        horizon: int,
        n_samples: int = 1,
        seed: int = 0,
        *,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> Tensor:
        """Forecast ``horizon`` steps after ``history`` ``(B, H, C)`` (original units).

        The last ``window - horizon`` steps of the history are the observed part of a window
        whose last ``horizon`` steps are imputed; NaN in the history marks missing values.

        Returns:
            ``(B, n_samples, horizon, C)`` in original units.
        """
        self._require_conditional("forecast")
        window = self.hparams.window
        trained = self.hparams.horizon if self.hparams.task == "forecast" else window - 1
        integer = isinstance(horizon, Integral) and not isinstance(horizon, bool)
        if not integer or not 1 <= horizon <= trained:
            raise ValueError(
                f"forecast(): horizon must be an integer in [1, {trained}] (this model was trained "
                f"for task={self.hparams.task!r} with window {window}); got {horizon!r}"
            )
        if not isinstance(history, Tensor) or history.ndim != 3 or not history.is_floating_point():
            raise ValueError(
                f"forecast(): history must be a float array (batch, steps, features); got "
                f"{_describe(history)}"
            )
        features = self.hparams.n_features
        if history.shape[0] == 0 or history.shape[2] != features:
            raise ValueError(
                f"forecast(): history has shape {tuple(history.shape)} but the model takes "
                f"(batch >= 1, steps, {features})"
            )
        if bool(torch.isinf(history).any()):
            raise ValueError(
                f"forecast(): history holds {int(torch.isinf(history).sum())} infinite values; "
                "mark missing values with NaN"
            )
        horizon = int(horizon)
        need = window - horizon
        if history.shape[1] < need:
            raise ValueError(
                f"forecast(): history has {history.shape[1]} steps but a horizon of {horizon} "
                f"needs at least window - horizon = {need}"
            )
        past = history[:, history.shape[1] - need :]
        series = torch.cat(
            [past, past.new_full((past.shape[0], horizon, past.shape[2]), math.nan)], 1
        )
        mask = torch.cat(
            [~torch.isnan(past), torch.zeros_like(past[:, :horizon], dtype=torch.bool)], dim=1
        )
        imputed = self.impute(
            series, mask, n_samples, seed, batch_size=batch_size, progress=progress
        )
        return imputed[:, :, need:]

    def _require_conditional(self, name: str) -> None:
        if not self.conditional:
            raise ValueError(
                f"{name}() needs a model trained with task='impute' or 'forecast'; this one was "
                "trained for unconditional generation (task='generate')"
            )

    # ------------------------------------------------------------------------------- prediction

    def prediction_dataset(self, split: WindowSplit) -> Dataset:
        """What ``predict`` iterates over (called by :class:`~tsgen.data.WindowsDataModule`):
        the sample indices ``0 .. num_samples - 1`` for ``"generate"``, otherwise the indices
        and original-unit windows of ``split`` (the test split), each completed ``num_samples``
        times."""
        if not self.conditional:
            return WholeBatchDataset(torch.arange(self.hparams.num_samples))
        return WholeBatchDataset(torch.arange(split.raw.shape[0]), split.raw)

    @property
    def prediction_batch_size(self) -> int:
        """Items per ``predict`` batch: about ``sample_batch_size`` sampler rows."""
        per_item = self.hparams.num_samples if self.conditional else 1
        return max(1, self.hparams.sample_batch_size // per_item)

    def predict_step(
        self, batch: Tensor | tuple[Tensor, Tensor], batch_idx: int
    ) -> dict[str, Tensor]:
        """``batch``: sample indices ``(B,)``, or window indices and raw windows (see
        :meth:`prediction_dataset`). Returns ``index (B,)`` and ``samples`` in original units:
        ``(B, L, C)`` for ``"generate"``, ``(B, num_samples, L, C)`` otherwise, with the task's
        ``mask`` ``(B, L, C)`` (True where the model was given the value)."""
        hp = self.hparams
        if not self.conditional:
            index = batch
            noise = PerSampleNoise(index, stream=_stream(_SAMPLE_STREAM, hp.seed))
            x = self.generate(index.shape[0], noise)
            return {"index": index, "samples": self.scaler.inverse_transform(x)}
        index, raw = batch
        observed = ~torch.isnan(raw)
        if hp.task == "forecast":
            mask = observed & forecast_mask(raw.shape, hp.horizon, device=raw.device)
        else:
            # Each window's mask comes from its own generator: independent of the batching.
            draws = PerSampleNoise(index, stream=_stream(_MASK_STREAM, hp.seed)).normal(
                raw.shape, torch.float64, raw.device
            )
            mask = observed & (normal_cdf(draws) >= hp.predict_missing_ratio)
        samples = self._impute(raw, mask, hp.num_samples, hp.seed, index)
        return {"index": index, "samples": samples, "mask": mask}


def _window_scale_from(
    x: Tensor, observed: Tensor, min_span: Tensor | None = None, span: Tensor | None = None
) -> WindowScale:
    """The instance scale of windows ``(B, L, C)`` given in the global model space, from their
    ``observed`` entries: each feature over at least ``min_span`` ``(C,)`` and over ``span``
    ``(C,)`` where it has fewer than two distinct observed values (global units; ``None``: 2,
    the feature's whole range).

    Training (:func:`_rescale_from`) and :meth:`TimeBridge.impute` both scale through it, from
    the global model space, so that a feature without an observed value in a window is centred
    at the data's midpoint in training and at inference alike.
    """
    if span is None:
        span = torch.full((x.shape[2],), 2.0)
    span = span.to(dtype=x.dtype, device=x.device)
    if min_span is not None:
        min_span = min_span.to(dtype=x.dtype, device=x.device)
    return fit_window_scale(x, observed, span=span, min_span=min_span)


def _rescale_from(
    x: Tensor, observed: Tensor, min_span: Tensor | None = None, span: Tensor | None = None
) -> Tensor:
    """Windows ``(B, L, C)`` in the global model space, instance-scaled by
    :func:`_window_scale_from` (same arguments)."""
    return _window_scale_from(x, observed, min_span, span).transform(x)


def _describe(value: object) -> str:
    if isinstance(value, (Tensor, np.ndarray)):
        return f"{type(value).__name__} of shape {tuple(value.shape)} and dtype {value.dtype}"
    return type(value).__name__
