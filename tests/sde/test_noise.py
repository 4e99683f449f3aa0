"""Noise sources: per-sample seeding (sde.md test 6), explicit increments, statistics."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from tsgen.sde import (
    SDE,
    BrownianIntervalNoise,
    ExplicitIncrements,
    GaussianNoise,
    PerSampleNoise,
    coarsen_increments,
    karras_grid,
    solve,
    uniform_grid,
)


class MLPSDE(SDE):
    noise_type = "additive"

    def __init__(self, dtype: torch.dtype) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(5, 32), nn.SiLU(), nn.Linear(32, 4)).to(dtype)

    def drift(self, t, x):
        return self.net(torch.cat([x, t.expand(x.shape[0], 1)], dim=1))

    def diffusion(self, t, x):
        return torch.full((), 0.5, dtype=x.dtype)


@pytest.mark.parametrize(("dtype", "rtol"), [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_per_sample_noise_is_independent_of_the_batch(dtype, rtol):
    sde = MLPSDE(dtype)
    grid = uniform_grid(0.0, 1.0, 100, dtype=dtype)
    runs = {}
    for batch in (8, 64):
        noise = PerSampleNoise(seeds=range(batch))
        x0 = noise.normal((batch, 4), dtype, torch.device("cpu"))  # a prior draw, then the path
        increments = noise.increments(grid, torch.Size((batch, 4)), dtype, torch.device("cpu"))
        block = torch.stack([increments[k] for k in range(100)])
        noise = PerSampleNoise(seeds=range(batch))
        out = solve(sde, noise.normal((batch, 4), dtype, torch.device("cpu")), grid, noise=noise)
        runs[batch] = (x0, block, out.x)
    assert torch.equal(runs[8][0], runs[64][0][:8])
    assert torch.equal(runs[8][1], runs[64][1][:, :8])
    torch.testing.assert_close(runs[8][2], runs[64][2][:8], rtol=rtol, atol=rtol)


def test_per_sample_noise_depends_on_seed_not_position():
    a = PerSampleNoise([3, 5, 7]).normal((3, 6), torch.float64, torch.device("cpu"))
    b = PerSampleNoise([7, 3]).normal((2, 6), torch.float64, torch.device("cpu"))
    assert torch.equal(a[2], b[0]) and torch.equal(a[0], b[1])
    other_stream = PerSampleNoise([3], stream=1).normal((1, 6), torch.float64, torch.device("cpu"))
    assert not torch.equal(a[0], other_stream[0])


def test_per_sample_noise_checks_the_batch():
    with pytest.raises(ValueError, match="has 3 seeds but the states have shape"):
        PerSampleNoise([1, 2, 3]).normal((4, 2), torch.float32, torch.device("cpu"))
    with pytest.raises(ValueError, match="seeds must be a non-empty sequence"):
        PerSampleNoise([])


@pytest.mark.parametrize(
    "source",
    [
        GaussianNoise(torch.Generator().manual_seed(0), chunk=7),
        PerSampleNoise(range(20_000)),
        BrownianIntervalNoise(3),
    ],
    ids=["gaussian", "per-sample", "interval"],
)
def test_increments_have_variance_dt_on_any_grid(source):
    grid = karras_grid(1.0, 0.01, 12, dtype=torch.float64)
    shape = torch.Size((20_000, 1))
    increments = source.increments(grid, shape, torch.float64, torch.device("cpu"))
    block = torch.stack([increments[k] for k in range(len(increments))])
    var = block.var(dim=(1, 2)) / grid.diff().abs()
    # Sample variance of 2e4 normals: standard error sqrt(2 / n) = 1%.
    assert (var - 1).abs().max() < 4 * math.sqrt(2 / 20_000), var
    assert block.mean(dim=(1, 2)).abs().le(4 / math.sqrt(20_000) * grid.diff().abs().sqrt()).all()


def test_gaussian_noise_is_reproducible_and_in_order():
    grid = uniform_grid(0.0, 1.0, 10, dtype=torch.float64)
    shape = torch.Size((2, 3))
    draws = []
    for _ in range(2):
        inc = GaussianNoise(torch.Generator().manual_seed(1), chunk=4).increments(
            grid, shape, torch.float64, "cpu"
        )
        draws.append(torch.stack([inc[k] for k in range(10)]))
    assert torch.equal(*draws)
    inc = GaussianNoise(chunk=2).increments(grid, shape, torch.float64, "cpu")
    inc[5]
    with pytest.raises(IndexError, match="drawn in order; step 1 was already passed"):
        inc[1]


def test_gaussian_noise_needs_no_grid_for_plain_draws_and_interval_refuses_them():
    assert GaussianNoise().normal((2, 3), torch.float32, "cpu").shape == (2, 3)
    with pytest.raises(TypeError, match="only provides Brownian increments"):
        BrownianIntervalNoise().normal((2, 3), torch.float32, "cpu")


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 6), factor=st.integers(1, 5), batch=st.integers(1, 3))
def test_coarsened_increments_sum_the_fine_ones(n, factor, batch):
    fine = torch.randn(n * factor, batch, 2, dtype=torch.float64)
    coarse = coarsen_increments(fine, factor)
    assert coarse.shape == (n, batch, 2)
    torch.testing.assert_close(coarse.sum(0), fine.sum(0))
    torch.testing.assert_close(coarse[0], fine[:factor].sum(0))


def test_explicit_increments_validate_shape():
    with pytest.raises(
        ValueError, match=r"increments must be a tensor of shape \(n_steps, batch, ...\)"
    ):
        ExplicitIncrements(torch.zeros(3))
    with pytest.raises(ValueError, match="factor must be a positive divisor"):
        coarsen_increments(torch.zeros(5, 1), 2)


def test_prior_draws_follow_per_sample_seeds():
    from tsgen.sde import OrnsteinUhlenbeck, SpectralBasis, SpectralOU

    ou = OrnsteinUhlenbeck(rate=1.0, scale=0.5)
    x0 = torch.ones(6, 3)
    few = ou.sample_marginal(0.4, x0[:2], PerSampleNoise([10, 11]))
    many = ou.sample_marginal(0.4, x0, PerSampleNoise(range(10, 16)))
    assert torch.equal(few, many[:2])
    prior = SpectralOU(SpectralBasis("sine", 5))
    a = prior.sample_stationary(2, 3, PerSampleNoise([4, 5]))
    b = prior.sample_stationary(3, 3, PerSampleNoise([9, 4, 5]))
    assert torch.equal(a, b[1:])


def test_gaussian_noise_validates_its_chunk():
    with pytest.raises(ValueError, match=r"chunk must be a positive integer; got 2\.5"):
        GaussianNoise(chunk=2.5)
