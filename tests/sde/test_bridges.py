"""Bridges: marginal coefficients vs. Gaussian conditioning, DDBM's VP form, the h-drift, the
exact bridge transitions and the reverse-time sampler (sde.md test 2)."""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from tsgen.sde import (
    VESDE,
    VPSDE,
    BrownianMotion,
    LinearBridge,
    OrnsteinUhlenbeck,
    PerSampleNoise,
    ReverseBridge,
    bridge_coefficients,
    bridge_sample,
    ddbm_vp_coefficients,
    h_transform,
    karras_grid,
    solve,
    uniform_grid,
)

F64 = torch.float64
PROCESSES = [
    VPSDE(beta_min=0.2, beta_d=10.0),
    OrnsteinUhlenbeck(rate=0.8, scale=1.3),
    VESDE(),
    BrownianMotion(scale=0.6),
]


def _quad_transition(process, s: float, t: float) -> tuple[float, float]:
    """alpha(s, t) = exp(int_s^t f) and sigma2(s, t) = int_s^t alpha(u, t)^2 g(u)^2 du by
    quadrature of the coefficients f and g^2 alone."""

    def f(u: float) -> float:
        return float(process.f(torch.tensor(u, dtype=F64)))

    def g2(u: float) -> float:
        return float(process.g2(torch.tensor(u, dtype=F64)))

    def log_alpha(a: float, b: float) -> float:
        return quad(f, a, b, epsabs=0, epsrel=1e-13)[0]

    var = quad(lambda u: math.exp(2 * log_alpha(u, t)) * g2(u), s, t, epsabs=1e-15, epsrel=1e-13)
    return math.exp(log_alpha(s, t)), var[0]


@pytest.mark.parametrize("process", PROCESSES, ids=lambda p: type(p).__name__)
def test_closed_forms_match_quadrature_of_coefficients(process):
    for s, t in [(0.0, 0.3), (0.2, 0.9), (0.5, 1.0)]:
        alpha, var = _quad_transition(process, s, t)
        st = torch.tensor(s, dtype=F64), torch.tensor(t, dtype=F64)
        assert abs(float(process.alpha(*st)) - alpha) <= 1e-12 * abs(alpha)
        assert abs(float(process.sigma2(*st)) - var) <= 1e-10 * var


