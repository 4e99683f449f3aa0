"""Processes: closed forms against Monte Carlo through ``solve`` (sde.md test 1), limits,
validation."""

import math

import pytest
import torch

from tsgen.sde import (
    VESDE,
    VPSDE,
    BrownianMotion,
    ControlledSDE,
    GeometricBrownianMotion,
    OrnsteinUhlenbeck,
    solve,
    uniform_grid,
)
from tsgen.sde.processes import one_minus_exp_ratio

F64 = torch.float64
N_PATHS = 100_000


# (process, end time, Euler steps): enough steps that the Euler bias of the mean and variance
# (O(dt) relative; largest for VP, where the variance bias is about beta dt / 4) is far below
# the Monte Carlo standard errors at 1e5 paths (variance: about 0.0045 relative).
CASES = [
    (BrownianMotion(scale=0.7), 1.5, 10),
    (OrnsteinUhlenbeck(rate=1.3, scale=0.8), 1.0, 1000),
    (VPSDE(beta_min=0.1, beta_d=19.9), 1.0, 4000),
    (VPSDE(beta_min=0.2, beta_d=10.0), 0.5, 2000),
    (VESDE(), 2.0, 4000),
]


@pytest.mark.parametrize(("process", "t_end", "n_steps"), CASES, ids=lambda c: str(c)[:24])
def test_monte_carlo_marginal_matches_closed_form(process, t_end, n_steps):
    torch.manual_seed(0)
    x0 = torch.full((N_PATHS, 1), 0.9, dtype=F64)
    x_T = solve(process, x0, uniform_grid(0.0, t_end, n_steps, dtype=F64), "euler").x
    mean, std = process.marginal(torch.tensor(t_end, dtype=F64), x0[:1])
    var = std**2
    se_mean = (var / N_PATHS).sqrt()
    se_var = var * math.sqrt(2 / (N_PATHS - 1))
    assert abs(x_T.mean() - mean.squeeze()) < 3 * se_mean.squeeze()
    assert abs(x_T.var() - var.squeeze()) < 3 * se_var.squeeze()


def test_vp_closed_form_matches_its_definition():
    vp = VPSDE(beta_min=0.2, beta_d=10.0)
    t = torch.linspace(0.01, 1, 50, dtype=F64)
    zero = torch.zeros_like(t)
    alpha = vp.alpha(zero, t)
    torch.testing.assert_close(alpha, torch.exp(-10.0 * t**2 / 4 - 0.2 * t / 2), rtol=1e-14, atol=0)
    torch.testing.assert_close(vp.sigma2(zero, t), 1 - alpha**2, rtol=1e-13, atol=0)
    # Transitions compose: alpha(0, t) = alpha(0, s) alpha(s, t);
    # sigma2(0, t) = alpha(s, t)^2 sigma2(0, s) + sigma2(s, t).
    s = t / 3
    torch.testing.assert_close(alpha, vp.alpha(zero, s) * vp.alpha(s, t), rtol=1e-14, atol=0)
    composed = vp.alpha(s, t) ** 2 * vp.sigma2(zero, s) + vp.sigma2(s, t)
    torch.testing.assert_close(vp.sigma2(zero, t), composed, rtol=1e-13, atol=0)


@pytest.mark.parametrize("rate", [0.0, 1e-300, 1e-16, 1e-12, 1e-8])
def test_ou_variance_is_stable_as_rate_vanishes(rate):
    scale, dt = 1.7, 0.3
    ou = OrnsteinUhlenbeck(rate=rate, scale=scale)
    s, t = torch.tensor(0.2, dtype=F64), torch.tensor(0.2 + dt, dtype=F64)
    # Series of s^2 (1 - e^{-2 a dt}) / (2a) = s^2 dt (1 - a dt + (2/3) a^2 dt^2 - ...).
    expected = scale**2 * dt * (1 - rate * dt + 2 / 3 * (rate * dt) ** 2)
    assert abs(float(ou.sigma2(s, t)) - expected) <= 1e-12 * expected


def test_one_minus_exp_ratio_limits_and_gradient():
    z = torch.tensor([0.0, 1e-300, 1e-10, 1e-3, 1.0, 50.0], dtype=F64, requires_grad=True)
    value = one_minus_exp_ratio(z)
    expected = torch.tensor(
        [1.0, 1.0, 1 - 0.5e-10, (1 - math.exp(-1e-3)) / 1e-3, 1 - math.exp(-1), 1 / 50],
        dtype=F64,
    )
    torch.testing.assert_close(value, expected, rtol=1e-13, atol=0)
    value.sum().backward()
    assert torch.isfinite(z.grad).all()


