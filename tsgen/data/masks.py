"""Observation masks for conditional generation: imputation and forecasting (timebridge.md,
"Conditional generation").

A mask is a bool tensor ``(B, L, C)``, True where a value is observed (given to the model) and
False where it must be predicted.

- :func:`random_missing_mask`: each entry missing independently (random points).
- :func:`geometric_runs_mask`: per feature, missing runs with geometric lengths (mean 3 by default).
- :func:`forecast_mask`: the last ``horizon`` steps missing.
- :func:`sample_missing_ratios`: one missing ratio per window, for training on masked windows
  with random missing ratios.

Randomness comes only from the ``generator`` argument (the device's global generator when
``None``) and is drawn on the device, without host synchronisation, so masks can be drawn inside
a training step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real

import torch
from einops import rearrange
from torch import Tensor

from tsgen._validation import check_int

__all__ = ["forecast_mask", "geometric_runs_mask", "random_missing_mask", "sample_missing_ratios"]

Shape = Sequence[int]


def _check_shape(shape: Shape) -> tuple[int, int, int]:
    """``shape`` as ``(B, L, C)`` of positive integers, else an error naming what came."""
    if isinstance(shape, str | bytes) or not isinstance(shape, Sequence) or len(shape) != 3:
        raise ValueError(f"shape must be (B, L, C), three positive integers; got {shape!r}")
    for axis, size in zip("BLC", shape, strict=True):
        check_int(f"shape {axis}", size)
    return int(shape[0]), int(shape[1]), int(shape[2])


def _interval(upper: float, closed: bool, why: str) -> str:
    return f"[0, {upper:g}{']' if closed else ')'}{why}"


def _check_fraction(
    name: str, value: object, upper: float = 1.0, closed: bool = False, why: str = ""
) -> float:
    """``value`` as a float in ``[0, upper)`` (``[0, upper]`` when ``closed``), else a
    ``TypeError``/``ValueError`` naming ``name``, the range (and ``why``) and what came."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(
            f"{name} must be a real number in {_interval(upper, closed, why)}; got {value!r}"
        )
    if not (0.0 <= value <= upper if closed else 0.0 <= value < upper):
        raise ValueError(f"{name} must lie in {_interval(upper, closed, why)}; got {value!r}")
    return float(value)


def _resolve_device(
    device: torch.device | str | None, generator: torch.Generator | None, ratio: object
) -> torch.device:
    """The device to draw on: ``device`` if given, else that of a ratio tensor, else that of
    ``generator``, else the CPU."""
    if device is not None:
        return torch.device(device)
    if isinstance(ratio, Tensor):
        return ratio.device
    return generator.device if generator is not None else torch.device("cpu")


def _check_ratio(
    missing_ratio: float | Tensor,
    batch: int,
    device: torch.device,
    upper: float = 1.0,
    closed: bool = False,
    why: str = "",
) -> float | Tensor:
    """A float ratio in ``[0, upper)`` (``]`` when ``closed``), or per-window ratios ``(B,)``
    moved to ``device``; errors name the range (and ``why``) and what came.

    A tensor's values are range-checked only on the CPU: reading them from an accelerator would
    synchronise with the host.
    """
    if not isinstance(missing_ratio, Tensor):
        return _check_fraction("missing_ratio", missing_ratio, upper, closed, why)
    if not missing_ratio.is_floating_point():
        raise TypeError(
            f"missing_ratio must be a float or a floating tensor (B,); got a {missing_ratio.dtype} "
            "tensor"
        )
    if missing_ratio.shape != (batch,):
        raise ValueError(
            f"missing_ratio must be a float or a tensor of shape (B,) = ({batch},); got shape "
            f"{tuple(missing_ratio.shape)}"
        )
    if missing_ratio.device.type == "cpu":
        above = missing_ratio > upper if closed else missing_ratio >= upper
        bad = (missing_ratio < 0) | above | missing_ratio.isnan()
        if bad.any():
            window = int(bad.nonzero()[0, 0])
            raise ValueError(
                f"missing_ratio must lie in {_interval(upper, closed, why)}; got "
                f"{missing_ratio[window].item()!r} for window {window}"
            )
    return missing_ratio.to(device)


