"""Normal, uniform and per-step priors: fitted statistics and the distribution of samples."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from tsgen.priors import NormalPrior, PerStepPrior, UniformPrior
from tsgen.sde import GaussianNoise


def noise(seed: int = 0) -> GaussianNoise:
    return GaussianNoise(torch.Generator().manual_seed(seed))


def test_normal_prior_is_standard_normal():
    prior = NormalPrior().fit(torch.zeros(3, 16, 2, dtype=torch.float64))
    x = prior.sample(4000, noise()).flatten().numpy()
    assert stats.kstest(x, "norm").pvalue > 1e-3


def test_uniform_prior_is_uniform_on_minus_one_one():
    prior = UniformPrior().fit(torch.zeros(3, 16, 2, dtype=torch.float64))
    x = prior.sample(4000, noise()).flatten().numpy()
    assert x.min() > -1 and x.max() < 1
    assert stats.kstest(x, stats.uniform(loc=-1, scale=2).cdf).pvalue > 1e-3


@pytest.fixture(scope="module")
def windows() -> torch.Tensor:
    # Step-dependent means and scales: mu_{l,f} = sin(l / 4 + f), sigma_{l,f} = 0.05 + 0.01 l.
    rng = np.random.default_rng(0)
    steps, features = np.arange(24)[:, None], np.arange(3)[None, :]
    mu, sigma = np.sin(steps / 4 + features), 0.05 + 0.01 * steps + 0 * features
    return torch.from_numpy(mu + sigma * rng.standard_normal((500, 24, 3)))


def test_per_step_statistics_are_the_training_statistics(windows):
    prior = PerStepPrior().fit(windows)
    data = windows.numpy()
    np.testing.assert_allclose(prior.mean.numpy(), data.mean(axis=0), rtol=0, atol=1e-13)
    np.testing.assert_allclose(prior.std.numpy(), data.std(axis=0, ddof=1), rtol=1e-12)


def test_per_step_samples_match_the_statistics(windows):
    prior = PerStepPrior().fit(windows)
    n = 20_000
    x = prior.sample(n, noise(1))
    # Five standard errors of the mean and of the standard deviation (normal data).
    mean_error = 5 * prior.std / math.sqrt(n)
    assert bool(((x.mean(dim=0) - prior.mean).abs() < mean_error).all())
    std_error = 5 * prior.std / math.sqrt(2 * (n - 1))
    assert bool(((x.std(dim=0) - prior.std).abs() < std_error).all())


def test_per_step_needs_two_windows():
    with pytest.raises(ValueError, match="windows must hold at least 2 windows; got 1"):
        PerStepPrior().fit(torch.zeros(1, 24, 3))
