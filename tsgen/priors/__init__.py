"""TimeBridge priors (timebridge.md, "Priors"): the distribution of ``x_T`` that the bridge joins
to the data. Each is an ``nn.Module`` with ``fit(windows)`` on training windows ``(N, L, C)`` and
``sample(n, noise, condition=None) -> (n, L, C)`` on the shared noise protocol, usable from a
LightningCLI config by class path (e.g. ``tsgen.priors.GaussianProcessPrior``).

Example::

    import torch
    from tsgen.priors import GaussianProcessPrior
    from tsgen.sde import PerSampleNoise

    prior = GaussianProcessPrior().fit(train_windows)  # (N, 24, 6) in [-1, 1]
    x_T = prior.sample(16, PerSampleNoise(range(16)))  # (16, 24, 6)
"""

from tsgen.priors.base import NotFittedError, Prior, PriorCondition
from tsgen.priors.gaussian import NormalPrior, PerStepPrior, UniformPrior
from tsgen.priors.gp import GaussianProcessPrior, gp_covariance, stationary_correlation
from tsgen.priors.interpolation import InterpolationPrior, interpolate_missing
from tsgen.priors.trend import TrendPrior

__all__ = [
    "GaussianProcessPrior",
    "InterpolationPrior",
    "NormalPrior",
    "NotFittedError",
    "PerStepPrior",
    "Prior",
    "PriorCondition",
    "TrendPrior",
    "UniformPrior",
    "gp_covariance",
    "interpolate_missing",
    "stationary_correlation",
]
