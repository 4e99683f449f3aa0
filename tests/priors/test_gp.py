"""Gaussian-process prior: maximum-likelihood recovery of known kernels from synthetic GP data
(drawn here with numpy, not with the prior), the sampler's covariance, Matern kernels against
the Bessel-function form, and the reference mode's (defective) kernel."""

import math

import numpy as np
import pytest
import torch
from scipy import optimize, special, stats

from tsgen.priors import GaussianProcessPrior, stationary_correlation
from tsgen.priors.gp import _negative_log_likelihood
from tsgen.sde import GaussianNoise

LENGTH = 24
# Two features with different kernels: (variance, length scale in steps, noise variance).
TRUE = [(0.5, 4.0, 0.01), (0.2, 2.0, 0.05)]


def distances(length: int = LENGTH) -> np.ndarray:
    steps = np.arange(length)
    return np.abs(steps[:, None] - steps[None, :]).astype(float)


def matern(d: np.ndarray, length_scale: float, nu: float) -> np.ndarray:
    """General Matern correlation ``2^{1-nu} / Gamma(nu) s^nu K_nu(s)``, ``s = sqrt(2 nu) r``."""
    s = np.sqrt(2 * nu) * d / length_scale
    with np.errstate(invalid="ignore"):
        k = 2 ** (1 - nu) / special.gamma(nu) * s**nu * special.kv(nu, s)
    return np.where(d == 0, 1.0, k)


def rbf(d: np.ndarray, length_scale: float) -> np.ndarray:
    return np.exp(-(d**2) / (2 * length_scale**2))


def kernel_matrix(variance, length_scale, noise, correlation=rbf) -> np.ndarray:
    return variance * correlation(distances(), length_scale) + noise * np.eye(LENGTH)


def draw(covariances: list[np.ndarray], n: int, seed: int, mean: float = 0.0) -> torch.Tensor:
    """``(n, L, C)`` windows, feature ``f`` from ``N(mean, covariances[f])`` (numpy's sampler)."""
    rng = np.random.default_rng(seed)
    columns = [rng.multivariate_normal(np.full(LENGTH, mean), K, size=n) for K in covariances]
    return torch.from_numpy(np.stack(columns, axis=-1))


@pytest.fixture(scope="module")
def gp_data() -> torch.Tensor:
    return draw([kernel_matrix(*p) for p in TRUE], n=2000, seed=0, mean=0.1)


@pytest.fixture(scope="module")
def fitted(gp_data) -> GaussianProcessPrior:
    return GaussianProcessPrior().fit(gp_data)


def test_fit_recovers_variance_length_scale_and_noise(fitted):
    for f, (variance, length_scale, noise) in enumerate(TRUE):
        assert float(fitted.variance[f]) == pytest.approx(variance, rel=0.1)
        assert float(fitted.length_scale[f]) == pytest.approx(length_scale, rel=0.1)
        assert float(fitted.diagonal[0, f]) == pytest.approx(noise, rel=0.1)
        assert bool((fitted.diagonal[:, f] == fitted.diagonal[0, f]).all())
        assert float(fitted.mean[0, f]) == pytest.approx(0.1, abs=0.05)


def test_fitted_log_likelihood_is_at_least_the_true_one(fitted, gp_data):
    for f, true in enumerate(TRUE):
        mean = fitted.mean[:, f].numpy()
        columns = gp_data[..., f].numpy()
        K_fit = kernel_matrix(
            float(fitted.variance[f]), float(fitted.length_scale[f]), float(fitted.diagonal[0, f])
        )
        ll_fit = stats.multivariate_normal(mean, K_fit).logpdf(columns).sum()
        ll_true = stats.multivariate_normal(mean, kernel_matrix(*true)).logpdf(columns).sum()
        assert ll_fit >= ll_true
        # The stored log-likelihood (scatter-matrix form) is the exact one.
        assert float(fitted.log_likelihood[f]) == pytest.approx(ll_fit, rel=1e-10)


def test_samples_have_the_kernel_covariance(fitted):
    n = 20_000
    x = fitted.sample(n, GaussianNoise(torch.Generator().manual_seed(0))).numpy()
    for f in range(len(TRUE)):
        K = kernel_matrix(
            float(fitted.variance[f]), float(fitted.length_scale[f]), float(fitted.diagonal[0, f])
        )
        empirical = np.cov(x[..., f], rowvar=False)
        # Var of a sample covariance entry of a Gaussian: (K_ii K_jj + K_ij^2) / n.
        sd = np.sqrt((np.outer(np.diag(K), np.diag(K)) + K**2) / n)
        assert np.all(np.abs(empirical - K) < 5 * sd)
        np.testing.assert_allclose(
            x[..., f].mean(axis=0), fitted.mean[:, f].numpy(), atol=5 * math.sqrt(K.max() / n)
        )


