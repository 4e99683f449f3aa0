"""Exact Gaussian transitions: ``x_{k+1} = mean(t_k, t_{k+1}, x_k) + std(t_k, t_{k+1}) z_k``.

For processes with closed-form transitions (:class:`~tsgen.sde.base.GaussianTransitions`: the
linear SDEs and their bridges). ``z_k = dW_k / sqrt(dt_k)``, so the noise sources apply as for
the other solvers. Exact in distribution for any step size; no drift is evaluated.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from tsgen.sde.base import SDE, GaussianTransitions
from tsgen.sde.solvers.base import FixedStepSolver

__all__ = ["Exact"]


class Exact(FixedStepSolver):
    """Samples each transition exactly; forward (increasing) grids only."""

    name: ClassVar[str] = "exact"
    directions: ClassVar[tuple[int, ...]] = (1,)
    noise_types: ClassVar[frozenset[str]] = frozenset({"additive"})

    def check(self, sde: SDE, x0: Tensor, grid: Tensor, times: Tensor, direction: int) -> None:
        if not isinstance(sde, GaussianTransitions):
            raise ValueError(
                f"method 'exact' needs a process with closed-form Gaussian transitions "
                f"(a LinearSDE or LinearBridge); got {type(sde).__name__}"
            )
        super().check(sde, x0, grid, times, direction)

    def prepare(self, sde: SDE, grid: Tensor) -> None:
        super().prepare(sde, grid)
        self.inv_sqrt_steps = list(torch.rsqrt(grid.diff()).unbind())

    def step(self, sde: SDE, k: int, x: Tensor, dW: Tensor | None, last: bool) -> Tensor:
        mean, std = sde.transition(self.times[k], self.times[k + 1], x)
        return mean + std * (dW * self.inv_sqrt_steps[k])
