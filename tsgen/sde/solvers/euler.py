"""Euler-Maruyama: ``x_{k+1} = x_k + f(t_k, x_k) dt_k + g(t_k, x_k) dW_k``."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from tsgen.sde.base import SDE
from tsgen.sde.solvers.base import FixedStepSolver

__all__ = ["Euler"]


class Euler(FixedStepSolver):
    """Euler-Maruyama (Ito). Strong order 0.5 (1.0 for additive noise), weak order 1.

    One drift evaluation per step; works on increasing and decreasing grids.
    """

    name: ClassVar[str] = "euler"
    strong_order: ClassVar[float | None] = 0.5
    weak_order: ClassVar[float | None] = 1.0

    def step(self, sde: SDE, k: int, x: Tensor, dW: Tensor | None, last: bool) -> Tensor:
        t, dt = self.times[k], self.steps[k]
        x_next = x + self.drift(sde, t, x) * dt
        if dW is not None:
            x_next = x_next + sde.diffusion(t, x) * dW
        return x_next
