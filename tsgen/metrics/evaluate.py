"""One call for the whole evaluation of generated windows against real ones (metrics.md,
"Interface"): scale both sets to ``[0, 1]`` by the real windows' per-feature min-max, run the
chosen metrics with their repeats, and return a :class:`~tsgen.metrics.report.Report`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tsgen import __version__
from tsgen.metrics._repeats import cuda_precision, repeat_generators, resolve_device
from tsgen.metrics.context_fid import context_fid
from tsgen.metrics.correlational import constant_features, correlational_score
from tsgen.metrics.discriminative import ITERATIONS as DISCRIMINATIVE_ITERATIONS
from tsgen.metrics.discriminative import discriminative_score
from tsgen.metrics.distances import (
    _check_pair,
    acf_distance,
    marginal_wasserstein,
    mmd_rbf,
    spectrum_distance,
)
from tsgen.metrics.predictive import ITERATIONS as PREDICTIVE_ITERATIONS
from tsgen.metrics.predictive import predictive_score
from tsgen.metrics.report import MetricResult, Report
from tsgen.metrics.ts2vec import protocol_iterations

__all__ = [
    "METRICS",
    "PAPER_METRICS",
    "TRAINED_METRICS",
    "check_unit_interval",
    "evaluate",
    "minmax_scale",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Metric:
    label: str
    # (real, fake, repeats, seed, device, progress, iterations, tf32) -> (values, note)
    compute: Callable[..., tuple[Tensor, str]]


def _iterations_note(iterations: int | None, protocol: int) -> str:
    """How long the metric's networks trained: a number set in place of the protocol's is
    said, so that a quick look is never read as the protocol."""
    if iterations is None or iterations == protocol:
        return f"{protocol} training iterations (the protocol's)"
    return f"{iterations} training iterations, set (the protocol's: {protocol})"


def _context_fid(real, fake, repeats, seed, device, progress, iterations, tf32):
    values = context_fid(
        real,
        fake,
        repeats=repeats,
        seed=seed,
        iterations=iterations,
        device=device,
        progress=progress,
        tf32=tf32,
    )
    return values, _iterations_note(iterations, protocol_iterations(*real.shape))


def _correlational(real, fake, repeats, seed, device, progress, iterations, tf32):
    # One generator per repeat, as the trained metrics: repeat r depends on (seed, r) only.
    generators = repeat_generators(seed, repeats, torch.device("cpu"))
    values = [correlational_score(real, fake, repeats=1, generator=g) for g in generators]
    return torch.cat(values), ""


def _discriminative(real, fake, repeats, seed, device, progress, iterations, tf32):
    kwargs = {} if iterations is None else {"iterations": iterations}
    values = discriminative_score(
        real, fake, repeats=repeats, seed=seed, device=device, progress=progress, tf32=tf32,
        **kwargs,
    )  # fmt: skip
    return values, _iterations_note(iterations, DISCRIMINATIVE_ITERATIONS)


def _predictive(real, fake, repeats, seed, device, progress, iterations, tf32):
    kwargs = {} if iterations is None else {"iterations": iterations}
    univariate = real.shape[-1] == 1
    values = predictive_score(
        real,
        fake,
        repeats=repeats,
        seed=seed,
        device=device,
        progress=progress,
        univariate=univariate,
        tf32=tf32,
        **kwargs,
    )
    note = _iterations_note(iterations, PREDICTIVE_ITERATIONS)
    if univariate:
        note += (
            "; univariate variant (the next value from the past values; the protocol needs C >= 2)"
        )
    return values, note


def _marginal(real, fake, repeats, seed, device, progress, iterations, tf32):
    return marginal_wasserstein(real, fake).mean(), "mean over features"


def _acf(real, fake, repeats, seed, device, progress, iterations, tf32):
    return acf_distance(real, fake).mean(), "lags 1..L/2, mean over features"


def _spectrum(real, fake, repeats, seed, device, progress, iterations, tf32):
    return spectrum_distance(real, fake).mean(), "mean over features"


def _mmd(real, fake, repeats, seed, device, progress, iterations, tf32):
    generator = torch.Generator().manual_seed(seed)
    return mmd_rbf(real, fake, generator=generator), "squared, RBF kernel, median heuristic"


METRICS: dict[str, _Metric] = {
    "context_fid": _Metric("Context-FID", _context_fid),
    "correlational": _Metric("Correlational", _correlational),
    "discriminative": _Metric("Discriminative", _discriminative),
    "predictive": _Metric("Predictive", _predictive),
    "marginal_wasserstein": _Metric("Marginal W1", _marginal),
    "acf": _Metric("ACF distance", _acf),
    "spectrum": _Metric("Spectrum distance", _spectrum),
    "mmd": _Metric("MMD", _mmd),
}
"""The metrics :func:`evaluate` knows, by name."""

PAPER_METRICS = ("context_fid", "correlational", "discriminative", "predictive")
"""The four metrics of the papers' protocol (TimeGAN, Diffusion-TS, TimeBridge), in their
tables' order."""

