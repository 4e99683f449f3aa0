"""Time grids: monotonicity, end points, spacing laws."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tsgen.sde import (
    VESDE,
    VPSDE,
    BrownianMotion,
    OrnsteinUhlenbeck,
    karras_grid,
    log_snr_grid,
    uniform_grid,
    uniform_then_karras_grid,
    validate_grid,
)

F64 = torch.float64


@pytest.mark.parametrize(
    "process",
    [VPSDE(0.2, 10.0), VPSDE(0.1, 19.9), VESDE(), OrnsteinUhlenbeck(1.5, 0.5), BrownianMotion(2.0)],
)
@pytest.mark.parametrize(("start", "end"), [(1e-3, 1.0), (1.0, 1e-3), (0.2, 0.7)])
def test_log_snr_grid_is_monotone_hits_its_ends_and_is_even_in_log_snr(process, start, end):
    grid = log_snr_grid(process, start, end, 25, dtype=F64)
    assert validate_grid(grid) == (1 if end > start else -1)
    assert float(grid[0]) == start and float(grid[-1]) == end
    levels = process.log_snr(grid)
    torch.testing.assert_close(
        levels.diff(), levels.diff().mean().expand(25), rtol=1e-9, atol=1e-12
    )


def test_vp_log_snr_grid_matches_the_analytic_inverse():
    """For VP, log-SNR l gives alpha^2 = sigmoid(l), so B(t) = softplus(-l): a quadratic in t."""
    vp = VPSDE(0.2, 10.0)
    grid = log_snr_grid(vp, 1e-3, 1.0, 10, dtype=F64)
    levels = vp.log_snr(grid)
    integrated = torch.nn.functional.softplus(-levels)
    t = (-0.2 + torch.sqrt(0.2**2 + 2 * 10.0 * integrated)) / 10.0
    torch.testing.assert_close(grid, t, rtol=1e-12, atol=1e-14)


def test_karras_grid_follows_the_rho_law_and_appends_zero():
    grid = karras_grid(80.0, 0.002, 18, rho=7.0, dtype=F64)
    assert grid.shape == (19,) and float(grid[-1]) == 0.0
    assert float(grid[0]) == 80.0 and float(grid[-2]) == 0.002
    root = grid[:-1] ** (1 / 7)
    torch.testing.assert_close(root.diff(), root.diff().mean().expand(17), rtol=1e-10, atol=0)
    assert validate_grid(grid) == -1
    assert karras_grid(1.0, 0.1, 5, append_zero=False).shape == (5,)


def test_uniform_then_karras_grid_is_even_above_the_split_and_karras_below():
    grid = uniform_then_karras_grid(0.9999, 0.5, 1e-6, 25, 75, rho=14.0, dtype=F64)
    assert grid.shape == (101,) and validate_grid(grid) == -1
    assert float(grid[0]) == 0.9999 and float(grid[25]) == 0.5 and float(grid[-1]) == 0.0
    torch.testing.assert_close(grid[:26].diff(), torch.full((25,), -0.4999 / 25, dtype=F64))
    torch.testing.assert_close(grid[25:], karras_grid(0.5, 1e-6, 75, rho=14.0, dtype=F64))


def test_uniform_grid_with_a_final_small_step():
    grid = uniform_grid(1.0, 0.0, 5, final_step=1e-3, dtype=F64)
    assert grid.shape == (6,)
    torch.testing.assert_close(grid[-2:], torch.tensor([1e-3, 0.0], dtype=F64))
    torch.testing.assert_close(grid[:-1].diff(), torch.full((4,), -(1 - 1e-3) / 4, dtype=F64))


@settings(max_examples=40, deadline=None)
@given(
    start=st.floats(-5, 5),
    span=st.floats(1e-3, 10).map(lambda s: s * (1 if s > 0 else -1)),
    n=st.integers(1, 50),
    backwards=st.booleans(),
)
def test_uniform_grids_are_valid_either_way(start, span, n, backwards):
    end = start - span if backwards else start + span
    grid = uniform_grid(start, end, n, dtype=F64)
    assert grid.shape == (n + 1,)
    assert validate_grid(grid) == (-1 if backwards else 1)
    assert math.isclose(float(grid[-1]), end, abs_tol=1e-12)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: karras_grid(0.1, 1.0, 5), "0 < t_min < t_max"),
        (lambda: karras_grid(1.0, 0.1, 1), "n_points must be at least 2"),
        (
            lambda: uniform_then_karras_grid(1.0, 1e-3, 1e-2, 4, 4),
            "0 < t_min < t_split < t_max; got t_min=0.01, t_split=0.001",
        ),
        (lambda: uniform_then_karras_grid(1.0, 0.5, 1e-3, 0, 4), "n_upper must be an integer >= 1"),
        (
            lambda: uniform_then_karras_grid(1.0, 0.5, 1e-3, 4, 1),
            "n_lower must be an integer >= 2; got 1",
        ),
        (lambda: uniform_grid(0.0, 1.0, 0), "n_steps must be an integer >= 1"),
        (
            lambda: uniform_grid(0.0, 1.0, 4, final_step=2.0),
            r"final_step must lie in \(0, \|end - start\|\)",
        ),
        (lambda: log_snr_grid(VPSDE(), 0.0, 1.0, 4), "log-SNR is infinite at 0"),
        (
            lambda: log_snr_grid(OrnsteinUhlenbeck(rate=torch.ones(3)), 0.1, 1.0, 4),
            "needs a process with scalar coefficients",
        ),
        (lambda: validate_grid(torch.tensor([[0.0, 1.0]])), "1-D tensor of at least 2 times"),
        (lambda: validate_grid(torch.tensor([0, 1])), "floating-point"),
        (
            lambda: validate_grid(torch.tensor([1.0, 0.5, 0.5])),
            "decreasing but goes from 0.5 to 0.5 at index 1",
        ),
    ],
)
def test_bad_grids_raise_named_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
