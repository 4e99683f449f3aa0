"""tsgen/data/scaling.py: the global min-max scaler (round trip, checkpointing, errors) and
per-window instance scaling from observed entries."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tsgen.data.scaling import MinMaxScaler, fit_window_scale, median_window_span


def assert_round_trip(back: torch.Tensor, x: torch.Tensor) -> None:
    """Within 1e-12 of each feature's range (a relative error is meaningless near zero)."""
    span = x.nan_to_num(0.0).amax(dim=(0, 1)) - x.nan_to_num(0.0).amin(dim=(0, 1))
    assert ((back - x).abs() / span).max() <= 1e-12


def series(seed: int, shape: tuple[int, ...] = (40, 24, 3)) -> torch.Tensor:
    """Features on very different scales (like prices and volumes)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64) * torch.tensor([1.0, 1e3, 1e7])


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**31 - 1))
def test_round_trip_and_range(seed: int) -> None:
    x = series(seed)
    scaler = MinMaxScaler(3).fit(x)
    y = scaler.transform(x)
    assert y.dtype == torch.float64
    torch.testing.assert_close(y.amin(dim=(0, 1)), -torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(y.amax(dim=(0, 1)), torch.ones(3, dtype=torch.float64))
    assert_round_trip(scaler.inverse_transform(y), x)
    torch.testing.assert_close(scaler.to_unit(x), (y + 1) / 2, rtol=0, atol=1e-12)
    assert_round_trip(scaler.from_unit(scaler.to_unit(x)), x)


def test_fit_on_rows_ignores_nan_and_does_not_clip() -> None:
    train = np.array([[0.0, 5.0], [np.nan, 7.0], [2.0, np.nan]])
    scaler = MinMaxScaler(2).fit(train)
    torch.testing.assert_close(scaler.data_min, torch.tensor([0.0, 5.0], dtype=torch.float64))
    later = torch.tensor([[4.0, 3.0]], dtype=torch.float64)  # outside the training range
    torch.testing.assert_close(scaler.transform(later), torch.tensor([[3.0, -3.0]]).double())
    assert scaler.transform(later.float()).dtype == torch.float32


def test_travels_in_a_state_dict() -> None:
    scaler = MinMaxScaler(3).fit(series(0))
    buffer = io.BytesIO()
    torch.save(scaler.state_dict(), buffer)
    buffer.seek(0)
    restored = MinMaxScaler(3)
    restored.load_state_dict(torch.load(buffer))
    x = series(1)
    torch.testing.assert_close(restored.transform(x), scaler.transform(x), rtol=0, atol=0)
    assert set(scaler.state_dict()) == {"data_min", "data_max", "fitted"}


def test_errors() -> None:
    with pytest.raises(ValueError, match="not fitted; call fit"):
        MinMaxScaler(2).transform(torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"feature\(s\) \[1\] are constant"):
        MinMaxScaler(2).fit(torch.tensor([[0.0, 1.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match=r"train must be a floating tensor of shape \(\.\.\., 3\)"):
        MinMaxScaler(3).fit(torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"train must be \(N, L, C\) or \(rows, C\)"):
        MinMaxScaler(2).fit(torch.zeros(2))
    with pytest.raises(TypeError, match="x must be a tensor or NumPy array; got list"):
        MinMaxScaler(1).fit(torch.arange(2.0)[:, None]).transform([[1.0]])
    with pytest.raises(ValueError, match="n_features must be a positive integer"):
        MinMaxScaler(0)


def test_instance_scaling_uses_observed_entries_only() -> None:
    x = series(2, (8, 24, 3))
    mask = torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) < 0.7
    polluted = x.masked_fill(~mask, 1e30)  # unobserved entries must not matter
    polluted[0, 0, 0], mask[0, 0, 0] = torch.nan, False
    scale = fit_window_scale(polluted, mask)
    for n, c in [(0, 0), (3, 1), (7, 2)]:
        seen = x[n, :, c][mask[n, :, c]]
        assert scale.low[n, 0, c] == seen.min() and scale.high[n, 0, c] == seen.max()
    y = scale.transform(polluted)
    assert y[mask].min() == -1 and y[mask].max() == 1
    # The default mask is "not NaN", and the round trip is exact.
    torch.testing.assert_close(fit_window_scale(x.masked_fill(~mask, torch.nan)).low, scale.low)
    assert_round_trip(scale.inverse_transform(scale.transform(x)), x)


def test_instance_scaling_fallback_for_degenerate_windows() -> None:
    x = torch.tensor([[[3.0, 2.0, 5.0]], [[3.0, 4.0, -1.0]]]).transpose(1, 2)  # (2, 3, 1)
    mask = torch.tensor([[True, False, False], [False, False, False]])[..., None]
    scale = fit_window_scale(
        torch.cat([x, x.new_full((2, 3, 1), 7.0)], dim=2), mask.repeat(1, 1, 2)
    )
    y = scale.transform(torch.cat([x, x.new_full((2, 3, 1), 7.0)], dim=2))
    assert y[0, 0, 0] == 0 and y[0, 1, 0] == -1  # one observed value -> 0, unit scale
    torch.testing.assert_close(y[1, :, 0], x[1, :, 0])  # nothing observed -> identity
    assert torch.isfinite(scale.low).all() and torch.isfinite(scale.high).all()
    constant = fit_window_scale(torch.full((1, 5, 1), 2.5))
    assert constant.transform(torch.full((1, 5, 1), 2.5)).abs().max() == 0


def test_instance_scaling_errors() -> None:
    with pytest.raises(ValueError, match=r"x must be a floating tensor of windows \(N, L, C\)"):
        fit_window_scale(torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"mask must be a bool tensor of the windows' shape"):
        fit_window_scale(torch.zeros(2, 3, 4), torch.ones(2, 3, 4))


def test_a_window_without_range_of_its_own_takes_the_given_span() -> None:
    x = torch.tensor([[[5e6, 1.0], [5e6, 2.0], [5e6, 3.0]]], dtype=torch.float64)  # (1, 3, 2)
    span = torch.tensor([2e7, 4.0], dtype=torch.float64)
    scale = fit_window_scale(x, span=span)
    # Feature 0 is constant here: centred at its value with half the feature's span each way.
    torch.testing.assert_close(scale.low[0, 0], torch.tensor([5e6 - 1e7, 1.0], dtype=torch.float64))
    torch.testing.assert_close(
        scale.high[0, 0], torch.tensor([5e6 + 1e7, 3.0], dtype=torch.float64)
    )
    y = scale.transform(x)
    assert float(y[..., 0].abs().max()) == 0.0
    torch.testing.assert_close(scale.inverse_transform(y), x)
    with pytest.raises(
        ValueError, match=r"span must be a finite positive tensor of shape \(C,\) = \(2,\)"
    ):
        fit_window_scale(x, span=torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"span must be a finite positive tensor"):
        fit_window_scale(x, span=torch.tensor([1.0, torch.inf], dtype=torch.float64))


def test_a_floor_widens_narrow_observed_ranges_about_their_midpoint() -> None:
    # Feature 0 is seen over [1.0, 1.2] of a window that spans [0, 10]; feature 1 over [0, 6].
    x = torch.tensor([[[1.0, 0.0], [1.2, 6.0], [0.0, 3.0], [10.0, 2.0]]], dtype=torch.float64)
    mask = torch.tensor([[[True, True], [True, True], [False, True], [False, True]]])
    min_span = torch.tensor([4.0, 4.0], dtype=torch.float64)
    scale = fit_window_scale(x, mask, min_span=min_span)
    # Feature 0: widened to 4 about 1.1; feature 1's own range (6) is above the floor.
    torch.testing.assert_close(scale.low[0, 0], torch.tensor([-0.9, 0.0], dtype=torch.float64))
    torch.testing.assert_close(scale.high[0, 0], torch.tensor([3.1, 6.0], dtype=torch.float64))
    y = scale.transform(x)
    # Without the floor the hidden 10.0 lands at 89 in model space; with it, at 4.45.
    assert float(fit_window_scale(x, mask).transform(x)[0, 3, 0]) == pytest.approx(89.0)
    assert float(y[0, 3, 0]) == pytest.approx(4.45)
    torch.testing.assert_close(scale.inverse_transform(y), x)
    # A zero floor changes nothing; a negative one is refused by name.
    unfloored = fit_window_scale(x, mask, min_span=torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(unfloored.low, fit_window_scale(x, mask).low)
    with pytest.raises(ValueError, match=r"min_span must be a finite non-negative tensor of"):
        fit_window_scale(x, mask, min_span=torch.tensor([-1.0, 1.0], dtype=torch.float64))


def test_the_median_window_span_skips_windows_without_two_observed_entries() -> None:
    x = torch.tensor([[[0.0, 5.0], [1.0, 5.0]], [[0.0, 1.0], [3.0, 1.0]], [[2.0, 0.0], [2.0, 9.0]]])
    observed = torch.ones_like(x, dtype=torch.bool)
    observed[2, 0, 1] = False  # window 2 has one observed entry of feature 1
    # Feature 0: ranges 1, 3, 0 -> median 1; feature 1: ranges 0, 0 (window 2 left out) -> 0.
    torch.testing.assert_close(median_window_span(x, observed), torch.tensor([1.0, 0.0]))


def test_fit_refuses_inf_and_names_the_features() -> None:
    x = torch.tensor([[0.0, 1.0], [torch.inf, 2.0], [1.0, 3.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"train: feature\(s\) \[0\] hold inf"):
        MinMaxScaler(2).fit(x)
    x[1, 0] = 0.5
    x[:, 1] = 2.0
    with pytest.raises(ValueError, match=r"my data: feature\(s\) \['volume'\] are constant"):
        MinMaxScaler(2).fit(x, names=["price", "volume"], where="my data")
