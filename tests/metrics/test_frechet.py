"""Tests for tsgen.metrics.frechet: closed forms, symmetry, identity, agreement with the usual
scipy.linalg.sqrtm computation, and convergence of the sample estimate."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from tsgen.metrics.frechet import frechet_distance, frechet_distance_from_samples, gaussian_fit


def _random_spd(rng: np.random.Generator, d: int, jitter: float = 0.1) -> np.ndarray:
    a = rng.standard_normal((d, d))
    return a @ a.T / d + jitter * np.eye(d)


def _sqrtm_reference(m1, c1, m2, c2) -> float:
    """The FID reference computation (Heusel et al. 2017): sqrtm of the non-symmetric product."""
    covmean = scipy.linalg.sqrtm(c1 @ c2)
    covmean = np.real(covmean)
    diff = m1 - m2
    return float(diff @ diff + np.trace(c1) + np.trace(c2) - 2 * np.trace(covmean))


def test_gaussian_fit_is_mean_and_unbiased_covariance() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 4))
    mean, cov = gaussian_fit(x)
    assert mean.dtype == np.float64 and cov.dtype == np.float64
    assert mean.shape == (4,) and cov.shape == (4, 4)
    np.testing.assert_allclose(mean, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(x, rowvar=False, ddof=1), rtol=1e-12, atol=1e-14)
    # Tensors (float32) are accepted and promoted to float64.
    mean_t, cov_t = gaussian_fit(torch.from_numpy(x).float())
    np.testing.assert_allclose(mean_t, mean, atol=1e-6)
    assert cov_t.dtype == np.float64
    np.testing.assert_allclose(cov_t, cov, atol=1e-5)


def test_diagonal_gaussians_closed_form() -> None:
    rng = np.random.default_rng(1)
    m1, m2 = rng.standard_normal(6), rng.standard_normal(6)
    s1, s2 = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    expected = np.sum((m1 - m2) ** 2) + np.sum((s1 - s2) ** 2)
    got = frechet_distance(m1, np.diag(s1**2), m2, np.diag(s2**2))
    assert isinstance(got, float)
    assert got == pytest.approx(expected, rel=1e-12)


def test_commuting_covariances_closed_form() -> None:
    # C1 = U diag(a) U^T and C2 = U diag(b) U^T commute; then
    # tr(C1 + C2 - 2 (C1 C2)^{1/2}) = sum (sqrt(a) - sqrt(b))^2.
    rng = np.random.default_rng(2)
    u, _ = np.linalg.qr(rng.standard_normal((7, 7)))
    a, b = rng.uniform(0.05, 4, 7), rng.uniform(0.05, 4, 7)
    m1, m2 = rng.standard_normal(7), rng.standard_normal(7)
    c1, c2 = (u * a) @ u.T, (u * b) @ u.T
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(m1, c1, m2, c2) == pytest.approx(expected, rel=1e-10)


def test_symmetry_identity_and_scipy_reference() -> None:
    rng = np.random.default_rng(3)
    for d in (1, 3, 16):
        m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
        c1, c2 = _random_spd(rng, d), _random_spd(rng, d)
        d12 = frechet_distance(m1, c1, m2, c2)
        assert d12 == pytest.approx(frechet_distance(m2, c2, m1, c1), rel=1e-10, abs=1e-12)
        assert d12 == pytest.approx(_sqrtm_reference(m1, c1, m2, c2), rel=1e-8, abs=1e-8)
        assert abs(frechet_distance(m1, c1, m1, c1)) < 1e-10


def test_identical_sample_sets_give_zero_even_when_rank_deficient() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((200, 8))
    assert abs(frechet_distance_from_samples(x, x)) < 1e-10
    # N < D: singular covariance, where sqrtm of the product is least reliable.
    x = rng.standard_normal((5, 12))
    assert abs(frechet_distance_from_samples(x, x)) < 1e-10
    y = rng.standard_normal((5, 12))
    value = frechet_distance_from_samples(x, y)
    assert np.isfinite(value) and value >= 0


def test_sample_distance_converges_to_true_distance() -> None:
    rng = np.random.default_rng(5)
    d = 4
    m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
    c1, c2 = _random_spd(rng, d, jitter=0.5), _random_spd(rng, d, jitter=0.5)
    true = frechet_distance(m1, c1, m2, c2)
    n = 200_000
    a = rng.multivariate_normal(m1, c1, size=n)
    b = rng.multivariate_normal(m2, c2, size=n)
    # The plug-in estimate's Monte Carlo error is dominated by the mean term: ||dm + e||^2 with
    # e ~ N(0, (C1 + C2) / N) has standard deviation ~ 2 sqrt(dm^T (C1 + C2) dm / N) (~0.017
    # here); the covariance term adds O(1/sqrt(N)) of a smaller constant and an O(D/N) bias.
    diff = m1 - m2
    sd_mean_term = 2 * np.sqrt(diff @ (c1 + c2) @ diff / n)
    tol = 5 * sd_mean_term + 0.01
    assert frechet_distance_from_samples(a, b) == pytest.approx(true, abs=tol)
    # Same shift but torch input, float64 end to end.
    got = frechet_distance_from_samples(torch.from_numpy(a), torch.from_numpy(b))
    assert got == pytest.approx(frechet_distance_from_samples(a, b), rel=1e-12)


def test_validation() -> None:
    with pytest.raises(ValueError, match=r"shape \(N, D\)"):
        gaussian_fit(np.zeros(5))
    with pytest.raises(ValueError, match="at least 2 rows"):
        gaussian_fit(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        gaussian_fit(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="same feature dimension"):
        frechet_distance_from_samples(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="cov2 must have shape"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(3))