def random_missing_mask(
    shape: Shape,
    missing_ratio: float | Tensor,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Each entry missing independently with probability ``missing_ratio``.

    Args:
        shape: ``(B, L, C)``.
        missing_ratio: a float in ``[0, 1)``, or a floating tensor ``(B,)`` of per-window ratios
            (e.g. from :func:`sample_missing_ratios`); a tensor's values are range-checked only
            on the CPU.
        generator: the source of randomness, on the device drawn on; ``None`` uses that
            device's global generator.
        device: where to draw; ``None`` takes the device of a ratio tensor, else of
            ``generator``, else the CPU.

    Returns:
        ``(B, L, C)`` bool, True where observed.
    """
    B, L, C = _check_shape(shape)
    device = _resolve_device(device, generator, missing_ratio)
    ratio = _check_ratio(missing_ratio, B, device)
    if isinstance(ratio, Tensor):
        ratio = rearrange(ratio, "b -> b 1 1")
    return torch.rand((B, L, C), generator=generator, device=device) >= ratio


def sample_missing_ratios(
    n: int,
    low: float,
    high: float,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """``(n,)`` float32 missing ratios drawn uniformly from ``[low, high)``, one per window.

    Raises:
        ValueError: unless ``0 <= low <= high < 1`` and ``n`` is a positive integer.
        TypeError: for a ``low`` or ``high`` that is not a real number.
    """
    check_int("n", n)
    low, high = _check_fraction("low", low), _check_fraction("high", high)
    if low > high:
        raise ValueError(f"low must not exceed high; got low={low!r}, high={high!r}")
    device = _resolve_device(device, generator, None)
    ratios = torch.rand(n, generator=generator, device=device, dtype=torch.float32)
    return ratios.mul_(high - low).add_(low)


def geometric_runs_mask(
    shape: Shape,
    missing_ratio: float | Tensor,
    mean_run: float = 3.0,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Per feature, missing runs of geometric length (mean ``mean_run``) between observed runs.

    Along time each (window, feature) is a two-state Markov chain: a missing entry stays missing
    with probability ``1 - 1 / mean_run`` (so missing runs have geometric lengths with mean
    ``mean_run``), and an observed entry turns missing with probability
    ``q = r / (mean_run (1 - r))``, which makes the stationary missing fraction ``r =
    missing_ratio`` (observed runs then have mean length ``1 / q``). The chain starts in its
    stationary distribution, so every step is missing with probability ``r``.

    Args:
        shape: ``(B, L, C)``.
        missing_ratio: a float, or a floating tensor ``(B,)`` of per-window ratios, in
            ``[0, mean_run / (mean_run + 1)]``: beyond that the observed runs would have to be
            shorter than one step. A tensor's values are range-checked only on the CPU (larger
            ones saturate at that bound).
        mean_run: mean length of the missing runs, at least 1.
        generator: the source of randomness, on the device drawn on; ``None`` uses that
            device's global generator.
        device: where to draw; ``None`` takes the device of a ratio tensor, else of
            ``generator``, else the CPU.

    Returns:
        ``(B, L, C)`` bool, True where observed.
    """
    B, L, C = _check_shape(shape)
    if isinstance(mean_run, bool) or not isinstance(mean_run, Real):
        raise TypeError(f"mean_run must be a real number >= 1; got {mean_run!r}")
    if not (math.isfinite(mean_run) and mean_run >= 1):
        raise ValueError(f"mean_run must be a finite number >= 1; got {mean_run!r}")
    # At the bound the observed runs last exactly one step (q = 1); beyond it they cannot.
    bound = mean_run / (mean_run + 1)
    device = _resolve_device(device, generator, missing_ratio)
    why = f" (mean_run / (mean_run + 1) for mean_run={mean_run!r})"
    ratio = _check_ratio(missing_ratio, B, device, bound, closed=True, why=why)
    if isinstance(ratio, Tensor):
        ratio = rearrange(ratio, "b -> b 1")
    stay = 1.0 - 1.0 / mean_run
    enter = ratio / (mean_run * (1.0 - ratio))
    u = torch.rand((B, L, C), generator=generator, device=device)
    missing = torch.empty((B, L, C), dtype=torch.bool, device=device)
    missing[:, 0] = u[:, 0] < ratio
    # Each step depends on the previous one: a loop over time, vectorised over windows and
    # features, reading pre-drawn uniforms (one generator call, no host synchronisation).
    for t in range(1, L):
        missing[:, t] = u[:, t] < torch.where(missing[:, t - 1], stay, enter)
    return ~missing


def forecast_mask(
    shape: Shape, horizon: int, *, device: torch.device | str | None = None
) -> Tensor:
    """The forecasting mask: the last ``horizon`` steps missing, all earlier steps observed.

    Args:
        shape: ``(B, L, C)``.
        horizon: the number of trailing steps to predict, ``1 <= horizon < L``.
        device: where to build the mask; ``None`` is the CPU.

    Returns:
        ``(B, L, C)`` bool, True where observed.
    """
    B, L, C = _check_shape(shape)
    check_int("horizon", horizon)
    if horizon >= L:
        raise ValueError(f"horizon must be an integer in [1, L={L}); got {horizon!r}")
    mask = torch.ones((B, L, C), dtype=torch.bool, device=device)
    mask[:, L - horizon :] = False
    return mask