def test_fit_recovers_a_matern_kernel():
    d = distances()
    K = 0.5 * matern(d, 4.0, 1.5) + 0.01 * np.eye(LENGTH)
    prior = GaussianProcessPrior(kernel="matern32", n_starts=2).fit(draw([K], 2000, seed=1))
    assert float(prior.variance[0]) == pytest.approx(0.5, rel=0.1)
    assert float(prior.length_scale[0]) == pytest.approx(4.0, rel=0.1)
    assert float(prior.diagonal[0, 0]) == pytest.approx(0.01, rel=0.1)


@pytest.mark.parametrize(
    ("kernel", "nu"), [("matern12", 0.5), ("matern32", 1.5), ("matern52", 2.5)]
)
def test_matern_kernels_match_the_bessel_form_and_are_positive_definite(kernel, nu):
    d = distances(48)
    for length_scale in (0.5, 3.0, 20.0):
        k = stationary_correlation(d, length_scale, kernel)
        np.testing.assert_allclose(k, matern(d, length_scale, nu), rtol=1e-10, atol=1e-14)
        assert np.linalg.eigvalsh(k).min() > 0
    windows = torch.randn(
        50, 48, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    prior = GaussianProcessPrior(kernel, variance=0.3, length_scale=5.0, noise_variance=0.0)
    prior.fit(windows)
    K = prior.covariance()
    assert float(torch.linalg.eigvalsh(K).min()) > 0
    torch.testing.assert_close(prior.cholesky @ prior.cholesky.mT, K)
    np.testing.assert_allclose(K[0].numpy(), 0.3 * matern(d, 5.0, nu), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("kernel", ["rbf", "matern12", "matern32", "matern52"])
def test_likelihood_gradient_matches_finite_differences(kernel):
    rng = np.random.default_rng(3)
    columns = rng.multivariate_normal(np.zeros(LENGTH), kernel_matrix(0.5, 4.0, 0.01), size=50)
    scatter = columns.T @ columns / 50
    theta = np.log([0.3, 2.5, 0.05])

    def value(t):
        return _negative_log_likelihood(t, scatter, kernel)[0]

    gradient = _negative_log_likelihood(theta, scatter, kernel)[1]
    numeric = optimize.approx_fprime(theta, value, 1e-7)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-6)


def test_given_parameters_are_held_fixed(gp_data):
    prior = GaussianProcessPrior(length_scale=[3.0, 2.0], n_starts=1).fit(gp_data)
    assert prior.length_scale.tolist() == [3.0, 2.0]
    assert float(prior.variance[1]) == pytest.approx(0.2, rel=0.1)  # its true length scale
    fixed = GaussianProcessPrior(variance=0.4, length_scale=5.0, noise_variance=0.02)
    fixed.fit(gp_data)
    expected = kernel_matrix(0.4, 5.0, 0.02)
    for f in range(2):
        np.testing.assert_allclose(fixed.covariance()[f].numpy(), expected, rtol=1e-12)


def lag1_correlation(K: np.ndarray) -> float:
    sd = np.sqrt(np.diag(K))
    return float(np.mean(np.diag(K, 1) / (sd[:-1] * sd[1:])))


def test_reference_mode_reproduces_its_kernel_and_is_nearly_white():
    # Smooth data with standard deviation ~0.5 (lag-1 correlation ~0.97).
    data = draw([kernel_matrix(0.25, 4.0, 1e-4)] * 2, n=1000, seed=2)
    reference = GaussianProcessPrior(mode="reference", variance=0.5).fit(data)
    x = data.numpy()
    s = x.std(ddof=1)  # the global standard deviation, used as a length scale in steps
    assert 0.4 < s < 0.6
    for f in range(2):
        sd = x[..., f].std(axis=0, ddof=1)
        expected = 0.5 * rbf(distances(), s) + np.diag(sd)  # a std on the diagonal
        np.testing.assert_allclose(
            reference.covariance()[f].numpy(), expected, rtol=1e-10, atol=1e-15
        )
        np.testing.assert_allclose(reference.mean[:, f].numpy(), x[..., f].mean(axis=0))
        chol = reference.cholesky[f].numpy()
        np.testing.assert_allclose(chol @ chol.T, expected, rtol=1e-10, atol=1e-12)
    # The defect: the data are strongly correlated in time, the reference kernel hardly at all;
    # the fitted kernel matches the data.
    data_lag1 = lag1_correlation(np.cov(x[..., 0], rowvar=False))
    fitted = GaussianProcessPrior(n_starts=1).fit(data)
    assert data_lag1 > 0.9
    assert lag1_correlation(reference.covariance()[0].numpy()) < 0.1
    assert lag1_correlation(fitted.covariance()[0].numpy()) == pytest.approx(data_lag1, abs=0.02)
    assert bool((fitted.log_likelihood > reference.log_likelihood).all())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"variance": -0.5}, ValueError, r"variance must be finite and positive; got -0.5"),
        ({"length_scale": 0.0}, ValueError, "length_scale must be finite and positive"),
        ({"noise_variance": -1e-3}, ValueError, "noise_variance must be finite and non-negative"),
        ({"variance": [0.5, math.nan]}, ValueError, "variance must be finite and positive"),
        ({"variance": "big"}, TypeError, "variance must be a float, a sequence"),
        ({"kernel": "cosine"}, ValueError, "kernel must be one of"),
        ({"mode": "paper"}, ValueError, "mode must be 'fit' or 'reference'"),
        ({"n_starts": 0}, ValueError, "n_starts must be a positive integer"),
        ({"mode": "reference"}, ValueError, "mode='reference' needs variance as one positive"),
        (
            {"mode": "reference", "variance": 0.5, "kernel": "matern32"},
            ValueError,
            "uses the reference's RBF kernel",
        ),
        (
            {"mode": "reference", "variance": 0.5, "length_scale": 2.0},
            ValueError,
            "derives the length scale",
        ),
    ],
)
def test_bad_hyperparameters_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        GaussianProcessPrior(**kwargs)


