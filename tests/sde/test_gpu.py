"""The solvers on a CUDA device: no host-device synchronisation inside the loop, per-sample
noise independent of the batch, and the same numbers as on the CPU. Skipped without a GPU."""

import pytest
import torch

from tsgen.sde import (
    VPSDE,
    ExplicitIncrements,
    OrnsteinUhlenbeck,
    PerSampleNoise,
    karras_grid,
    solve,
    uniform_grid,
)
from tsgen.sde.solvers import Problem, make_solver

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")


class Posterior(torch.nn.Module):
    def forward(self, x, t):
        return 0.5 * x


@pytest.mark.parametrize(
    ("method", "sde"),
    [
        ("euler", OrnsteinUhlenbeck(1.0, 0.5)),
        ("heun", OrnsteinUhlenbeck(1.0, 0.5)),
        ("exact", VPSDE()),
    ],
)
def test_the_solver_loop_does_not_synchronise_with_the_host(method, sde):
    x0 = torch.randn(16, 8, device=CUDA)
    grid = uniform_grid(0.0, 1.0, 100, device=CUDA)
    sde = sde.to(CUDA)
    solver = make_solver(method)
    solve(sde, x0, grid, method)  # warm-up, and the one contract check (it syncs)
    problem = Problem(sde, x0, grid)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = solver.integrate(problem)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.x.device.type == "cuda"


def test_the_bridge_sampler_does_not_synchronise_with_the_host():
    from tsgen.sde.bridges import ReverseBridge

    vp = VPSDE(0.2, 10.0).to(CUDA)
    x_T = torch.randn(32, 24, 6, device=CUDA)
    grid = karras_grid(1 - 1e-4, 1e-4, 40, device=CUDA)
    bridge = ReverseBridge(vp, Posterior(), x_T)
    solver = make_solver("heun", churn=0.33, final_euler=True)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = solver.integrate(Problem(bridge, x_T, grid))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.nfe == 119


def test_per_sample_noise_on_cuda_is_independent_of_the_batch():
    sde = OrnsteinUhlenbeck(rate=1.0, scale=0.5)
    grid = uniform_grid(0.0, 1.0, 50, device=CUDA)
    small = solve(sde, torch.zeros(4, 3, device=CUDA), grid, noise=PerSampleNoise(range(4))).x
    large = solve(sde, torch.zeros(32, 3, device=CUDA), grid, noise=PerSampleNoise(range(32))).x
    torch.testing.assert_close(small, large[:4], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["euler", "heun", "torchsde:euler"])
def test_cuda_and_cpu_agree_on_shared_increments(method):
    sde = OrnsteinUhlenbeck(rate=1.3, scale=0.7)
    x0 = torch.randn(8, 5, dtype=torch.float64)
    grid = uniform_grid(1.0, 0.0, 40, dtype=torch.float64)
    dW = torch.randn(40, 8, 5, dtype=torch.float64) * (1 / 40) ** 0.5
    cpu = solve(sde, x0, grid, method, noise=ExplicitIncrements(dW)).x
    gpu = solve(
        sde.to(CUDA), x0.to(CUDA), grid.to(CUDA), method, noise=ExplicitIncrements(dW.to(CUDA))
    )
    torch.testing.assert_close(gpu.x.cpu(), cpu, rtol=1e-12, atol=1e-12)
