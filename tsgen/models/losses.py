"""The TimeBridge / Diffusion-TS regression loss: L1 in time plus L1 on the Fourier coefficients
(timebridge.md, "Training")."""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import Tensor

from tsgen._validation import check_choice

__all__ = [
    "TIME_DISTRIBUTIONS",
    "TimeDistribution",
    "default_fourier_weight",
    "l1_fourier_loss",
    "training_times",
]

TimeDistribution = Literal["uniform", "log_uniform", "mixed"]
TIME_DISTRIBUTIONS: tuple[str, ...] = get_args(TimeDistribution)


def default_fourier_weight(window: int) -> float:
    """``lambda_F = sqrt(L) / 5``, the reference's weight of the Fourier term."""
    return math.sqrt(window) / 5


def l1_fourier_loss(
    prediction: Tensor, target: Tensor, fourier_weight: float, mask: Tensor | None = None
) -> Tensor:
    """Per-sample ``mean|D - x0| + lambda_F (mean|Re F(D) - Re F(x0)| + mean|Im F(D) - Im F(x0)|)``.

    ``F`` is ``torch.fft.fft`` along time with ``norm="forward"``; means run over all elements of
    a sample.

    Args:
        prediction: ``D``, ``(B, L, C)``.
        target: ``x0``, ``(B, L, C)``.
        fourier_weight: ``lambda_F`` (see :func:`default_fourier_weight`).
        mask: optional bool ``(B, L, C)``: the time-domain term averages over the True entries
            only (entries that carry no information, e.g. observed values in imputation, are
            left out); the Fourier term always sees whole windows.

    Returns:
        ``(B,)``.
    """
    error = (prediction - target).abs()
    if mask is None:
        time_term = error.mean(dim=(1, 2))
    else:
        weight = mask.to(error.dtype)
        time_term = (error * weight).sum(dim=(1, 2)) / weight.sum(dim=(1, 2)).clamp_min(1.0)
    if fourier_weight == 0:
        return time_term
    spectrum = torch.fft.fft(prediction - target, dim=1, norm="forward")
    # F is linear, so F(D) - F(x0) = F(D - x0): one transform instead of two.
    fourier_term = spectrum.real.abs().mean(dim=(1, 2)) + spectrum.imag.abs().mean(dim=(1, 2))
    return time_term + fourier_weight * fourier_term


def training_times(
    n: int,
    t_min: float,
    t_max: float,
    distribution: TimeDistribution,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """``n`` training times in ``[t_min, t_max]``, ``(n,)``.

    ``"uniform"`` is the reference's ``U[t_min, t_max]``; ``"log_uniform"`` draws ``log t``
    uniformly, so every decade of ``t`` is trained equally often; ``"mixed"`` draws each time
    from one or the other with probability 1/2. Under ``"uniform"`` with
    ``t_min = 1e-4`` only 1% of the draws fall below ``1e-2``, where the sampler spends half of
    its steps and the series' step-to-step detail is decided (docs/timebridge.md).
    """
    check_choice("distribution", distribution, TIME_DISTRIBUTIONS)
    u = torch.rand(n, generator=generator, device=device, dtype=dtype)
    uniform = t_min + (t_max - t_min) * u
    if distribution == "uniform":
        return uniform
    log_uniform = torch.exp(math.log(t_min) + (math.log(t_max) - math.log(t_min)) * u)
    if distribution == "log_uniform":
        return log_uniform
    pick_log = torch.rand(n, generator=generator, device=device, dtype=dtype) < 0.5
    return torch.where(pick_log, log_uniform, uniform)