TRAINED_METRICS = ("context_fid", "discriminative", "predictive")
"""The metrics that train a network, whose iteration counts :func:`evaluate` can override."""

# How far outside [0, 1] real windows said to be scaled may reach: rounding of a min-max map.
_SCALED_SLACK = 1e-6


def minmax_scale(real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    """Both sets mapped by the per-feature affine map that sends the real windows' minimum to 0
    and maximum to 1 (over windows and steps); a feature constant in ``real`` is only shifted.

    Args:
        real: ``(N, L, C)``; fake: ``(M, L, C)``.

    Returns:
        The scaled ``real`` (in ``[0, 1]``) and ``fake`` (may leave ``[0, 1]``).
    """
    low = real.amin(dim=(0, 1))
    span = real.amax(dim=(0, 1)) - low
    span = torch.where(span > 0, span, torch.ones_like(span))
    return (real - low) / span, (fake - low) / span


def check_unit_interval(real: Tensor | np.ndarray) -> None:
    """Raise unless ``real`` lies in ``[0, 1]`` (up to rounding), as ``scaled=True`` says."""
    low, high = float(real.min()), float(real.max())
    if low < -_SCALED_SLACK or high > 1 + _SCALED_SLACK:
        raise ValueError(
            f"scaled=True says real is already in [0, 1]; its values span [{low:.4g}, "
            f"{high:.4g}] (scaled=False scales both sets by the real windows' min-max)"
        )


def _as_windows(name: str, value: object) -> Tensor:
    if isinstance(value, np.ndarray):
        if not np.issubdtype(value.dtype, np.number):
            raise TypeError(f"{name} must hold numbers; got a NumPy array of dtype {value.dtype}")
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, Tensor):
        raise TypeError(
            f"{name} must be a NumPy array or torch.Tensor of shape (N, L, C); got "
            f"{type(value).__name__}"
        )
    # Float64 until the sets are scaled: float32 keeps 7 digits, so a series with a large
    # offset (1e6 +- 0.01) would lose its variation before the offset is taken off.
    return value.detach().to("cpu", torch.float64)


