"""Confidence intervals for metrics repeated over independent runs.

The unconditional-generation papers (Yoon et al. 2019, TimeGAN; Yuan & Qiao 2024, Diffusion-TS)
repeat each metric a few times (5) with fresh randomness and report ``mean +- half-width`` where
the half-width is that of the two-sided 95% Student-t interval for the mean,
``t(0.975, n - 1) * std(ddof=1) / sqrt(n)`` (not a standard deviation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy import stats
from torch import Tensor

__all__ = ["format_interval", "t_interval"]


def t_interval(values: Sequence[float] | np.ndarray | Tensor) -> tuple[float, float]:
    """Mean and 95% Student-t half-width of ``values``.

    Args:
        values: ``(n,)`` finite numbers (a sequence, NumPy array or tensor), ``n >= 2``, e.g. the
            scores of ``n`` repeats of a metric.

    Returns:
        ``(mean, half)`` as Python floats with
        ``half = t.ppf(0.975, n - 1) * std(values, ddof=1) / sqrt(n)``; the interval is
        ``[mean - half, mean + half]``.

    Raises:
        ValueError: if ``values`` is not one-dimensional, has fewer than 2 entries (the sample
            standard deviation needs ``n - 1 >= 1``) or holds NaN or infinite entries.
    """
    if isinstance(values, Tensor):
        arr = values.detach().to("cpu", torch.float64).numpy()
    else:
        arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"values must be one-dimensional; got shape {arr.shape}")
    n = arr.shape[0]
    if n < 2:
        raise ValueError(f"values must hold at least 2 entries for a t-interval; got {n}")
    if not np.isfinite(arr).all():
        raise ValueError(f"values must be finite; got {int((~np.isfinite(arr)).sum())} NaN or inf")
    if arr.min() == arr.max():
        # Equal values have no spread; their mean in floating point need not equal them
        # (106138.53583003896 five times gives a standard deviation of 1.6e-11).
        return float(arr[0]), 0.0
    mean = float(arr.mean())
    half = float(stats.t.ppf(0.975, n - 1) * arr.std(ddof=1) / math.sqrt(n))
    return mean, half


def format_interval(mean: float, half: float, digits: int = 3) -> str:
    """``mean`` and ``half`` as ``"<mean> +- <half>"`` with ``digits`` decimals each, e.g.
    ``format_interval(0.0281, 0.0337) == "0.028 +- 0.034"``."""
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 0:
        raise ValueError(f"digits must be a non-negative integer; got {digits!r}")
    return f"{mean:.{digits}f} +- {half:.{digits}f}"