def test_per_coordinate_coefficients_broadcast_over_trailing_dims():
    rate = torch.tensor([0.5, 1.0, 2.0], dtype=F64)
    ou = OrnsteinUhlenbeck(rate=rate, scale=torch.tensor([1.0, 0.5, 0.25], dtype=F64))
    x0 = torch.ones(4, 2, 3, dtype=F64)
    t = torch.full((4,), 0.7, dtype=F64)  # per-sample times
    mean, std = ou.marginal(t, x0)
    assert mean.shape == (4, 2, 3)
    torch.testing.assert_close(mean[0, 0], torch.exp(-0.7 * rate))
    expected_var = (
        torch.tensor([1.0, 0.25, 0.0625], dtype=F64) * -torch.expm1(-1.4 * rate) / (2 * rate)
    )
    torch.testing.assert_close((std**2).expand(4, 2, 3)[1, 1], expected_var)


def test_gbm_exact_solution_matches_monte_carlo_moments():
    torch.manual_seed(1)
    gbm = GeometricBrownianMotion(mu=0.3, sigma=0.4)
    x0 = torch.ones(N_PATHS, 1, dtype=F64)
    w = torch.randn_like(x0)  # W_1
    x1 = gbm.solution(1.0, x0, w)
    # E[X_1] = e^{mu}; Var = e^{2 mu} (e^{sigma^2} - 1).
    mean, var = math.exp(0.3), math.exp(0.6) * (math.exp(0.16) - 1)
    assert abs(float(x1.mean()) - mean) < 3 * math.sqrt(var / N_PATHS)


def test_controlled_sde_adds_diffusion_times_control():
    base = OrnsteinUhlenbeck(rate=1.0, scale=0.5)

    class Constant(torch.nn.Module):
        def forward(self, t, x):
            return torch.full_like(x, 2.0)

    sde = ControlledSDE(base, Constant())
    x = torch.randn(3, 4, dtype=F64)
    t = torch.tensor(0.1, dtype=F64)
    torch.testing.assert_close(sde.drift(t, x), -x + 0.5 * 2.0)
    assert sde.noise_type == base.noise_type


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: BrownianMotion(scale=-1.0), "scale must be finite and positive"),
        (lambda: OrnsteinUhlenbeck(rate=-0.1), "rate must be finite and non-negative"),
        (lambda: OrnsteinUhlenbeck(scale=torch.tensor([1.0, -2.0])), "scale must be finite"),
        (lambda: VPSDE(beta_min=0.0), "beta_min must be finite and positive"),
        (lambda: GeometricBrownianMotion(sigma=float("nan")), "sigma must be finite"),
    ],
)
def test_invalid_coefficients_raise_named_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_time_shape_mismatch_names_the_shapes():
    with pytest.raises(ValueError, match=r"t must be a scalar or have shape \(batch,\)"):
        OrnsteinUhlenbeck().drift(torch.zeros(3), torch.zeros(4, 2))


@pytest.mark.parametrize(
    "process", [OrnsteinUhlenbeck(rate=1.3, scale=0.8), VPSDE(0.2, 10.0)], ids=str
)
def test_exact_solver_samples_the_marginal_with_coarse_steps(process):
    torch.manual_seed(3)
    x0 = torch.full((N_PATHS, 1), 0.9, dtype=F64)
    out = solve(process, x0, uniform_grid(0.0, 0.8, 4, dtype=F64), "exact")
    assert out.nfe == 0
    mean, std = process.marginal(0.8, x0[:1])
    var = float(std.squeeze()) ** 2
    assert abs(float(out.x.mean() - mean.squeeze())) < 3 * math.sqrt(var / N_PATHS)
    assert abs(float(out.x.var()) / var - 1) < 3 * math.sqrt(2 / N_PATHS)


def test_ou_stationary_variance_is_infinite_without_mean_reversion():
    assert OrnsteinUhlenbeck(rate=0.0, scale=2.0).stationary_variance() == math.inf
    assert OrnsteinUhlenbeck(rate=2.0, scale=2.0).stationary_variance() == 1.0
