"""Solvers: convergence orders (sde.md test 3), native vs. torchsde (test 4), gradients through
the adjoint and activation checkpointing (test 7), and the contract check."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from tsgen.sde import (
    ODE,
    SDE,
    VESDE,
    VPSDE,
    BrownianIntervalNoise,
    ExplicitIncrements,
    GeometricBrownianMotion,
    OrnsteinUhlenbeck,
    ReverseBridge,
    coarsen_increments,
    karras_grid,
    make_solver,
    solve,
    uniform_grid,
)

F64 = torch.float64


def _slope(step_counts, errors) -> float:
    """Fitted exponent p of error ~ dt^p."""
    return float(np.polyfit(np.log(1 / np.asarray(step_counts)), np.log(errors), 1)[0])


def _fine_increments(n_paths: int, n_fine: int, T: float = 1.0, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n_fine, n_paths, 1, generator=generator, dtype=F64) * math.sqrt(T / n_fine)


def _strong_errors(sde, x0, reference, fine, step_counts, method="euler"):
    errors = []
    for n in step_counts:
        dW = coarsen_increments(fine, fine.shape[0] // n)
        x = solve(
            sde, x0, uniform_grid(0.0, 1.0, n, dtype=F64), method, noise=ExplicitIncrements(dW)
        ).x
        errors.append(float((x - reference).abs().mean().detach()))
    return errors


def test_euler_strong_order_half_on_gbm():
    gbm = GeometricBrownianMotion(mu=2.0, sigma=1.0)
    fine = _fine_increments(n_paths=10_000, n_fine=2048)
    x0 = torch.ones(10_000, 1, dtype=F64)
    exact = gbm.solution(1.0, x0, fine.sum(0))
    errors = _strong_errors(gbm, x0, exact, fine, [64, 128, 256, 512])
    assert abs(_slope([64, 128, 256, 512], errors) - 0.5) <= 0.1, errors


def test_milstein_strong_order_one_on_gbm():
    gbm = GeometricBrownianMotion(mu=2.0, sigma=1.0)
    fine = _fine_increments(n_paths=4000, n_fine=512, seed=1)
    x0 = torch.ones(4000, 1, dtype=F64)
    exact = gbm.solution(1.0, x0, fine.sum(0))
    counts = [16, 32, 64, 128]
    errors = _strong_errors(gbm, x0, exact, fine, counts, method="torchsde:milstein")
    assert abs(_slope(counts, errors) - 1.0) <= 0.15, errors


@pytest.mark.parametrize("method", ["euler", "heun"])
def test_strong_order_one_on_ou_with_additive_noise(method):
    ou = OrnsteinUhlenbeck(rate=2.0, scale=0.8)
    fine = _fine_increments(n_paths=4000, n_fine=16384, seed=2)
    x0 = torch.full((4000, 1), 1.5, dtype=F64)
    # Reference: Euler on the finest grid, whose error (O(1/16384)) is far below the coarse ones.
    reference = solve(
        ou, x0, uniform_grid(0.0, 1.0, 16384, dtype=F64), noise=ExplicitIncrements(fine)
    ).x
    counts = [32, 64, 128, 256]
    errors = _strong_errors(ou, x0, reference, fine, counts, method)
    assert abs(_slope(counts, errors) - 1.0) <= 0.15, errors


class LinearODE(ODE):
    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate

    def drift(self, t, x):
        return self.rate * x * (1 + torch.sin(t))


@pytest.mark.parametrize("method", ["heun", "ode_heun"])
def test_heun_order_two_on_a_linear_ode(method):
    ode = LinearODE(rate=-1.5)
    x0 = torch.tensor([[1.0], [-2.0]], dtype=F64)
    # dx = r (1 + sin t) x dt  =>  x(1) = x0 exp(r (1 + 1 - cos 1)).
    exact = x0 * math.exp(-1.5 * (2 - math.cos(1.0)))
    counts = [8, 16, 32, 64]
    errors = [
        float((solve(ode, x0, uniform_grid(0.0, 1.0, n, dtype=F64), method).x - exact).abs().max())
        for n in counts
    ]
    assert abs(_slope(counts, errors) - 2.0) <= 0.2, errors


def test_heun_refuses_multiplicative_noise():
    with pytest.raises(ValueError, match=r"supports noise types \['additive', 'none'\]"):
        solve(GeometricBrownianMotion(), torch.ones(3, 1), uniform_grid(0.0, 1.0, 4), "heun")


class MLPDrift(SDE):
    """A network drift with state-dependent diagonal diffusion, on states (B, 2, 3)."""

    noise_type = "diagonal"

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(7, 16), nn.SiLU(), nn.Linear(16, 6)).double()

    def drift(self, t, x):
        flat = x.reshape(x.shape[0], -1)
        time = t.expand(x.shape[0], 1) if t.ndim == 0 else t[:, None]
        return self.net(torch.cat([flat, time], dim=1)).reshape(x.shape)

    def diffusion(self, t, x):
        return 0.3 * torch.sigmoid(x)


GRIDS = {
    "uniform": uniform_grid(0.0, 1.0, 50, dtype=F64),
    "decreasing": uniform_grid(1.0, 0.2, 40, dtype=F64),
    "karras": karras_grid(1.0, 0.01, 30, dtype=F64),
    "non-uniform": torch.linspace(0, 1, 31, dtype=F64) ** 2,
}


@pytest.mark.parametrize("grid_name", GRIDS)
def test_native_euler_and_torchsde_euler_agree_on_shared_increments(grid_name):
    grid = GRIDS[grid_name]
    sde = MLPDrift()
    x0 = torch.randn(5, 2, 3, dtype=F64)
    dW = (
        torch.randn(grid.shape[0] - 1, 5, 2, 3, dtype=F64)
        * grid.diff().abs().sqrt()[:, None, None, None]
    )
    native = solve(sde, x0, grid, "euler", noise=ExplicitIncrements(dW), return_path=True)
    ours = solve(sde, x0, grid, "torchsde:euler", noise=ExplicitIncrements(dW), return_path=True)
    torch.testing.assert_close(ours.path, native.path, rtol=1e-10, atol=1e-10)


def test_brownian_interval_noise_is_one_path_for_both_backends():
    sde = MLPDrift()
    x0 = torch.randn(4, 2, 3, dtype=F64)
    grid = uniform_grid(1.0, 0.0, 25, dtype=F64)
    noise = BrownianIntervalNoise(entropy=7)
    native = solve(sde, x0, grid, "euler", noise=noise).x
    backend = solve(sde, x0, grid, "torchsde:euler", noise=noise).x
    torch.testing.assert_close(backend, native, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("grid_name", GRIDS)
def test_torchsde_fixed_step_methods_take_one_drift_evaluation_per_step(grid_name):
    grid = GRIDS[grid_name]
    for method in ["torchsde:euler", "torchsde:milstein"]:
        out = solve(MLPDrift(), torch.randn(2, 2, 3, dtype=F64), grid, method)
        assert out.nfe == grid.shape[0] - 1


def test_torchsde_srk_and_adaptive_need_a_brownian_interval():
    sde, x0, grid = (
        MLPDrift(),
        torch.randn(3, 2, 3, dtype=F64),
        uniform_grid(0.0, 1.0, 10, dtype=F64),
    )
    for options in [{"method": "torchsde:srk"}, {"method": "torchsde:euler", "adaptive": True}]:
        with pytest.raises(ValueError, match="BrownianIntervalNoise"):
            solve(
                sde,
                x0,
                grid,
                noise=ExplicitIncrements(torch.zeros(10, 3, 2, 3, dtype=F64)),
                **options,
            )
        out = solve(sde, x0, grid, noise=BrownianIntervalNoise(entropy=1), **options)
        assert out.x.shape == x0.shape and torch.isfinite(out.x).all()


class ParamOU(SDE):
    """dX = -rate (X - mean) dt + scale dW with learnable rate, mean and scale."""

    noise_type = "additive"

    def __init__(self) -> None:
        super().__init__()
        self.rate = nn.Parameter(torch.tensor(1.2, dtype=F64))
        self.mean = nn.Parameter(torch.tensor(0.3, dtype=F64))
        self.scale = nn.Parameter(torch.tensor(0.7, dtype=F64))

    def drift(self, t, x):
        return -self.rate * (x - self.mean)

    def diffusion(self, t, x):
        return self.scale * torch.ones_like(x)


def _path_loss_gradients(method: str, n_steps: int, **options) -> dict[str, torch.Tensor]:
    sde = ParamOU()
    x0 = torch.linspace(-1, 1, 12, dtype=F64).reshape(6, 2).requires_grad_()
    grid = uniform_grid(0.0, 1.0, n_steps, dtype=F64)
    # One Brownian path for every step count (1200 = a multiple of each count used).
    dW = coarsen_increments(_fine_increments(12, 1200, seed=4), 1200 // n_steps).reshape(
        n_steps, 6, 2
    )
    out = solve(sde, x0, grid, method, noise=ExplicitIncrements(dW), return_path=True, **options)
    loss = (out.path**2).mean() + 0.1 * out.x.sum()
    loss.backward()
    return {"x0": x0.grad, **{name: p.grad for name, p in sde.named_parameters()}}


def test_torchsde_adjoint_gradient_equals_backprop_through_euler():
    """For this linear SDE the Euler adjoint reproduces backprop through Euler exactly for every
    quantity whose drift/diffusion derivative is state-independent (x0, mean, scale); the rate's
    derivative -(x - mean) is evaluated at the other end of each step by the adjoint pass, so
    that gradient agrees only to O(dt): the gap halves as dt halves."""
    backprop = _path_loss_gradients("euler", 200)
    adjoint = _path_loss_gradients("torchsde:euler", 200, adjoint=True)
    for name in ["x0", "mean", "scale"]:
        torch.testing.assert_close(adjoint[name], backprop[name], rtol=1e-6, atol=1e-9)
    gaps = []
    for n in [100, 200, 400]:
        exact = _path_loss_gradients("euler", n)["rate"]
        gaps.append(
            float((_path_loss_gradients("torchsde:euler", n, adjoint=True)["rate"] - exact).abs())
        )
    assert 1.7 < gaps[0] / gaps[1] < 2.3 and 1.7 < gaps[1] / gaps[2] < 2.3, gaps


def test_torchsde_adjoint_on_a_non_uniform_grid_keeps_each_steps_dt():
    """On a grid t_k = (k / n)^3 the adjoint's backward pass must scale step k by its own dt:
    the x0 gradient (state-independent derivatives) then equals backprop's exactly, as on the
    uniform grid (one call per interval; a single step-index call used step k + 1's dt there
    and was 7% off)."""
    n = 50
    grid = torch.linspace(0.0, 1.0, n + 1, dtype=F64) ** 3
    noise = grid.diff().sqrt().view(n, 1, 1) * torch.randn(
        n, 6, 2, generator=torch.Generator().manual_seed(8), dtype=F64
    )
    gradients = {}
    for method, options in [("euler", {}), ("torchsde:euler", {"adjoint": True})]:
        sde = ParamOU()
        x0 = torch.linspace(-1, 1, 12, dtype=F64).reshape(6, 2).requires_grad_()
        out = solve(sde, x0, grid, method, noise=ExplicitIncrements(noise), return_path=True,
                    **options)  # fmt: skip
        ((out.path**2).mean() + 0.1 * out.x.sum()).backward()
        gradients[method] = (out, {"x0": x0.grad, "mean": sde.mean.grad, "scale": sde.scale.grad})
    (native, exact), (adjoint, approximate) = gradients.values()
    torch.testing.assert_close(adjoint.path, native.path, rtol=1e-10, atol=1e-12)
    assert adjoint.nfe == native.nfe == n
    for name, grad in exact.items():
        torch.testing.assert_close(approximate[name], grad, rtol=1e-6, atol=1e-9)


def test_activation_checkpointing_gives_the_backprop_gradient():
    plain = _path_loss_gradients("euler", 60)
    checkpointed = _path_loss_gradients("euler", 60, checkpoint_every=7)
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, rtol=1e-12, atol=1e-14)


def test_checkpointing_with_default_noise_recomputes_the_same_path():
    torch.manual_seed(5)
    sde = ParamOU()
    x0 = torch.randn(8, 3, dtype=F64, requires_grad=True)
    out = solve(sde, x0, uniform_grid(0.0, 1.0, 30, dtype=F64), checkpoint_every=4)
    (out.x**2).sum().backward()
    # d/d x0 of the final state is prod (1 - rate dt) whatever the noise.
    factor = (1 - 1.2 / 30) ** 30
    torch.testing.assert_close(x0.grad, 2 * out.x.detach() * factor, rtol=1e-12, atol=1e-14)


def test_callback_can_replace_the_state_and_sees_every_step():
    seen = []

    def clamp(k, t, x):
        seen.append((k, float(t)))
        return x.clamp(-0.1, 0.1)

    grid = uniform_grid(0.0, 1.0, 5, dtype=F64)
    out = solve(
        OrnsteinUhlenbeck(), torch.randn(4, 2, dtype=F64), grid, callback=clamp, return_path=True
    )
    assert [k for k, _ in seen] == [1, 2, 3, 4, 5]
    assert [t for _, t in seen] == pytest.approx(grid[1:].tolist())
    assert out.path[1:].abs().max() <= 0.1 and out.path.shape == (6, 4, 2)


def test_a_grid_is_validated_in_the_state_dtype():
    grid = torch.tensor([0.5, 0.5 + 1e-9, 1.0], dtype=F64)  # distinct only in float64
    with pytest.raises(ValueError, match="strictly monotone"):
        solve(OrnsteinUhlenbeck(), torch.zeros(2, 1), grid, "exact")


def test_coefficients_in_another_dtype_are_refused():
    ou = OrnsteinUhlenbeck(rate=torch.tensor([1.0, 2.0], dtype=F64))
    with pytest.raises(
        ValueError, match=r"returned torch.float64 on cpu for a state of torch.float32"
    ):
        solve(ou, torch.zeros(3, 2), uniform_grid(0.0, 1.0, 4))
    assert solve(ou.float(), torch.zeros(3, 2), uniform_grid(0.0, 1.0, 4)).x.dtype == torch.float32


def test_a_solver_instance_can_be_reused():
    from tsgen.sde.solvers import Euler, Problem

    solver = Euler()
    problem = Problem(OrnsteinUhlenbeck(), torch.zeros(2, 1), uniform_grid(0.0, 1.0, 10))
    assert solver.integrate(problem).nfe == 10
    assert solver.integrate(problem).nfe == 10


def test_progress_bar_runs():
    out = solve(OrnsteinUhlenbeck(), torch.zeros(2, 1), uniform_grid(0.0, 1.0, 3), progress=True)
    assert out.nfe == 3


def test_ode_heun_on_a_reverse_bridge_is_the_churn_free_heun():
    vp = VPSDE(beta_min=0.2, beta_d=10.0)
    x_T = torch.randn(6, 2, dtype=F64)
    bridge = ReverseBridge(vp, lambda x, t: 0.5 * x, x_T)
    grid = karras_grid(0.999, 0.01, 12, append_zero=False, dtype=F64)
    a = solve(bridge, x_T, grid, "ode_heun").x
    b = solve(bridge, x_T, grid, "heun", churn=0.0).x
    torch.testing.assert_close(a, b, rtol=0, atol=0)


class WrongShape(SDE):
    noise_type = "additive"

    def drift(self, t, x):
        return x[:, :1]

    def diffusion(self, t, x):
        return torch.ones(())


class NegativeDiffusion(OrnsteinUhlenbeck):
    def diffusion(self, t, x):
        return -torch.ones_like(x)


class NaNDiffusion(OrnsteinUhlenbeck):
    def diffusion(self, t, x):
        return torch.full_like(x, float("nan"))


class WrongDiffusionShape(OrnsteinUhlenbeck):
    def diffusion(self, t, x):
        return torch.ones(x.shape[0], 5)


def _solve_ou(method, **options):
    return solve(OrnsteinUhlenbeck(), torch.zeros(2, 3), uniform_grid(0, 1, 2), method, **options)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: solve(
                OrnsteinUhlenbeck(), torch.zeros(2, 3), torch.tensor([0.0, 0.5, 0.4, 1.0])
            ),
            ValueError,
            r"strictly monotone; it starts increasing but goes from 0.5 to 0.4 at index 1",
        ),
        (
            lambda: solve(OrnsteinUhlenbeck(), torch.zeros(2, 3), torch.tensor([0.0])),
            ValueError,
            "at least 2 times",
        ),
        (
            lambda: solve(
                OrnsteinUhlenbeck(), torch.zeros(2, 3), torch.tensor([0.0, float("nan")])
            ),
            ValueError,
            "must be finite",
        ),
        (
            lambda: solve(OrnsteinUhlenbeck(), torch.zeros(2, 3), uniform_grid(0, 1, 2), "rk4"),
            ValueError,
            "unknown method 'rk4'",
        ),
        (
            lambda: solve(
                OrnsteinUhlenbeck(), torch.zeros(2, 3), uniform_grid(0, 1, 2), "heun", foo=1
            ),
            TypeError,
            r"method 'heun' got unexpected options \['foo'\]",
        ),
        (
            lambda: solve(WrongShape(), torch.zeros(2, 3), uniform_grid(0, 1, 2)),
            ValueError,
            r"WrongShape.drift returned shape \(2, 1\) for a state of shape \(2, 3\)",
        ),
        (
            lambda: solve(WrongShape(), torch.zeros(2, 3), uniform_grid(0, 1, 2), "torchsde:euler"),
            ValueError,
            r"WrongShape.drift returned shape \(2, 1\)",
        ),
        (
            lambda: solve(NegativeDiffusion(), torch.zeros(2, 3), uniform_grid(0, 1, 2)),
            ValueError,
            "diffusion must be non-negative; got a minimum of -1.0",
        ),
        (
            lambda: solve(NaNDiffusion(), torch.zeros(2, 3), uniform_grid(0, 1, 2)),
            ValueError,
            "diffusion must be non-negative; got a minimum of nan",
        ),
        (
            lambda: solve(VESDE(), torch.zeros(2, 3), uniform_grid(-1.0, 1.0, 4)),
            ValueError,
            r"VESDE is defined for t >= 0 \(g\^2 = 2t\); the grid reaches t = -1",
        ),
        (
            lambda: solve(VPSDE(0.1, 1.0), torch.zeros(2, 3), uniform_grid(0.5, -1.0, 4)),
            ValueError,
            r"VPSDE needs beta\(t\) = beta_min \+ beta_d t >= 0.*t = -1, where beta = -0.9",
        ),
        (
            lambda: solve(WrongDiffusionShape(), torch.zeros(2, 3), uniform_grid(0, 1, 2)),
            ValueError,
            r"diffusion returned shape \(2, 5\), which does not broadcast",
        ),
        (
            lambda: solve(
                OrnsteinUhlenbeck(), torch.zeros(2, 3, dtype=torch.long), uniform_grid(0, 1, 2)
            ),
            ValueError,
            "x0 must be a floating-point tensor",
        ),
        (
            lambda: solve(OrnsteinUhlenbeck(), torch.zeros(2, 3), uniform_grid(1, 0, 2), "exact"),
            ValueError,
            "method 'exact' needs an increasing time grid",
        ),
        (
            lambda: solve(
                GeometricBrownianMotion(), torch.ones(2, 3), uniform_grid(0, 1, 2), "exact"
            ),
            ValueError,
            "needs a process with closed-form Gaussian transitions",
        ),
        (
            lambda: solve(
                OrnsteinUhlenbeck(), torch.zeros(2, 3), uniform_grid(0, 1, 2), "heun", churn=0.5
            ),
            ValueError,
            "with churn needs an SDE with a probability_flow",
        ),
        (
            lambda: make_solver("heun", churn=1.5),
            ValueError,
            r"churn must be None or fractions in \[0, 1\]",
        ),
        (
            lambda: solve(
                OrnsteinUhlenbeck(),
                torch.zeros(2, 3),
                uniform_grid(0, 1, 4),
                checkpoint_every=2,
                callback=lambda k, t, x: None,
            ),
            ValueError,
            "checkpoint_every cannot be combined with a callback",
        ),
        (
            lambda: solve(
                OrnsteinUhlenbeck(), torch.zeros(2, 3), uniform_grid(0, 1, 2), "torchsde:heun"
            ),
            ValueError,
            "torchsde method must be one of",
        ),
        (
            lambda: _solve_ou("torchsde:euler", progress=True),
            ValueError,
            "torchsde methods do not take callback, progress",
        ),
        (
            lambda: _solve_ou("euler", noise=ExplicitIncrements(torch.zeros(3, 2, 3))),
            ValueError,
            r"ExplicitIncrements hold shape \(3, 2, 3\) but this grid and state need",
        ),
    ],
)
def test_invalid_inputs_raise_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


@settings(max_examples=25, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    n_steps=st.integers(1, 6),
    decreasing=st.booleans(),
    method=st.sampled_from(["euler", "heun", "torchsde:euler"]),
)
def test_any_state_shape_and_direction_round_trips(shape, n_steps, decreasing, method):
    grid = uniform_grid(1.0, 0.0, n_steps) if decreasing else uniform_grid(0.0, 1.0, n_steps)
    x0 = torch.randn(*shape)
    out = solve(OrnsteinUhlenbeck(rate=0.5), x0, grid, method, return_path=True)
    assert out.x.shape == x0.shape
    assert out.path.shape == (n_steps + 1, *shape)
    torch.testing.assert_close(out.path[0], x0)
    torch.testing.assert_close(out.path[-1], out.x)
    assert torch.equal(out.grid, grid)