def test_fit_errors():
    windows = torch.randn(20, LENGTH, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"variance must be one float or one per feature \(2\)"):
        GaussianProcessPrior(variance=[0.1, 0.2, 0.3]).fit(windows)
    constant = windows.clone()
    constant[..., 1] = 0.3
    with pytest.raises(ValueError, match="feature 1 is constant in the training windows"):
        GaussianProcessPrior().fit(constant)
    with pytest.raises(ValueError, match="not positive definite"):
        GaussianProcessPrior(variance=1.0, length_scale=50.0, noise_variance=0.0).fit(windows)


def test_zero_noise_with_fitted_parameters_is_refused():
    windows = torch.randn(50, 12, 1, dtype=torch.float64)
    with pytest.raises(ValueError, match="noise_variance=0 with fitted parameters"):
        GaussianProcessPrior(noise_variance=0.0).fit(windows)


def test_a_constant_feature_is_accepted_with_a_fixed_kernel():
    windows = torch.randn(50, 12, 2, dtype=torch.float64)
    windows[..., 1] = 0.25
    prior = GaussianProcessPrior(variance=0.5, length_scale=3.0, noise_variance=0.01).fit(windows)
    assert torch.isfinite(prior.cholesky).all()


def test_a_fit_that_ends_on_a_bound_is_reported(caplog):
    # A constant level per window: perfectly correlated in time, so the likelihood keeps
    # growing with the length scale until its upper bound (100 L steps).
    generator = torch.Generator().manual_seed(0)
    levels = torch.randn(400, 1, 1, dtype=torch.float64, generator=generator)
    jitter = 1e-3 * torch.randn(400, 12, 1, dtype=torch.float64, generator=generator)
    with caplog.at_level("WARNING", logger="tsgen.priors.gp"):
        prior = GaussianProcessPrior(noise_variance=1e-6).fit(levels + jitter)
    assert float(prior.length_scale[0]) == pytest.approx(1200.0)
    assert "length_scale ended at its bound" in caplog.text


def nonstationary_covariance() -> np.ndarray:
    """A covariance whose variance grows along the window (0.01 to 0.5), as in Sines."""
    sd = np.sqrt(np.linspace(0.01, 0.5, LENGTH))
    return np.outer(sd, sd) * rbf(distances(), 6.0) + 1e-3 * np.eye(LENGTH)


