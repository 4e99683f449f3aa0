"""Tests for tsgen.metrics.intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from tsgen.metrics.intervals import format_interval, t_interval


def test_n5_matches_tabulated_quantile() -> None:
    values = [0.031, 0.012, 0.058, 0.020, 0.019]
    mean, half = t_interval(values)
    std = np.std(values, ddof=1)
    assert mean == pytest.approx(np.mean(values), abs=1e-15)
    assert half == pytest.approx(stats.t.ppf(0.975, 4) * std / math.sqrt(5), abs=1e-12)
    # Tabulated t(0.975, 4) = 2.7764451 (to 7 decimals).
    assert half == pytest.approx(2.7764451 * std / math.sqrt(5), rel=1e-7)


def test_n20_and_input_types() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=20)
    mean, half = t_interval(values)
    expected = stats.t.ppf(0.975, 19) * values.std(ddof=1) / math.sqrt(20)
    assert half == pytest.approx(expected, abs=1e-12)
    assert mean == pytest.approx(values.mean(), abs=1e-12)
    assert t_interval(torch.from_numpy(values)) == pytest.approx((mean, half), abs=1e-12)
    assert t_interval(list(values)) == pytest.approx((mean, half), abs=1e-12)
    assert isinstance(mean, float) and isinstance(half, float)


def test_constant_values_zero_width() -> None:
    assert t_interval([2.0, 2.0, 2.0]) == (2.0, 0.0)
    # Equal values whose floating-point mean is not exactly them still have no spread.
    assert t_interval([106138.53583003896] * 5) == (106138.53583003896, 0.0)


@pytest.mark.parametrize(
    "values, match",
    [
        ([1.0], "at least 2"),
        ([], "at least 2"),
        ([1.0, float("nan")], "finite"),
        ([1.0, float("inf")], "finite"),
        ([[1.0, 2.0]], "one-dimensional"),
    ],
)
def test_errors(values: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        t_interval(values)


def test_format_interval() -> None:
    assert format_interval(0.0281, 0.0337) == "0.028 +- 0.034"
    assert format_interval(1.23456, 0.1, digits=2) == "1.23 +- 0.10"
    with pytest.raises(ValueError):
        format_interval(1.0, 0.1, digits=-1)