def _metric_names(metrics: str | Sequence[str]) -> list[str]:
    """The metric names of ``metrics``, ``"paper"`` and ``"all"`` expanded, without repeats."""
    requested = [metrics] if isinstance(metrics, str) else list(metrics)
    groups = {"paper": list(PAPER_METRICS), "all": list(METRICS)}
    names = [n for m in requested for n in groups.get(m, [m])]
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise ValueError(
            f"metrics must be 'paper', 'all' or a non-empty list of those and {sorted(METRICS)}; "
            f"got {metrics!r}"
        )
    return list(dict.fromkeys(names))


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def evaluate(
    real: np.ndarray | Tensor,
    fake: np.ndarray | Tensor,
    metrics: str | Sequence[str] = "paper",
    *,
    repeats: int = 5,
    seed: int = 0,
    device: str | torch.device | None = None,
    scaled: bool = False,
    iterations: Mapping[str, int] | None = None,
    progress: bool = False,
    tf32: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> Report:
    """Evaluate generated windows against real ones.

    Args:
        real: ``(N, L, C)`` real windows (for the papers' protocol: all training windows).
        fake: ``(M, L, C)`` generated windows in the same units.
        metrics: ``"paper"`` (Context-FID, correlational, discriminative and predictive scores,
            the protocol of TimeGAN / Diffusion-TS / TimeBridge), ``"all"`` (those plus the
            marginal Wasserstein-1, ACF, spectrum and MMD distances) or a list of names from
            :data:`METRICS`.
        repeats: repeats of the randomised metrics (the papers use 5; use 20 to compare
            models, the discriminative score being noisy). Repeat ``r`` depends only on
            ``(seed, r)``, so 20 repeats extend 5.
        seed: seed of the randomised metrics.
        device: where the trained metrics run; ``None``: CUDA when available.
        scaled: ``True`` if both sets are already in the protocol's ``[0, 1]`` units; otherwise
            both are scaled with the real windows' per-feature min-max (:func:`minmax_scale`).
        iterations: training iterations per metric name, overriding the protocol's (Context-FID
            200 or 600, discriminative 2000, predictive 5000), e.g. for a quick look.
        progress: show progress bars for the trained metrics.
        tf32: allow TF32 in CUDA matmuls and cuDNN (faster on Ampere and later GPUs). Off by
            default, so the trained metrics run in float32 as the reference's do; the report
            records which.
        metadata: facts kept with the numbers in the report (checkpoint, steps, commit).

    Returns:
        A :class:`~tsgen.metrics.report.Report`; ``print`` it for a table, ``save`` it as JSON,
        ``plot`` it (``viz`` extra).
    """
    start = time.perf_counter()
    real, fake = _check_pair(_as_windows("real", real), _as_windows("fake", fake))
    names = _metric_names(metrics)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 2:
        raise ValueError(f"repeats must be an integer >= 2 (for a t-interval); got {repeats!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    iterations = dict(iterations or {})
    bad = {k: v for k, v in iterations.items() if k not in TRAINED_METRICS}
    if bad:
        raise ValueError(
            f"iterations can only be set for the trained metrics {TRAINED_METRICS}; got {bad}"
        )
    resolved = resolve_device(device)
    if not scaled:
        real, fake = minmax_scale(real, fake)
    else:
        check_unit_interval(real)
    # The metrics run in float32, as the reference's.
    real, fake = real.float(), fake.float()
    skipped = {}
    if "correlational" in names:
        # Said before anything runs, not raised after the trained metrics: a generator that
        # collapses a feature to one value still gets its other scores.
        constant = {name: constant_features(x) for name, x in (("real", real), ("fake", fake))}
        if real.shape[-1] == 1:
            skipped["correlational"] = "needs C >= 2 features"
        elif any(constant.values()):
            skipped["correlational"] = "undefined: " + "; ".join(
                f"{name} features {features} constant over every window"
                for name, features in constant.items()
                if features
            )
        if "correlational" in skipped:
            names.remove("correlational")
            log.warning("correlational score skipped: %s", skipped["correlational"])

    results: dict[str, MetricResult] = {}
    for name in names:
        metric = METRICS[name]
        log.info("evaluating %s", metric.label)
        tick = time.perf_counter()
        with cuda_precision(tf32):
            values, note = metric.compute(
                real, fake, repeats, seed, resolved, progress, iterations.get(name), tf32
            )
        values = values.detach().to("cpu", torch.float64).reshape(-1)
        results[name] = MetricResult(
            name=name,
            label=metric.label,
            values=tuple(float(v) for v in values),
            seconds=time.perf_counter() - tick,
            note=note,
        )
    meta = {
        "tsgen": __version__,
        "torch": torch.__version__,
        "precision": "tf32" if tf32 and resolved.type == "cuda" else "float32",
        **dict(metadata or {}),
    }
    if skipped:
        meta["skipped"] = skipped
    return Report(
        results=results,
        n_real=real.shape[0],
        n_fake=fake.shape[0],
        window=real.shape[1],
        n_features=real.shape[2],
        repeats=repeats,
        seed=seed,
        device=_device_name(resolved),
        scaling="already in [0, 1]" if scaled else "scaled by the real windows' min-max",
        wall_time_s=time.perf_counter() - start,
        metadata=meta,
        real=real.numpy(),
        fake=fake.numpy(),
    )
