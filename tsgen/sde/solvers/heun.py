"""Heun's predictor-corrector, for ODEs, additive-noise SDEs and (with ``churn``) reverse-time
samplers that mix an SDE move with a probability-flow ODE step.

Plain step (stochastic Heun; for additive noise the trapezoidal rule on the drift):

    x_pred = x + f(t0, x) dt + g(t0) dW
    x_next = x + (f(t0, x) + f(t1, x_pred)) dt / 2 + (g(t0) + g(t1)) dW / 2

With ``churn = c`` in [0, 1] (the sampler of sde.md, "Solvers"): an Euler-Maruyama move of the
SDE over the first fraction ``c`` of the interval, with increment ``sqrt(c) dW`` (variance
``c |dt|``: right in distribution, though not the given path's increment over the sub-interval),
then a Heun step of the SDE's probability-flow ODE over the rest (``c`` may also be given per
interval); with
``final_euler`` the last interval's ODE step is a plain Euler step (the corrector would evaluate
the dynamics at the final time, where a bridge's variance vanishes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

from torch import Tensor

from tsgen.sde.base import NOISE_TYPES, ODE, SDE
from tsgen.sde.solvers.base import FixedStepSolver

__all__ = ["Heun", "ODEHeun"]


class Heun(FixedStepSolver):
    """Heun predictor-corrector. Without churn: strong order 1.0 for additive noise, order 2 for
    ODEs; refused for state-dependent noise, where it converges to the Stratonovich solution.

    Args:
        churn: ``None`` for the plain step; a fraction in [0, 1], or one per interval, for the
            churn sampler, which needs an SDE with a ``probability_flow()`` method.
        final_euler: take a plain Euler step on the last interval (no corrector).
    """

    name: ClassVar[str] = "heun"
    strong_order: ClassVar[float | None] = 1.0
    weak_order: ClassVar[float | None] = 1.0
    noise_types: ClassVar[frozenset[str]] = frozenset({"none", "additive"})

    def __init__(
        self, churn: float | Sequence[float] | None = None, final_euler: bool = False
    ) -> None:
        super().__init__()
        if churn is not None:
            values = (
                [float(churn)] if isinstance(churn, (int, float)) else [float(c) for c in churn]
            )
            if not values or not all(0.0 <= c <= 1.0 for c in values):
                raise ValueError(f"churn must be None or fractions in [0, 1]; got {churn}")
        self.churn = churn
        self.final_euler = bool(final_euler)

    def check(self, sde: SDE, x0: Tensor, grid: Tensor, times: Tensor, direction: int) -> None:
        n_steps = grid.shape[0] - 1
        if not isinstance(self.churn, (int, float, type(None))) and len(self.churn) != n_steps:
            raise ValueError(
                f"churn has {len(self.churn)} values but the grid has {n_steps} intervals"
            )
        if self.churn is not None and not callable(getattr(sde, "probability_flow", None)):
            raise ValueError(
                f"method '{self.name}' with churn needs an SDE with a probability_flow() method "
                f"(e.g. tsgen.sde.ReverseBridge); {type(sde).__name__} has none"
            )
        super().check(sde, x0, grid, times, direction)

    def drift_times(self, times: Tensor) -> Tensor:
        # The corrector of the last interval evaluates the drift at the final time, unless that
        # interval is a plain Euler step (final_euler) or a pure SDE move (churn 1).
        last_churn = self._fractions(times.shape[0] - 1)[-1] if self.churn is not None else 0.0
        if self.final_euler or last_churn == 1.0:
            return times[:-1]
        return times

    def accepted_noise_types(self) -> frozenset[str]:
        # With churn the noise enters through an Euler-Maruyama move, valid for any noise type.
        return self.noise_types if self.churn is None else frozenset(NOISE_TYPES)

    def uses_noise(self, sde: SDE) -> bool:
        if self.churn is None:
            return sde.noise_type != "none"
        return max(self._fractions(1)) > 0

    def _fractions(self, n_steps: int) -> list[float]:
        """The churn fraction of every interval."""
        if isinstance(self.churn, (int, float)):
            return [float(self.churn)] * n_steps
        return [float(c) for c in self.churn]

    def prepare(self, sde: SDE, grid: Tensor) -> None:
        super().prepare(sde, grid)
        if self.churn is None:
            return
        self.flow: ODE = sde.probability_flow()
        self.fractions = self._fractions(len(self.steps))
        pairs = list(zip(self.fractions, self.times[:-1], self.steps, strict=True))
        self.sde_steps = [c * dt for c, _, dt in pairs]
        self.ode_starts = [t + c * dt for c, t, dt in pairs]
        self.ode_steps = [(1 - c) * dt for c, _, dt in pairs]
        self.sqrt_fractions = [math.sqrt(c) for c in self.fractions]

    def step(self, sde: SDE, k: int, x: Tensor, dW: Tensor | None, last: bool) -> Tensor:
        corrector = not (last and self.final_euler)
        if self.churn is None:
            return self._heun(
                sde, self.times[k], self.times[k + 1], self.steps[k], x, dW, corrector
            )
        t, c = self.times[k], self.fractions[k]
        if c > 0:
            x = (
                x
                + self.drift(sde, t, x) * self.sde_steps[k]
                + sde.diffusion(t, x) * (self.sqrt_fractions[k] * dW)
            )
        if c < 1:
            x = self._heun(
                self.flow,
                self.ode_starts[k],
                self.times[k + 1],
                self.ode_steps[k],
                x,
                None,
                corrector,
            )
        return x

    def _heun(
        self,
        sde: SDE,
        t0: Tensor,
        t1: Tensor,
        dt: Tensor,
        x: Tensor,
        dW: Tensor | None,
        corrector: bool,
    ) -> Tensor:
        d0 = self.drift(sde, t0, x)
        g0 = sde.diffusion(t0, x) if dW is not None else None
        x_pred = x + d0 * dt if g0 is None else x + d0 * dt + g0 * dW
        if not corrector:
            return x_pred
        x_next = x + 0.5 * (d0 + self.drift(sde, t1, x_pred)) * dt
        if g0 is not None:
            x_next = x_next + 0.5 * (g0 + sde.diffusion(t1, x_pred)) * dW
        return x_next


class ODEHeun(Heun):
    """Heun's method (order 2) on an ODE, or on an SDE's probability-flow ODE: deterministic."""

    name: ClassVar[str] = "ode_heun"
    strong_order: ClassVar[float | None] = 2.0
    weak_order: ClassVar[float | None] = 2.0

    def __init__(self, final_euler: bool = False) -> None:
        super().__init__(churn=None, final_euler=final_euler)

    def check(self, sde: SDE, x0: Tensor, grid: Tensor, times: Tensor, direction: int) -> None:
        super().check(self._ode(sde), x0, grid, times, direction)

    def uses_noise(self, sde: SDE) -> bool:
        return False

    def step(self, sde: SDE, k: int, x: Tensor, dW: Tensor | None, last: bool) -> Tensor:
        corrector = not (last and self.final_euler)
        return self._heun(
            self.ode, self.times[k], self.times[k + 1], self.steps[k], x, None, corrector
        )

    def prepare(self, sde: SDE, grid: Tensor) -> None:
        super().prepare(sde, grid)
        self.ode = self._ode(sde)

    def _ode(self, sde: SDE) -> SDE:
        if sde.noise_type == "none":
            return sde
        flow = getattr(sde, "probability_flow", None)
        if not callable(flow):
            raise ValueError(
                f"method 'ode_heun' integrates an ODE or an SDE's probability-flow ODE; "
                f"{type(sde).__name__} has noise and no probability_flow() method"
            )
        return flow()
