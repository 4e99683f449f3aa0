"""The TimeBridge / Diffusion-TS regression loss: an error in time plus the same error on the
Fourier coefficients (timebridge.md, "Training"), absolute (the reference's) or squared."""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import Tensor

from tsgen._validation import check_choice, check_open_fraction

__all__ = [
    "LOSS_NORMS",
    "TIME_DISTRIBUTIONS",
    "LossNorm",
    "TimeDistribution",
    "default_fourier_weight",
    "fourier_regression_loss",
    "training_times",
]

LossNorm = Literal["l1", "l2"]
LOSS_NORMS: tuple[str, ...] = get_args(LossNorm)

TimeDistribution = Literal["uniform", "log_uniform", "mixed"]
TIME_DISTRIBUTIONS: tuple[str, ...] = get_args(TimeDistribution)


def default_fourier_weight(window: int) -> float:
    """``lambda_F = sqrt(L) / 5``, the reference's weight of the Fourier term."""
    return math.sqrt(window) / 5


def fourier_regression_loss(
    prediction: Tensor,
    target: Tensor,
    fourier_weight: float,
    mask: Tensor | None = None,
    norm: LossNorm = "l1",
) -> Tensor:
    """Per-sample ``mean e(D - x0) + lambda_F (mean e(Re F(D - x0)) + mean e(Im F(D - x0)))``.

    ``e`` is ``|.|`` for ``norm="l1"`` (the reference's loss) and ``(.)^2`` for ``"l2"``. With
    ``"l2"`` the minimiser is the posterior mean ``E[x0 | x_t, x_T]``, the quantity the sampler's
    drift is built from, and the bridge weight ``1 / c_out^2`` is EDM's weight for exactly this
    error; the time term's minimiser under ``"l1"`` is the per-entry posterior median instead
    (docs/timebridge.md: what the squared error changed on Stocks). By Parseval, under ``"l2"``
    the unmasked Fourier term equals the time term divided by ``L``.

    ``F`` is ``torch.fft.fft`` along time with ``norm="forward"``; means run over all elements of
    a sample.

    Args:
        prediction: ``D``, ``(B, L, C)``.
        target: ``x0``, ``(B, L, C)``.
        fourier_weight: ``lambda_F`` (see :func:`default_fourier_weight`).
        mask: optional bool ``(B, L, C)``: the time-domain term averages over the True entries
            only (entries that carry no information, e.g. observed values in imputation, are
            left out); the Fourier term always sees whole windows.
        norm: ``"l1"`` or ``"l2"``.

    Returns:
        ``(B,)``.
    """
    check_choice("norm", norm, LOSS_NORMS)
    penalty = torch.abs if norm == "l1" else torch.square
    difference = prediction - target
    error = penalty(difference)
    if mask is None:
        time_term = error.mean(dim=(1, 2))
    else:
        weight = mask.to(error.dtype)
        time_term = (error * weight).sum(dim=(1, 2)) / weight.sum(dim=(1, 2)).clamp_min(1.0)
    if fourier_weight == 0:
        return time_term
    # F is linear, so F(D) - F(x0) = F(D - x0): one transform instead of two.
    spectrum = torch.fft.fft(difference, dim=1, norm="forward")
    fourier_term = penalty(spectrum.real).mean(dim=(1, 2)) + penalty(spectrum.imag).mean(dim=(1, 2))
    return time_term + fourier_weight * fourier_term


def training_times(
    n: int,
    t_min: float,
    t_max: float,
    distribution: TimeDistribution,
    *,
    log_fraction: float = 0.5,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """``n`` training times in ``[t_min, t_max]``, ``(n,)``.

    ``"uniform"`` is the reference's ``U[t_min, t_max]``; ``"log_uniform"`` draws ``log t``
    uniformly, so every decade of ``t`` is trained equally often; ``"mixed"`` draws each time
    log-uniformly with probability ``log_fraction`` and uniformly otherwise. Under
    ``"uniform"`` with ``t_min = 1e-4`` only 1% of the draws fall below ``1e-2``, where the
    sampler spends half of its steps and the series' step-to-step detail is decided
    (docs/timebridge.md).

    Raises:
        ValueError: an unknown ``distribution``, or ``log_fraction`` outside ``(0, 1)``.
    """
    check_choice("distribution", distribution, TIME_DISTRIBUTIONS)
    check_open_fraction("log_fraction", log_fraction)
    u = torch.rand(n, generator=generator, device=device, dtype=dtype)
    uniform = t_min + (t_max - t_min) * u
    if distribution == "uniform":
        return uniform
    log_uniform = torch.exp(math.log(t_min) + (math.log(t_max) - math.log(t_min)) * u)
    if distribution == "log_uniform":
        return log_uniform
    pick_log = torch.rand(n, generator=generator, device=device, dtype=dtype) < log_fraction
    return torch.where(pick_log, log_uniform, uniform)
