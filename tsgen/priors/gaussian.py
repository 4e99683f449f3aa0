"""Priors without temporal correlation (timebridge.md, "Priors"): ``normal``, ``uniform`` and
``per_step`` ("data-dependent")."""

from __future__ import annotations

import torch
from torch import Tensor

from tsgen.priors.base import Prior, PriorCondition, normal_cdf

__all__ = ["NormalPrior", "PerStepPrior", "UniformPrior"]


class NormalPrior(Prior):
    """``N(0, I)`` on ``(L, C)``; with a VP bridge this is a standard diffusion model.

    :meth:`fit` only records ``L`` and ``C``.
    """

    def _fit(self, windows: Tensor) -> None:
        """Nothing to estimate."""

    def _sample(self, z: Tensor, condition: PriorCondition | None) -> Tensor:
        return z


class UniformPrior(Prior):
    """Independent ``U[-1, 1]`` entries, the range of model space.

    Drawn as ``2 Phi(z) - 1`` from the protocol's standard normals ``z`` (``Phi`` the normal
    CDF), so per-sample seeding holds as for every other prior. :meth:`fit` only records ``L``
    and ``C``.
    """

    def _fit(self, windows: Tensor) -> None:
        """Nothing to estimate."""

    def _sample(self, z: Tensor, condition: PriorCondition | None) -> Tensor:
        # Phi(z) ~ U(0, 1) for z ~ N(0, 1) (probability integral transform).
        return 2 * normal_cdf(z) - 1


class PerStepPrior(Prior):
    """ "Data-dependent" prior: independent ``N(mu_{l,f}, sigma^2_{l,f})`` per step and feature.

    ``mu`` and ``sigma`` are the training windows' mean and standard deviation over windows
    (unbiased, ``N - 1`` in the denominator, as the reference's per-step prior), at each time
    step ``l`` and feature ``f``.

    Buffers (after :meth:`fit`):
        mean: ``(L, C)``.
        std: ``(L, C)``.
    """

    min_windows = 2

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.empty(0, 0))
        self.register_buffer("std", torch.empty(0, 0))

    def _fit(self, windows: Tensor) -> None:
        self.mean = windows.mean(dim=0)
        self.std = windows.std(dim=0, correction=1)

    def _sample(self, z: Tensor, condition: PriorCondition | None) -> Tensor:
        return self.mean + self.std * z