@pytest.mark.parametrize("process", PROCESSES, ids=lambda p: type(p).__name__)
def test_bridge_coefficients_equal_gaussian_conditioning(process):
    T, x0, y = 1.0, 0.7, -1.1
    t = torch.linspace(0.05, 0.95, 19, dtype=F64)
    zero, end = torch.zeros_like(t), torch.full_like(t, T)
    # Joint law of (X_t, X_T) given X_0 = x0, built from the marginals from 0 only:
    # Cov(X_t, X_T) = alpha(t, T) Var(X_t); condition X_t on X_T = y.
    mean_t, var_t = process.alpha(zero, t) * x0, process.sigma2(zero, t)
    mean_T, var_T = process.alpha(zero, end) * x0, process.sigma2(zero, end)
    cov = process.alpha(t, end) * var_t
    cond_mean = mean_t + cov / var_T * (y - mean_T)
    cond_var = var_t - cov**2 / var_T
    a, b, c = bridge_coefficients(process, t, T)
    torch.testing.assert_close(a * y + b * x0, cond_mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(c, cond_var, rtol=1e-12, atol=1e-14)


def test_brownian_bridge_coefficients_are_the_textbook_ones():
    t = torch.linspace(0.1, 1.9, 10, dtype=F64)
    a, b, c = bridge_coefficients(BrownianMotion(scale=0.6), t, T=2.0)
    torch.testing.assert_close(a, t / 2.0, rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(b, 1 - t / 2.0, rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(c, 0.36 * t * (2.0 - t) / 2.0, rtol=1e-14, atol=1e-15)


def test_ddbm_vp_parametrisation_agrees():
    vp = VPSDE(beta_min=0.2, beta_d=10.0)
    t = torch.linspace(1e-3, 1 - 1e-3, 101, dtype=F64)
    ours, ddbm = bridge_coefficients(vp, t, 1.0), ddbm_vp_coefficients(vp, t, 1.0)
    for mine, theirs in zip(ours, ddbm, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-12, atol=1e-14)


def test_h_transform_is_the_gradient_of_the_log_transition_density():
    ou = OrnsteinUhlenbeck(rate=0.8, scale=1.3)
    x = torch.randn(5, 3, dtype=F64, requires_grad=True)
    y = torch.randn(5, 3, dtype=F64)
    t = torch.tensor(0.4, dtype=F64)
    mean, std = ou.transition(t, 1.0, x)
    log_p = torch.distributions.Normal(mean, std.expand_as(mean)).log_prob(y).sum()
    (grad,) = torch.autograd.grad(log_p, x)
    torch.testing.assert_close(h_transform(ou, t, x, y, 1.0), grad, rtol=1e-12, atol=1e-12)


def test_euler_with_h_drift_hits_the_endpoint_at_rate_sqrt_dt():
    torch.manual_seed(0)
    vp = VPSDE(beta_min=0.2, beta_d=10.0)
    y = torch.randn(4000, 2, dtype=F64)
    x0 = torch.randn(4000, 2, dtype=F64)
    bridge = LinearBridge(vp, endpoint=y, T=1.0)
    step_counts = [50, 100, 200, 400]
    errors = [
        float((solve(bridge, x0, uniform_grid(0.0, 1.0, n, dtype=F64)).x - y).abs().mean())
        for n in step_counts
    ]
    assert all(e1 > e2 for e1, e2 in itertools.pairwise(errors))
    slope = np.polyfit(np.log(1 / np.array(step_counts)), np.log(errors), 1)[0]
    assert 0.4 < slope < 0.6
    # The last step lands at y + g(T) dW: E|error| = sqrt(2/pi) g(T) sqrt(dt).
    g_T = math.sqrt(0.2 + 10.0)
    assert errors[-1] < 1.5 * math.sqrt(2 / math.pi) * g_T * math.sqrt(1 / 400)


@pytest.mark.parametrize("method", ["euler", "exact"])
def test_bridge_paths_have_the_closed_form_marginal(method):
    torch.manual_seed(2)
    vp = VPSDE(beta_min=0.2, beta_d=10.0)
    n = 40_000
    x0 = torch.full((n, 1), 0.5, dtype=F64)
    y = torch.full((n, 1), -0.8, dtype=F64)
    bridge = LinearBridge(vp, endpoint=y, T=1.0)
    steps = 2000 if method == "euler" else 10
    out = solve(bridge, x0, uniform_grid(0.0, 0.6, steps, dtype=F64), method)
    a, b, c = bridge_coefficients(vp, torch.tensor(0.6, dtype=F64), 1.0)
    mean, var = a * -0.8 + b * 0.5, c
    assert abs(float(out.x.mean() - mean)) < 3 * math.sqrt(float(var) / n)
    assert abs(float(out.x.var() / var) - 1) < 3 * math.sqrt(2 / n)


class GaussianPosterior(torch.nn.Module):
    """E[X_0 | X_t, X_T] when X_0 ~ N(m, v) independently of X_T: X_t = a X_T + b X_0 +
    sqrt(c) Z, so the posterior mean is m + v b (x_t - a x_T - b m) / (b^2 v + c)."""

    def __init__(self, process, x_T, m, v, T=1.0):
        super().__init__()
        self.process, self.x_T, self.m, self.v, self.T = process, x_T, m, v, T

    def forward(self, x, t):
        a, b, c = bridge_coefficients(self.process, t, self.T)
        return self.m + self.v * b * (x - a * self.x_T - b * self.m) / (b**2 * self.v + c)


def _sampled_moments(mode, grid, seed=0, n=20_000, **options):
    torch.manual_seed(seed)
    m, v = torch.tensor([0.3, -0.5], dtype=F64), torch.tensor([0.25, 0.04], dtype=F64)
    vp = VPSDE(beta_min=0.2, beta_d=10.0)
    x_T = torch.randn(n, 2, dtype=F64)  # a prior independent of the data
    out = bridge_sample(vp, GaussianPosterior(vp, x_T, m, v), x_T, grid, mode=mode, **options)
    return (out.x.mean(0) - m) / (v / n).sqrt(), out.x.var(0) / v - 1


def _karras(n_points):
    return karras_grid(1 - 1e-4, 1e-4, n_points, dtype=F64)


def _uniform(n_points):
    return torch.cat(
        [torch.linspace(1 - 1e-4, 1e-4, n_points, dtype=F64), torch.zeros(1, dtype=F64)]
    )


@pytest.mark.parametrize(
    ("mode", "make_grid", "n_points"),
    [
        ("hybrid", _karras, 160),
        ("sde", _karras, 160),
        ("ode", _uniform, 640),
        ("ancestral", _karras, 320),
    ],
)
def test_bridge_sampler_with_true_posterior_recovers_the_data_law(mode, make_grid, n_points):
    """With E[X_0 | X_t, X_T] exact, only discretisation separates the samples from N(m, v):
    the variance error shrinks as the grid is refined and is within 5% on the fine grid.

    The ancestral mode is first order with a variance deficit of about -6 / n_intervals here
    (-15% at 40, -4% at 160, -2% at 320; see the next test), so it is held to 5% only at 320,
    the smallest count with margin for the 1% Monte Carlo error."""
    _, var_err_coarse = _sampled_moments(mode, make_grid(n_points // 4))
    z_fine, var_err_fine = _sampled_moments(mode, make_grid(n_points))
    assert z_fine.abs().le(3).all(), z_fine
    assert var_err_fine.abs().le(0.05).all(), var_err_fine
    assert (var_err_fine.abs() < var_err_coarse.abs()).all(), (var_err_coarse, var_err_fine)


def _ancestral_chain_law(grid, m, v):
    """The exact law of the ancestral chain on the Gaussian toy of :func:`_sampled_moments`.

    Everything is linear: write the state as ``A x_T + B + sqrt(S) Z`` with ``Z`` independent
    of ``x_T ~ N(0, 1)``, start at ``x_T`` (A, B, S = 1, 0, 0) and propagate through
    ``D = m + g (x - a_t x_T - b_t m)``, ``g = v b_t / (b_t^2 v + c_t)``, and the step
    ``x_s = a x + b D + sqrt(c) z`` with ``(a, b, c) = bridge_coefficients(vp, s, T=t, s=0)``.
    Returns the relative variance error and the mean bias of ``X_0``, per coordinate."""
    vp = VPSDE(beta_min=0.2, beta_d=10.0)
    A, B, S = torch.ones_like(m), torch.zeros_like(m), torch.zeros_like(m)
    zero = torch.zeros((), dtype=F64)
    for t, s in itertools.pairwise(grid):
        a_t, b_t, c_t = bridge_coefficients(vp, t, 1.0)
        g = v * b_t / (b_t**2 * v + c_t)
        dA, dB, dS = g * A - g * a_t, g * B + m * (1 - g * b_t), g**2 * S
        if s == 0:
            return (dA**2 + dS) / v - 1, dB - m
        a, b, c = bridge_coefficients(vp, s, T=t, s=zero)
        A, B, S = a * A + b * dA, a * B + b * dB, (a + b * g) ** 2 * S + c
    raise AssertionError("the grid must end at 0")


def test_ancestral_sampler_follows_the_exact_law_of_its_chain_at_40_intervals():
    """At the production setting (40 Karras intervals) the ancestral mode does not meet the 5%
    covariance target: plugging E[X_0 | x_t, x_T] into q(x_s | X_0, x_t) drops the
    b^2 Var(X_0 | x_t, x_T) part of each step's variance. The sampler reproduces that exact
    deficit (about -15%, computed in closed form) and an unbiased mean, and the deficit is
    first order in the step: it halves as the intervals double."""
    m, v = torch.tensor([0.3, -0.5], dtype=F64), torch.tensor([0.25, 0.04], dtype=F64)
    exact_var_err, exact_bias = _ancestral_chain_law(_karras(40), m, v)
    assert (exact_var_err + 0.15).abs().le(0.01).all(), exact_var_err
    assert exact_bias.abs().le(1e-6).all(), exact_bias
    finer, _ = _ancestral_chain_law(_karras(80), m, v)
    torch.testing.assert_close(finer / exact_var_err, torch.full_like(m, 0.5), atol=0.05, rtol=0)
    n = 20_000
    z, var_err = _sampled_moments("ancestral", _karras(40), n=n)
    assert z.abs().le(3).all(), z
    # The sample variance of a Gaussian has relative standard error sqrt(2 / (n - 1)).
    assert (var_err - exact_var_err).abs().le(3.5 * math.sqrt(2 / (n - 1))).all(), var_err


def _recording(calls):
    def predictor(x, t):
        calls.append((x.clone(), t.clone()))
        return 0.5 * x

    return predictor


def test_ancestral_sampler_uses_n_evaluations_and_returns_the_last_prediction():
    vp = VPSDE(beta_min=0.2, beta_d=10.0)
    x_T = torch.randn(8, 3, dtype=F64)
    calls = []
    grid = karras_grid(1 - 1e-4, 1e-4, 40, dtype=F64)
    out = bridge_sample(vp, _recording(calls), x_T, grid, mode="ancestral", return_path=True)
    assert out.nfe == len(calls) == 40
    assert out.path.shape == (41, 8, 3)
    torch.testing.assert_close(out.grid, grid, rtol=0, atol=0)
    # One call per interval, at its start, on the state there; on the interval to 0 the
    # posterior is a point mass at the prediction, returned as it is.
    torch.testing.assert_close(torch.stack([t for _, t in calls]), grid[:-1], rtol=0, atol=0)
    for k, (x, _) in enumerate(calls):
        assert torch.equal(x, out.path[k])
    assert torch.equal(out.x, 0.5 * out.path[-2])
    assert torch.equal(out.path[-1], out.x)


def test_ancestral_step_is_the_bridge_posterior_draw():
    """One interval t -> s > 0 with given increments: x_s = a x_t + b D + sqrt(c) dW / sqrt(|dt|)
    with (a, b, c) the marginal at s of the bridge from (0, D) to (t, x_t): for a Brownian
    motion, a = s / t, b = 1 - s / t, c = scale^2 s (t - s) / t."""
    from tsgen.sde import ExplicitIncrements

    bm = BrownianMotion(scale=0.6)
    x_T = torch.randn(5, 2, dtype=F64)
    grid = torch.tensor([0.9, 0.4], dtype=F64)
    dW = torch.randn(1, 5, 2, dtype=F64) * math.sqrt(0.5)
    out = bridge_sample(bm, _half, x_T, grid, mode="ancestral", noise=ExplicitIncrements(dW))
    t, s = 0.9, 0.4
    expected = (
        s / t * x_T
        + (1 - s / t) * 0.5 * x_T
        + math.sqrt(0.36 * s * (t - s) / t) * (dW[0] / math.sqrt(t - s))
    )
    torch.testing.assert_close(out.x, expected, rtol=1e-14, atol=1e-14)


def test_ancestral_sampler_draws_each_sample_from_its_own_seed():
    """With PerSampleNoise, the first 8 of 32 samples are bitwise those of a batch of 8."""

    vp = VPSDE(beta_min=0.2, beta_d=10.0)
    m, v = torch.tensor([0.3, -0.5], dtype=F64), torch.tensor([0.25, 0.04], dtype=F64)
    x_T = torch.randn(32, 2, dtype=F64, generator=torch.Generator().manual_seed(3))
    grid = _karras(40)

    def run(batch):
        predictor = GaussianPosterior(vp, x_T[:batch], m, v)
        noise = PerSampleNoise(seeds=range(batch))
        return bridge_sample(vp, predictor, x_T[:batch], grid, mode="ancestral", noise=noise).x

    assert torch.equal(run(32)[:8], run(8))


def test_ancestral_sampler_continues_from_the_state_a_callback_returns():
    vp = VPSDE(beta_min=0.2, beta_d=10.0)
    x_T = torch.randn(4, 3, dtype=F64)
    grid = karras_grid(1 - 1e-4, 1e-4, 6, dtype=F64)
    seen, calls = [], []

    def mark(k, t_k, x_k):
        seen.append((k, t_k.clone()))
        replaced = x_k.clone()
        replaced[:, 0] = float(k)  # a marker the next predictor call must see
        return replaced

    out = bridge_sample(
        vp, _recording(calls), x_T, grid, mode="ancestral", callback=mark, return_path=True
    )
    assert [k for k, _ in seen] == list(range(1, 7))
    torch.testing.assert_close(torch.stack([t for _, t in seen]), grid[1:], rtol=0, atol=0)
    for k, (x, _) in enumerate(calls[1:], start=1):
        assert torch.all(x[:, 0] == k)
    assert torch.all(out.path[1:, :, 0] == torch.arange(1, 7, dtype=F64)[:, None])
    assert torch.all(out.x[:, 0] == 6)


def test_ancestral_solver_refuses_what_it_cannot_sample():
    vp = VPSDE(beta_min=0.2, beta_d=10.0)
    x_T = torch.zeros(2, 2, dtype=F64)
    with pytest.raises(ValueError, match=r"samples a tsgen\.sde\.ReverseBridge"):
        solve(LinearBridge(vp, x_T), x_T, uniform_grid(0.9, 0.0, 4, dtype=F64), "bridge_ancestral")
    with pytest.raises(ValueError, match=r"endpoint predictor returned .* of shape \(2, 1\)"):
        bridge_sample(vp, lambda x, t: x[:, :1], x_T, _karras(4), mode="ancestral")
    with pytest.raises(ValueError, match="evaluates the dynamics of ReverseBridge at t = 1"):
        bridge_sample(vp, _half, x_T, uniform_grid(1.0, 0.0, 4, dtype=F64), mode="ancestral")
    reverse = ReverseBridge(vp, _half, x_T)
    with pytest.raises(ValueError, match="samples backwards in time: the grid must decrease"):
        solve(reverse, x_T, uniform_grid(0.1, 0.9, 4, dtype=F64), "bridge_ancestral")


def test_ode_mode_spreads_the_point_mass_at_x_T():
    """A probability-flow ODE started at the pinned end would be deterministic in x_T; the first
    Euler-Maruyama interval gives X_0 | x_T its spread."""
    vp = VPSDE(beta_min=0.2, beta_d=10.0)
    x_T = torch.zeros(5000, 1, dtype=F64)
    m, v = torch.zeros(1, dtype=F64), torch.ones(1, dtype=F64)
    out = bridge_sample(vp, GaussianPosterior(vp, x_T, m, v), x_T, _uniform(200), mode="ode")
    assert float(out.x.std()) > 0.5


def test_hybrid_sampler_uses_3n_minus_1_evaluations():
    vp = VPSDE(beta_min=0.2, beta_d=10.0)
    x_T = torch.randn(8, 3, dtype=F64)
    calls = []

    def predictor(x, t):
        calls.append(1)
        return torch.zeros_like(x)

    out = bridge_sample(vp, predictor, x_T, karras_grid(1 - 1e-4, 1e-4, 40, dtype=F64))
    assert out.nfe == len(calls) == 119


def test_probability_flow_has_half_the_score():
    vp = VPSDE(beta_min=0.2, beta_d=10.0)
    x_T = torch.randn(6, 2, dtype=F64)
    x = torch.randn(6, 2, dtype=F64)
    t = torch.tensor(0.37, dtype=F64)
    reverse = ReverseBridge(vp, lambda x, t: 0.5 * x, x_T)
    g2 = vp.g2(t)
    h = h_transform(vp, t, x, x_T, 1.0)
    score = reverse.score(t, x)
    torch.testing.assert_close(reverse.drift(t, x), vp.drift(t, x) - g2 * (score - h))
    flow = reverse.probability_flow().drift(t, x)
    torch.testing.assert_close(flow, vp.drift(t, x) - g2 * (score / 2 - h))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda vp, x_T: bridge_sample(vp, _half, x_T, uniform_grid(1.0, 0.0, 10, dtype=F64)),
            "evaluates the dynamics of ReverseBridge at t = 1, where they are singular",
        ),
        (
            lambda vp, x_T: bridge_sample(vp, _half, x_T, uniform_grid(0.9, -0.5, 10, dtype=F64)),
            r"leaves the time domain \[0, 1\] of ReverseBridge",
        ),
        (
            # 1 - 1e-9 < T in float64 but rounds to T in float32: checked after the cast.
            lambda vp, x_T: bridge_sample(
                vp, _half, x_T.float(), torch.tensor([1 - 1e-9, 0.5, 0.0], dtype=F64)
            ),
            "evaluates the dynamics of ReverseBridge at t = 1",
        ),
        (
            lambda vp, x_T: solve(ReverseBridge(vp, _half, x_T), x_T, uniform_grid(0.1, 0.9, 4)),
            "ReverseBridge runs backwards in time",
        ),
        (
            lambda vp, x_T: solve(
                ReverseBridge(vp, _half, x_T), x_T, uniform_grid(0.9, 0.0, 4, dtype=F64), "heun"
            ),
            "evaluates the dynamics of ReverseBridge at t = 0",
        ),
        (
            # The probability flow keeps the bridge's domain checks.
            lambda vp, x_T: solve(
                ReverseBridge(vp, _half, x_T),
                x_T,
                uniform_grid(0.9, 0.0, 4, dtype=F64),
                "ode_heun",
            ),
            "evaluates the dynamics of ReverseBridge at t = 0",
        ),
        (
            lambda vp, x_T: solve(
                ReverseBridge(vp, _half, x_T), x_T, uniform_grid(0.1, 0.9, 4), "ode_heun"
            ),
            "ReverseBridge runs backwards in time",
        ),
        (
            lambda vp, x_T: solve(
                LinearBridge(vp, x_T), x_T, uniform_grid(0.0, 1.0, 4, dtype=F64), "heun"
            ),
            "evaluates the dynamics of LinearBridge at t = 1",
        ),
        (
            lambda vp, x_T: solve(
                LinearBridge(vp, x_T), x_T, uniform_grid(0.0, 1.5, 4, dtype=F64), "exact"
            ),
            "leaves the time domain",
        ),
        (
            lambda vp, x_T: solve(LinearBridge(vp, x_T[:, :1]), x_T, uniform_grid(0.0, 0.5, 4)),
            r"LinearBridge.endpoint has shape \(2, 1\) but the state has shape \(2, 2\)",
        ),
        (
            lambda vp, x_T: bridge_sample(vp, _half, x_T, karras_grid(0.99, 0.01, 5), mode="x"),
            "mode must be one of",
        ),
    ],
)
def test_bridges_refuse_grids_that_reach_their_singular_times(call, message):
    with pytest.raises(ValueError, match=message):
        call(VPSDE(), torch.zeros(2, 2, dtype=F64))


def _half(x, t):
    return 0.5 * x


def test_bridges_integrate_up_to_a_singular_end_with_steps_that_do_not_evaluate_it():
    vp = VPSDE(beta_min=0.2, beta_d=10.0)
    x_T = torch.randn(3, 2, dtype=F64)
    forward = solve(
        LinearBridge(vp, x_T), torch.zeros(3, 2, dtype=F64), uniform_grid(0.0, 1.0, 50, dtype=F64)
    )
    assert torch.isfinite(forward.x).all()
    exact = solve(
        LinearBridge(vp, x_T),
        torch.zeros(3, 2, dtype=F64),
        uniform_grid(0.0, 1.0, 5, dtype=F64),
        "exact",
    )
    torch.testing.assert_close(exact.x, x_T)  # the exact transition lands on the endpoint
    grid = uniform_grid(0.99, 0.0, 20, dtype=F64)
    reverse = solve(ReverseBridge(vp, _half, x_T), x_T, grid, "heun", final_euler=True)
    assert torch.isfinite(reverse.x).all()


def test_bridge_endpoints_follow_the_module():
    bridge = ReverseBridge(VPSDE(), _half, torch.zeros(2, 3))
    assert bridge.double().endpoint.dtype == F64
    assert "endpoint" not in bridge.state_dict()


def test_spectral_ou_bridges_are_the_per_mode_closed_forms():
    """sde.md "Spectral Hilbert-space OU": per mode, with v(tau) = (1 - e^{-2 a tau}) / (2a),
    the bridge drift is -a x + e^{-a tau} (y - e^{-a tau} x) / v(tau) and the marginal has mean
    [v(t,T) e^{-a t} x0 + v(0,t) e^{-a (T-t)} y] / v(0,T) and variance
    s^2 lambda v(0,t) v(t,T) / v(0,T)."""
    from tsgen.sde import SpectralBasis, SpectralOU

    prior = SpectralOU(SpectralBasis("sine", 12, length=2.0), c=0.5, gamma=1.0, scale=1.3)
    prior = prior.to(F64)
    a, s2_lambda = prior.rate, prior.scale**2
    x0, y = torch.randn(3, 2, 12, dtype=F64), torch.randn(3, 2, 12, dtype=F64)
    T, t = 1.0, torch.tensor(0.35, dtype=F64)

    def v(tau):
        return -torch.expm1(-2 * a * tau) / (2 * a)

    tau = T - t
    bridge = LinearBridge(prior, endpoint=y, T=T)
    drift = -a * x0 + torch.exp(-a * tau) * (y - torch.exp(-a * tau) * x0) / v(tau)
    torch.testing.assert_close(bridge.drift(t, x0), drift, rtol=1e-12, atol=1e-12)
    mean, std = bridge.marginal(t, x0)
    expected_mean = (v(tau) * torch.exp(-a * t) * x0 + v(t) * torch.exp(-a * tau) * y) / v(T)
    torch.testing.assert_close(mean, expected_mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(std**2, s2_lambda * v(t) * v(tau) / v(T), rtol=1e-12, atol=0)


def test_bridge_preconditioning_normalises_input_and_target():
    """Monte Carlo on x_t = a x_T + b x_0 + sqrt(c) z with x_0, x_T ~ N(0, s_d^2) independent:
    c_in x_t and the target (x_0 - c_skip x_t) / c_out have unit variance, the target is
    uncorrelated with x_t (c_skip is the regression coefficient), and weight = 1 / c_out^2."""
    from tsgen.sde import bridge_preconditioning

    torch.manual_seed(4)
    vp, s_d, n = VPSDE(beta_min=0.2, beta_d=10.0), 0.1, 200_000
    for t in [1e-3, 0.1, 0.5, 0.9, 1 - 1e-3]:
        coefficients = bridge_coefficients(vp, torch.tensor(t, dtype=F64))
        a, b, c = coefficients
        x0, x_T = s_d * torch.randn(n, dtype=F64), s_d * torch.randn(n, dtype=F64)
        x_t = a * x_T + b * x0 + c.sqrt() * torch.randn(n, dtype=F64)
        pre = bridge_preconditioning(coefficients, s_d)
        target = (x0 - pre.c_skip * x_t) / pre.c_out
        tolerance = 4 * math.sqrt(2 / n)
        assert abs(float((pre.c_in * x_t).var()) - 1) < tolerance
        assert abs(float(target.var()) - 1) < tolerance
        assert abs(float(torch.corrcoef(torch.stack([target, x_t]))[0, 1])) < 4 / math.sqrt(n)
        torch.testing.assert_close(pre.weight, 1 / pre.c_out**2, rtol=1e-14, atol=0)
    with pytest.raises(ValueError, match="sigma_data must be positive"):
        bridge_preconditioning(coefficients, 0.0)


def test_bridge_weight_matches_the_figures_quoted_for_stocks():
    """timebridge.md: on the Stocks settings (VP 0.2 / 10, sigma_data 0.1) the bridge weight is
    about 5e4 at t = 1e-4 and about 100 for t >= 0.1."""
    from tsgen.sde import bridge_preconditioning

    vp = VPSDE(beta_min=0.2, beta_d=10.0)
    weight = bridge_preconditioning(
        bridge_coefficients(vp, torch.tensor(1e-4, dtype=F64)), 0.1
    ).weight
    assert float(weight) == pytest.approx(5e4, rel=0.01)
    late = torch.linspace(0.1, 1 - 1e-4, 50, dtype=F64)
    weights = bridge_preconditioning(bridge_coefficients(vp, late), 0.1).weight
    assert weights.min() >= 99.9 and weights.max() <= 115


@pytest.mark.parametrize("n_points", [20, 40])
def test_ancestral_sampler_with_tweedie_variance_is_right_at_40_intervals(n_points):
    """Adding the diagonal Tweedie estimate of b^2 Var(X_0 | x_t, x_T) removes the ancestral
    chain's variance deficit: on the Gaussian toy (diagonal posterior) the mean is within 3
    standard errors and the variance within 5% at the production 40 intervals (measured within
    2% at 20 and 40 intervals over 3 seeds), for 2n - 1 evaluations."""
    for seed in (0, 1):
        z, var_err = _sampled_moments(
            "ancestral", _karras(n_points), seed=seed, posterior_variance="diagonal"
        )
        assert z.abs().le(3).all(), z
        assert var_err.abs().le(0.05).all(), var_err


def test_ancestral_sampler_with_tweedie_variance_counts_and_seeds():
    vp = VPSDE(beta_min=0.2, beta_d=10.0)
    m, v = torch.tensor([0.3]), torch.tensor([0.04])
    x_T = torch.randn(32, 3)

    def run(n):
        posterior = GaussianPosterior(vp, x_T[:n], m, v)
        return bridge_sample(
            vp,
            posterior,
            x_T[:n],
            _karras(10).float(),
            mode="ancestral",
            posterior_variance="diagonal",
            noise=PerSampleNoise(range(n)),
        )

    full, part = run(32), run(8)
    assert full.nfe == 2 * 10 - 1
    assert torch.equal(full.x[:8], part.x)


def test_ancestral_posterior_variance_option_is_checked():
    with pytest.raises(ValueError, match="posterior_variance must be 'none' or 'diagonal'"):
        _sampled_moments("ancestral", _karras(5), n=10, posterior_variance="full")
