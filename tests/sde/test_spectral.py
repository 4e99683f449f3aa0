"""Spectral Hilbert-space OU (sde.md test 5 and more): basis, transforms, prior, Gaussian measures.

Everything runs in float64 (autouse fixture below).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats
from torch import Tensor

from tsgen.sde.processes import OrnsteinUhlenbeck
from tsgen.sde.spectral import (
    SpectralBasis,
    SpectralOU,
    cameron_martin_norm2,
    gaussian_shift_log_rnd,
)

KINDS = ("sine", "cosine", "fourier")


@pytest.fixture(autouse=True)
def float64() -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def physical_frequencies(kind: str, n_modes: int, length: float) -> Tensor:
    """Angular frequencies of the 1-D basis written out from the definitions (independent of
    the implementation): pi k / L (sine k >= 1, cosine k >= 0), 2 pi ceil(i/2) / L (Fourier)."""
    i = torch.arange(n_modes, dtype=torch.float64)
    if kind == "sine":
        return math.pi * (i + 1) / length
    if kind == "cosine":
        return math.pi * i / length
    return 2 * math.pi * torch.ceil(i / 2) / length


# ------------------------------------------------------------------------------------------
# Karhunen-Loeve
# ------------------------------------------------------------------------------------------


def test_karhunen_loeve_sum_of_the_brownian_bridge() -> None:
    """C = s^2 (-Laplacian_D)^{-1} on [0, L] has eigenvalues s^2 (L / (k pi))^2 on the sine basis,
    and sum_k eig_k e_k(t)^2 = C(t, t) = s^2 t (L - t) / L."""
    length, s, n_modes = 2.5, 1.3, 10_000
    basis = SpectralBasis("sine", n_modes, length=length)
    eig = s**2 / basis.laplacian_eigenvalues
    k = torch.arange(1, n_modes + 1, dtype=torch.float64)
    torch.testing.assert_close(eig, s**2 * (length / (k * math.pi)) ** 2, rtol=1e-14, atol=0)

    t = torch.linspace(0, length, 41)[1:-1]
    kl_sum = (eig * basis.evaluate(t[:, None]) ** 2).sum(-1)
    exact = s**2 * t * (length - t) / length
    assert (kl_sum - exact).abs().max() < 1e-4
    # With the analytic tail sum_{k>K} eig_k (2/L) sin^2 ~ s^2 L / pi^2 sum_{k>K} 1/k^2 (the
    # oscillating part is O(1/K^2)), the residual drops by orders of magnitude.
    tail = s**2 * length / math.pi**2 * torch.special.polygamma(1, torch.tensor(n_modes + 1.0))
    assert (kl_sum + tail - exact).abs().max() < 1e-7

    # The Brownian bridge is the stationary law of the spectral OU with c = 0, gamma = 0 and
    # amplitude s sqrt(2): s'^2 lambda_k / (2 a_k) = 2 s^2 / (2 (pi k / L)^2).
    prior = SpectralOU(basis, c=0.0, gamma=0.0, scale=s * math.sqrt(2))
    torch.testing.assert_close(prior.stationary_covariance_eigenvalues(), eig, rtol=1e-14, atol=0)


# ------------------------------------------------------------------------------------------
# The basis: eigenfunctions, eigenvalues, boundary conditions
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_basis_functions_are_laplacian_eigenfunctions(kind: str) -> None:
    """-Laplacian e_k = lambda_k e_k at random points (autograd Hessian), 2-D with L_1 != L_2,
    and laplacian_eigenvalues are the physical |freq|^2."""
    lengths, n_modes = (1.7, 0.6), (5, 4)
    basis = SpectralBasis(kind, n_modes, length=lengths, ndim=2)
    expected = (
        physical_frequencies(kind, n_modes[0], lengths[0])[:, None] ** 2
        + physical_frequencies(kind, n_modes[1], lengths[1])[None, :] ** 2
    )
    torch.testing.assert_close(basis.laplacian_eigenvalues, expected, rtol=1e-14, atol=0)

    points = torch.rand(7, 2, generator=torch.Generator().manual_seed(0)) * torch.tensor(lengths)
    hessian = torch.func.vmap(torch.func.jacrev(torch.func.jacrev(basis.evaluate)))(points)
    laplacian = hessian.diagonal(dim1=-2, dim2=-1).sum(-1)  # (P, K1, K2)
    values = basis.evaluate(points)
    torch.testing.assert_close(-laplacian, expected * values, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_boundary_conditions_and_l2_orthonormality(kind: str) -> None:
    """Dirichlet / Neumann / periodic ends, and <e_k, e_m> = delta_km by adaptive quadrature."""
    length, n_modes = 1.9, 6
    basis = SpectralBasis(kind, n_modes, length=length)
    ends = torch.tensor([[0.0], [length]])
    values = basis.evaluate(ends)
    slopes = torch.func.vmap(torch.func.jacrev(basis.evaluate))(ends)[..., 0]
    if kind == "sine":
        torch.testing.assert_close(values, torch.zeros_like(values), rtol=0, atol=1e-14)
    elif kind == "cosine":
        torch.testing.assert_close(slopes, torch.zeros_like(slopes), rtol=0, atol=1e-12)
    else:
        torch.testing.assert_close(values[0], values[1], rtol=0, atol=1e-14)
        torch.testing.assert_close(slopes[0], slopes[1], rtol=0, atol=1e-12)

    def entry(k: int, m: int) -> float:
        def integrand(x: float) -> float:
            v = basis.evaluate(torch.tensor([[x]]))[0]
            return float(v[k] * v[m])

        return integrate.quad(integrand, 0, length, limit=200, epsabs=1e-13)[0]

    gram = torch.tensor([[entry(k, m) for m in range(n_modes)] for k in range(n_modes)])
    torch.testing.assert_close(gram, torch.eye(n_modes), rtol=0, atol=1e-10)


# ------------------------------------------------------------------------------------------
# Transforms
# ------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    n=st.integers(1, 70),
    length=st.floats(0.1, 10.0),
    seed=st.integers(0, 2**16),
)
def test_round_trip_1d(kind: str, n: int, length: float, seed: int) -> None:
    """to_grid(to_coefficients(v)) == v with K = N (DST-I, DCT-II/III, rfft), and truncation to
    K < N keeps the first K coefficients."""
    basis = SpectralBasis(kind, n, length=length)
    values = torch.randn(3, 2, n, generator=torch.Generator().manual_seed(seed))
    coeffs = basis.to_coefficients(values)
    torch.testing.assert_close(basis.to_grid(coeffs, n), values, rtol=0, atol=1e-12)
    k = max(1, n // 3)
    truncated = SpectralBasis(kind, k, length=length).to_coefficients(values)
    torch.testing.assert_close(truncated, coeffs[..., :k], rtol=0, atol=1e-13)


@settings(max_examples=15, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    sizes=st.tuples(st.integers(1, 24), st.integers(1, 24)),
    lengths=st.tuples(st.floats(0.1, 5.0), st.floats(0.1, 5.0)),
    seed=st.integers(0, 2**16),
)
def test_round_trip_2d(
    kind: str, sizes: tuple[int, int], lengths: tuple[float, float], seed: int
) -> None:
    basis = SpectralBasis(kind, sizes, length=lengths, ndim=2)
    values = torch.randn(2, 3, *sizes, generator=torch.Generator().manual_seed(seed))
    coeffs = basis.to_coefficients(values)
    assert coeffs.shape == values.shape
    torch.testing.assert_close(basis.to_grid(coeffs, sizes), values, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sizes", [(12,), (13,), (6, 7)])
def test_sampled_basis_functions_give_unit_vectors(kind: str, sizes: tuple[int, ...]) -> None:
    """The discrete transform is orthonormal: e_k sampled on the grid has coefficient vector
    delta_k, for every mode (including the Fourier Nyquist cosine of an even N)."""
    ndim = len(sizes)
    basis = SpectralBasis(kind, sizes, length=tuple(0.8 + 0.5 * a for a in range(ndim)), ndim=ndim)
    sampled = basis.evaluate(basis.grid(sizes))  # (*spatial, *modes)
    n_total = math.prod(sizes)
    # One batch entry per mode: (n_modes, 1, *spatial).
    batch = sampled.reshape(n_total, n_total).T.reshape(n_total, 1, *sizes)
    coeffs = basis.to_coefficients(batch).reshape(n_total, n_total)
    torch.testing.assert_close(coeffs, torch.eye(n_total), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_synthesis_is_the_series_at_any_resolution(kind: str) -> None:
    """to_grid(c, N) == sum_k c_k e_k(grid_N) for N >= K (zero padding), 2-D, odd/even N."""
    basis = SpectralBasis(kind, (6, 5), length=(1.3, 2.1), ndim=2)
    coeffs = torch.randn(2, 3, 6, 5, generator=torch.Generator().manual_seed(1))
    for resolution in [(6, 5), (11, 8), (16, 17)]:
        series = torch.einsum("xyab,ncab->ncxy", basis.evaluate(basis.grid(resolution)), coeffs)
        torch.testing.assert_close(basis.to_grid(coeffs, resolution), series, rtol=0, atol=1e-12)


def smooth(kind: str, length: float) -> Callable[[Tensor], Tensor]:
    """A smooth test function (periodic for the Fourier basis, where the rectangle rule is
    spectrally accurate; generic otherwise, where the quadrature is second order)."""
    if kind == "fourier":
        return lambda x: (
            torch.exp(torch.sin(2 * math.pi * x / length)) + torch.cos(4 * math.pi * x / length)
        )
    return lambda x: torch.exp(x / length) * torch.cos(3 * x / length)


@pytest.mark.parametrize("kind", KINDS)
def test_coefficients_do_not_depend_on_grid_size(kind: str) -> None:
    """The coefficients approximate <f, e_k> with quadrature weight = cell size h, so the grid size
    only enters through the quadrature error. For g = f e_k, Euler-Maclaurin gives the error
    +h^2 (g'(L) - g'(0)) / 12 + O(h^4) for sine (trapezoid with g(0) = g(L) = 0, h = L / (N+1)),
    -h^2 (g'(L) - g'(0)) / 24 + O(h^4) for cosine (midpoint, h = L / N), and spectral accuracy for
    a periodic f with Fourier (rectangle rule). Checked at 64 and 256 points."""
    length, n_modes = 1.7, 8
    f = smooth(kind, length)
    basis = SpectralBasis(kind, n_modes, length=length)

    def inner_product(k: int) -> float:
        def integrand(x: float) -> float:
            point = torch.tensor([x])
            return float(f(point)[0] * basis.evaluate(point[:, None])[0, k])

        return integrate.quad(integrand, 0, length, limit=200, epsabs=1e-13, epsrel=1e-13)[0]

    exact = torch.tensor([inner_product(k) for k in range(n_modes)])

    def g(x: Tensor) -> Tensor:  # (1,) -> (K,): f e_k
        return f(x) * basis.evaluate(x[None])[0]

    ends = torch.tensor([[0.0], [length]])
    slope_jump = torch.func.vmap(torch.func.jacrev(g))(ends)[..., 0].diff(dim=0)[0]
    coeffs = {}
    for n in (64, 256):
        values = f(basis.grid(n)[..., 0])[None, None]
        coeffs[n] = basis.to_coefficients(values)[0, 0]
        error = coeffs[n] - exact
        if kind == "fourier":
            assert error.abs().max() < 1e-13
        else:
            h, weight = (length / (n + 1), 1 / 12) if kind == "sine" else (length / n, -1 / 24)
            leading = weight * h**2 * slope_jump
            assert (error - leading).abs().max() < 3e-2 * leading.abs().max()
    assert (coeffs[64] - coeffs[256]).abs().max() < (5e-3 if kind == "sine" else 1e-4)


# ------------------------------------------------------------------------------------------
# Resolution invariance of the prior (two-sample test)
# ------------------------------------------------------------------------------------------


def projected_samples(
    process: OrnsteinUhlenbeck,
    basis: SpectralBasis,
    resolution: int | tuple[int, ...],
    n_keep: int | tuple[int, ...],
    t: float,
    n: int,
    seed: int,
) -> Tensor:
    """Sample the marginal at t from X_0 = 0 with all modes the grid holds, synthesise on the
    grid, project back to the first ``n_keep`` modes: ``(n, n_keep_total)``."""
    x0 = torch.zeros(n, 1, *basis.n_modes)
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    values = basis.to_grid(process.sample_marginal(t, x0, eps), resolution)
    low = SpectralBasis(basis.kind, n_keep, length=basis.length, ndim=basis.ndim)
    return low.to_coefficients(values).reshape(n, -1)


def rejects_equal_distributions(a: Tensor, b: Tensor, level: float = 0.01) -> bool:
    """Per-mode two-sample KS tests, Bonferroni-corrected: reject if any p < level / modes."""
    p_values = [stats.ks_2samp(a[:, m].numpy(), b[:, m].numpy()).pvalue for m in range(a.shape[1])]
    return min(p_values) < level / a.shape[1]


def test_prior_is_resolution_invariant_and_the_test_has_power() -> None:
    """First 8 modes of prior samples drawn on 64 and 256 points agree (physical frequencies);
    with pixel-index frequencies k / N (the reference implementation's defect) they do not.
    c = 0 so that the rate is the Laplacian eigenvalue alone (with c = 1 the wrong rates
    1 + (k / N)^2 are ~1 at both resolutions and the defect hides in the high modes)."""
    length, s, gamma, t, n, n_keep = 2.0, 1.5, 1.0, 0.5, 3000, 8

    def physical(resolution: int) -> tuple[OrnsteinUhlenbeck, SpectralBasis]:
        basis = SpectralBasis("sine", resolution, length=length)
        return SpectralOU(basis, c=0.0, gamma=gamma, scale=s), basis

    def pixel_index(resolution: int) -> tuple[OrnsteinUhlenbeck, SpectralBasis]:
        basis = SpectralBasis("sine", resolution, length=length)
        rate = (torch.arange(1, resolution + 1) / resolution) ** 2  # (k / N)^2: wrong
        return OrnsteinUhlenbeck(rate=rate, scale=s * rate ** (-gamma / 2)), basis

    for build, should_reject in ((physical, False), (pixel_index, True)):
        coarse = projected_samples(*build(64), 64, n_keep, t, n, seed=1)
        fine = projected_samples(*build(256), 256, n_keep, t, n, seed=2)
        assert rejects_equal_distributions(coarse, fine) == should_reject


def test_prior_is_resolution_invariant_2d_cosine() -> None:
    """Default prior (c = 1, gamma = 1) on [0, 1] x [0, 1.5]: the first 3 x 3 modes of samples
    on 16 x 16 and 64 x 64 grids agree."""
    basis_coarse = SpectralBasis("cosine", 16, length=(1.0, 1.5), ndim=2)
    basis_fine = SpectralBasis("cosine", 64, length=(1.0, 1.5), ndim=2)
    coarse = projected_samples(SpectralOU(basis_coarse), basis_coarse, 16, 3, 0.7, 2000, seed=3)
    fine = projected_samples(SpectralOU(basis_fine), basis_fine, 64, 3, 0.7, 2000, seed=4)
    assert not rejects_equal_distributions(coarse, fine)


# ------------------------------------------------------------------------------------------
# The spectral OU process
# ------------------------------------------------------------------------------------------


def test_per_mode_marginal_matches_closed_form() -> None:
    """X_t | X_0 = x ~ N(e^{-a_k t} x, s^2 lambda_k (1 - e^{-2 a_k t}) / (2 a_k)) per mode, with
    a_k = c + |freq_k|^2 and lambda_k = a_k^{-gamma}, per-sample times."""
    lengths, n_modes, c, gamma, s = (1.5, 0.7), (5, 6), 0.3, 1.5, 2.0
    basis = SpectralBasis("fourier", n_modes, length=lengths, ndim=2)
    process = SpectralOU(basis, c=c, gamma=gamma, scale=s)
    a = (
        c
        + physical_frequencies("fourier", n_modes[0], lengths[0])[:, None] ** 2
        + physical_frequencies("fourier", n_modes[1], lengths[1])[None, :] ** 2
    )
    lam = a ** (-gamma)
    t = torch.tensor([1e-6, 0.01, 0.3, 2.0])
    x = torch.randn(4, 3, *n_modes, generator=torch.Generator().manual_seed(5))
    mean, std = process.transition(0.0, t, x)
    tt = t[:, None, None, None]
    variance = s**2 * lam * -torch.expm1(-2 * a * tt) / (2 * a)
    torch.testing.assert_close(
        torch.broadcast_to(std**2, x.shape), variance.expand_as(x), rtol=1e-12, atol=0
    )
    torch.testing.assert_close(mean, torch.exp(-a * tt) * x, rtol=1e-12, atol=0)
    torch.testing.assert_close(process.covariance_eigenvalues, lam, rtol=1e-14, atol=0)
    torch.testing.assert_close(
        process.stationary_covariance_eigenvalues(), s**2 * lam / (2 * a), rtol=1e-14, atol=0
    )


def test_sample_stationary() -> None:
    basis = SpectralBasis("cosine", (3, 4), ndim=2)
    process = SpectralOU(basis, c=2.0, gamma=1.0, scale=0.5)
    eps = torch.randn(5, 2, 3, 4, generator=torch.Generator().manual_seed(6))
    std = process.stationary_covariance_eigenvalues().sqrt()
    torch.testing.assert_close(process.sample_stationary(5, 2, eps), std * eps, rtol=0, atol=0)
    draws = process.sample_stationary(20_000, 1)
    assert draws.shape == (20_000, 1, 3, 4)
    # Sample variance / true variance has standard error sqrt(2 / n) = 0.01.
    ratio = draws.var(dim=0)[0] / std**2
    assert (ratio - 1).abs().max() < 0.05
    with pytest.raises(ValueError, match="noise given as a tensor must have shape"):
        process.sample_stationary(5, 2, eps[:, :1])


# ------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------


def test_trace_class_check_is_analytic() -> None:
    """Trace class iff 2 (1 + gamma) > d."""
    square = SpectralBasis("cosine", 8, ndim=2)
    with pytest.raises(ValueError, match=r"gamma.*d=2|d=2.*gamma") as info:
        SpectralOU(square, gamma=0.0)
    assert "gamma=0.0" in str(info.value)
    SpectralOU(square, gamma=0.5)
    cube = SpectralBasis("sine", 4, ndim=3)
    with pytest.raises(ValueError, match="gamma"):
        SpectralOU(cube, gamma=0.5)  # 2 (1 + 0.5) = 3, not > 3
    SpectralOU(cube, gamma=0.6)
    SpectralOU(SpectralBasis("sine", 4), gamma=0.0)  # d = 1: 2 > 1


def test_rate_shift_and_smoothness_validation() -> None:
    with pytest.raises(ValueError, match="c must be"):
        SpectralOU(SpectralBasis("cosine", 4), c=0.0)
    with pytest.raises(ValueError, match="c must be"):
        SpectralOU(SpectralBasis("fourier", 4), c=0.0)
    SpectralOU(SpectralBasis("sine", 4), c=0.0)  # no zero eigenvalue
    with pytest.raises(ValueError, match="c must be"):
        SpectralOU(SpectralBasis("sine", 4), c=-0.1)
    with pytest.raises(ValueError, match="gamma must be"):
        SpectralOU(SpectralBasis("sine", 4), gamma=-1.0)
    with pytest.raises(ValueError, match="scale"):
        SpectralOU(SpectralBasis("sine", 4), scale=0.0)


def test_basis_validation_names_the_argument() -> None:
    with pytest.raises(ValueError, match=r"kind must be one of .*'wavelet'"):
        SpectralBasis("wavelet", 4)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"n_modes.*\(0,\)"):
        SpectralBasis("sine", 0)
    with pytest.raises(ValueError, match=r"n_modes.*ndim=1.*2 entries"):
        SpectralBasis("sine", (4, 4))
    with pytest.raises(ValueError, match=r"length.*-1.0"):
        SpectralBasis("sine", 4, length=-1.0)
    with pytest.raises(ValueError, match=r"length.*inf"):
        SpectralBasis("sine", 4, length=math.inf)
    with pytest.raises(ValueError, match=r"length.*ndim=2.*3 entries"):
        SpectralBasis("sine", 4, length=(1.0, 1.0, 1.0), ndim=2)
    with pytest.raises(ValueError, match="ndim"):
        SpectralBasis("sine", 4, ndim=0)

    basis = SpectralBasis("cosine", (4, 5), ndim=2)
    with pytest.raises(ValueError, match=r"values.*4 dims.*\(2, 8, 8\)"):
        basis.to_coefficients(torch.zeros(2, 8, 8))
    with pytest.raises(ValueError, match=r"values.*at least.*\(4, 5\).*\(8, 4\)"):
        basis.to_coefficients(torch.zeros(1, 1, 8, 4))
    with pytest.raises(ValueError, match=r"coeffs.*\(4, 5\).*\(4, 4\)"):
        basis.to_grid(torch.zeros(1, 1, 4, 4), 8)
    with pytest.raises(ValueError, match=r"resolution.*\(4, 5\).*\(8, 3\)"):
        basis.to_grid(torch.zeros(1, 1, 4, 5), (8, 3))
    with pytest.raises(ValueError, match=r"resolution.*ndim=2"):
        basis.grid((8, 8, 8))
    with pytest.raises(ValueError, match=r"points.*d = ndim = 2"):
        basis.evaluate(torch.zeros(3, 1))


# ------------------------------------------------------------------------------------------
# Gaussian measures per mode
# ------------------------------------------------------------------------------------------


def diagonal_gaussian_logpdf(x: Tensor, mean: Tensor, variances: Tensor) -> np.ndarray:
    """Finite-dimensional log density of N(mean, diag(variances)) per sample (scipy)."""
    flat_var = variances.expand_as(x[0]).reshape(-1).numpy()
    return np.array(
        [
            stats.multivariate_normal(mean=m.reshape(-1).numpy(), cov=np.diag(flat_var)).logpdf(
                xi.reshape(-1).numpy()
            )
            for xi, m in zip(x, mean.expand_as(x), strict=True)
        ]
    )


def test_cameron_martin_norm_is_a_gaussian_log_density_ratio() -> None:
    """|h|^2_{C^{-1}} = 2 [log N(0; 0, C) - log N(h; 0, C)]."""
    gen = torch.Generator().manual_seed(7)
    variances = torch.rand(2, 5, generator=gen) + 0.1  # per (channel, mode)
    h = torch.randn(4, 2, 5, generator=gen)
    zero = torch.zeros_like(h)
    expected = 2 * (
        diagonal_gaussian_logpdf(zero, zero, variances)
        - diagonal_gaussian_logpdf(h, zero, variances)
    )
    torch.testing.assert_close(
        cameron_martin_norm2(h, variances), torch.from_numpy(expected), rtol=1e-12, atol=1e-12
    )
    with pytest.raises(ValueError, match="variances"):
        cameron_martin_norm2(h, torch.ones(3))


def test_shift_log_rnd_is_a_gaussian_log_density_ratio() -> None:
    """log dN(m, C)/dN(0, C)(x) = log N(x; m, C) - log N(x; 0, C), shifts per sample or shared."""
    gen = torch.Generator().manual_seed(8)
    variances = torch.rand(6, generator=gen) + 0.2  # per mode, shared over channels
    x = torch.randn(4, 3, 6, generator=gen)
    for shift in (torch.randn(4, 3, 6, generator=gen), torch.randn(3, 6, generator=gen)):
        expected = diagonal_gaussian_logpdf(x, shift, variances) - diagonal_gaussian_logpdf(
            x, torch.zeros_like(x), variances
        )
        torch.testing.assert_close(
            gaussian_shift_log_rnd(x, shift, variances),
            torch.from_numpy(expected),
            rtol=1e-12,
            atol=1e-12,
        )
    with pytest.raises(ValueError, match="shift"):
        gaussian_shift_log_rnd(x, torch.zeros(5), variances)


def test_shift_log_rnd_reweights_the_reference_to_the_shifted_measure() -> None:
    """E_{N(0,C)}[exp(log RND)] = 1 and E_{N(0,C)}[X exp(log RND)] = m (Monte Carlo, 5 s.e.)."""
    n = 200_000
    variances = torch.tensor([0.5, 1.0, 2.0])
    shift = torch.tensor([0.2, -0.3, 0.4])
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(9)) * variances.sqrt()
    weights = gaussian_shift_log_rnd(x, shift, variances).exp()
    weighted = torch.cat([weights[:, None], weights[:, None] * x], dim=1)
    standard_error = weighted.std(dim=0) / math.sqrt(n)
    error = (weighted.mean(dim=0) - torch.cat([torch.ones(1), shift])).abs()
    assert bool((error < 5 * standard_error).all())
