"""Trend prior: the Butterworth trend recovers a slow component under fast noise, the polynomial
trend is exact on polynomials, the noise scale, and sampling from training or given trends."""

import math

import numpy as np
import pytest
import torch

from tsgen.priors import PriorCondition, TrendPrior
from tsgen.sde import GaussianNoise

LENGTH = 64


def slow_plus_fast(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows ``slow + fast`` of shape ``(n, L, 2)``: a random linear ramp plus a slow sinusoid
    (period 64 steps) and a fast sinusoid (period 2.5 steps, far above the cutoff)."""
    rng = np.random.default_rng(seed)
    t = np.arange(LENGTH)[None, :, None]
    slope, phase = rng.uniform(-0.01, 0.01, (n, 1, 2)), rng.uniform(0, 2 * np.pi, (n, 1, 2))
    slow = slope * (t - LENGTH / 2) + 0.4 * np.sin(2 * np.pi * t / 64 + phase)
    fast = 0.2 * np.sin(2 * np.pi * t / 2.5 + 3 * phase)
    return torch.from_numpy(slow + fast), torch.from_numpy(slow)


def test_butterworth_trend_recovers_the_slow_component():
    windows, slow = slow_plus_fast(32)
    # Cutoff 0.2 of Nyquist: the slow part (0.03) passes, the fast one (0.8) is removed.
    trend = TrendPrior(method="butterworth", order=4, cutoff=0.2).trend(windows)
    error = (trend - slow).abs()
    # Away from the edges (the zero-phase padding extrapolates there) the error is small.
    assert float(error[:, 8:-8].max()) < 0.02
    assert float(error.mean()) < 0.01
    assert float((windows - slow).abs().max()) > 0.19  # the fast part the filter removed


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_polynomial_trend_is_exact_on_polynomials(degree):
    rng = np.random.default_rng(degree)
    t = np.arange(LENGTH, dtype=np.float64)
    coefficients = rng.uniform(-1, 1, (5, 3, degree + 1)) / LENGTH ** np.arange(degree + 1)
    windows = torch.from_numpy(
        np.einsum("nck,lk->nlc", coefficients, t[:, None] ** np.arange(degree + 1))
    )
    trend = TrendPrior(method="polynomial", degree=degree).trend(windows)
    torch.testing.assert_close(trend, windows, rtol=0, atol=1e-12)


def test_polynomial_trend_is_the_least_squares_fit():
    windows, _ = slow_plus_fast(4)
    trend = TrendPrior(method="polynomial", degree=2).trend(windows).numpy()
    t = np.arange(LENGTH)
    for n in range(4):
        for c in range(2):
            expected = np.polyval(np.polyfit(t, windows[n, :, c].numpy(), 2), t)
            np.testing.assert_allclose(trend[n, :, c], expected, atol=1e-10)


def test_fitted_noise_scale_is_the_residual_rms():
    windows, _ = slow_plus_fast(64)
    prior = TrendPrior(method="polynomial", degree=1).fit(windows)
    residual = (windows - prior.trend(windows)).numpy()
    np.testing.assert_allclose(prior.noise_std.numpy(), np.sqrt((residual**2).mean(axis=(0, 1))))
    fixed = TrendPrior(noise_std=0.05).fit(windows)
    assert fixed.noise_std.tolist() == [0.05, 0.05]


def test_samples_are_training_trends_plus_noise():
    windows, _ = slow_plus_fast(16)
    prior = TrendPrior(noise_std=0.0).fit(windows)
    samples = prior.sample(400, GaussianNoise(torch.Generator().manual_seed(0)))
    # With no noise every sample is one of the training trends, and all of them get drawn.
    distance = (samples[:, None] - prior.trends[None]).abs().amax(dim=(2, 3))  # (400, 16)
    assert bool((distance.amin(dim=1) == 0).all())
    assert set(distance.argmin(dim=1).tolist()) == set(range(16))


def test_given_trends_are_used_with_the_noise_scale():
    windows, _ = slow_plus_fast(16)
    prior = TrendPrior(method="polynomial", degree=1, noise_std=0.1).fit(windows)
    n = 5000
    trends = torch.linspace(-0.5, 0.5, LENGTH, dtype=torch.float64)[None, :, None].expand(n, -1, 2)
    samples = prior.sample(
        n, GaussianNoise(torch.Generator().manual_seed(1)), PriorCondition(trends=trends)
    )
    residual = samples - trends
    assert float(residual.mean().abs()) < 5 * 0.1 / math.sqrt(residual.numel())
    assert float(residual.std()) == pytest.approx(0.1, rel=0.02)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "spline"}, r"method must be one of \('butterworth', 'polynomial'\)"),
        ({"order": 0}, "order must be a positive integer"),
        ({"cutoff": 1.0}, r"cutoff must lie in \(0, 1\)"),
        ({"cutoff": -0.1}, "cutoff must be finite and positive"),
        ({"degree": -1}, "degree must be an integer >= 0"),
        ({"noise_std": -0.1}, "noise_std must be finite and non-negative"),
    ],
)
def test_bad_hyperparameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrendPrior(**kwargs)


def test_windows_too_short_for_the_method():
    with pytest.raises(ValueError, match="degree must be below the window length 3"):
        TrendPrior(method="polynomial", degree=3).fit(torch.zeros(4, 3, 1))
    with pytest.raises(ValueError, match="window length 8 is too short for a zero-phase"):
        TrendPrior(order=4).fit(torch.zeros(4, 8, 1))


def test_non_finite_given_trends_are_refused():
    from tsgen.priors import PriorCondition

    trends = torch.zeros(2, 8, 1)
    trends[0, 3, 0] = float("nan")
    with pytest.raises(ValueError, match=r"PriorCondition\.trends must be finite"):
        PriorCondition(trends=trends)