def test_empirical_kernel_is_the_maximum_likelihood_gaussian():
    K_true = nonstationary_covariance()
    ramp = np.linspace(-0.5, 0.5, LENGTH)[:, None]
    data = draw([K_true, kernel_matrix(*TRUE[0])], n=3000, seed=4) + torch.from_numpy(ramp)
    prior = GaussianProcessPrior(kernel="empirical").fit(data)
    assert prior.mean_kind == "per_step"
    assert prior.length_scale.numel() == 0
    x = data.numpy()
    for f in range(2):
        columns = x[..., f]
        np.testing.assert_allclose(prior.mean[:, f].numpy(), columns.mean(axis=0), rtol=1e-12)
        scatter = np.cov(columns, rowvar=False, ddof=0)
        np.testing.assert_allclose(prior.covariance()[f].numpy(), scatter, rtol=1e-9, atol=1e-15)
        assert float(prior.variance[f]) == pytest.approx(np.trace(scatter) / LENGTH, rel=1e-12)
        ll = stats.multivariate_normal(columns.mean(axis=0), scatter).logpdf(columns).sum()
        assert float(prior.log_likelihood[f]) == pytest.approx(ll, rel=1e-10)
    # The sample covariance is close to the truth, and no stationary kernel gets as close to the
    # data's likelihood as the unconstrained Gaussian does.
    sd = np.sqrt((np.outer(np.diag(K_true), np.diag(K_true)) + K_true**2) / len(x))
    assert np.all(np.abs(prior.covariance()[0].numpy() - K_true) < 5 * sd)
    stationary = GaussianProcessPrior(mean="per_step", n_starts=1).fit(data)
    assert bool((prior.log_likelihood >= stationary.log_likelihood).all())
    assert float(prior.log_likelihood[0]) > float(stationary.log_likelihood[0]) + 1000


def test_empirical_kernel_samples_follow_it():
    data = draw([nonstationary_covariance()], n=500, seed=5)
    prior = GaussianProcessPrior(kernel="empirical", noise_variance=0.02).fit(data)
    K = np.cov(data[..., 0].numpy(), rowvar=False, ddof=0) + 0.02 * np.eye(LENGTH)
    np.testing.assert_allclose(prior.covariance()[0].numpy(), K, rtol=1e-9, atol=1e-15)
    assert bool((prior.diagonal == 0.02).all())
    n = 20_000
    samples = prior.sample(n, GaussianNoise(torch.Generator().manual_seed(1))).numpy()[..., 0]
    sd = np.sqrt((np.outer(np.diag(K), np.diag(K)) + K**2) / n)
    assert np.all(np.abs(np.cov(samples, rowvar=False) - K) < 5 * sd)
    restored = GaussianProcessPrior(kernel="empirical").double()
    restored.load_state_dict(prior.state_dict())
    torch.testing.assert_close(restored.covariance(), prior.covariance())


def test_empirical_kernel_errors():
    with pytest.raises(ValueError, match="kernel='empirical' takes its covariance from the data"):
        GaussianProcessPrior(kernel="empirical", length_scale=3.0)
    with pytest.raises(ValueError, match="uses the reference's RBF kernel"):
        GaussianProcessPrior(kernel="empirical", mode="reference", variance=0.5)
    generator = torch.Generator().manual_seed(0)
    few = torch.randn(LENGTH - 4, LENGTH, 1, dtype=torch.float64, generator=generator)
    with pytest.raises(
        ValueError, match=r"scatter of 20 windows of length 24 is singular \(the windows span fewer"
    ):
        GaussianProcessPrior(kernel="empirical").fit(few)
    prior = GaussianProcessPrior(kernel="empirical", noise_variance=1e-3).fit(few)
    assert torch.isfinite(prior.cholesky).all()
    # The kernel is not in the state: a stationary prior refuses an empirical one's.
    stationary = GaussianProcessPrior().double()
    stationary.load_state_dict(prior.state_dict())
    with pytest.raises(ValueError, match=r"kernel='rbf'\) holds a state without one length scale"):
        stationary.covariance()


def test_reference_mode_on_constant_windows_names_the_cause():
    """Its length scale is the data's standard deviation: 0 for constant windows. The error
    says so, rather than advising settings that mode='reference' refuses."""
    with pytest.raises(ValueError, match=r"mode='reference'\) needs training windows that are"):
        GaussianProcessPrior(mode="reference", variance=0.5).fit(torch.zeros(10, 24, 2))
