"""``torchsde:<method>``: torchsde's solvers (Milstein, SRK, adaptive steps, the adjoint) behind
the same interface as the native ones.

torchsde integrates flat ``(B, D)`` states forward in time, steps at multiples of ``dt`` and
interpolates linearly in between. The adapter therefore flattens states with einops, integrates a
decreasing grid in ``s = -t`` (``dY = -f(-s, Y) ds + g dW``), and on a non-uniform grid makes one
call per interval with ``dt`` the interval, so that every grid point is hit exactly.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torchsde
from einops import rearrange
from torch import Tensor, nn
from torchsde import BaseBrownian

from tsgen.sde.base import SDE
from tsgen.sde.grids import validate_grid
from tsgen.sde.noise import BrownianIntervalNoise, GaussianNoise, NoiseSource
from tsgen.sde.solvers.base import Problem, Solver, SolverOutput, check_drift_shape

__all__ = ["TorchsdeSolver"]

# Ito methods of torchsde and their strong orders for diagonal noise (sde.md "Solvers").
_ITO_METHODS = {"euler": 0.5, "milstein": 1.0, "srk": 1.5}


class _FlatSDE(nn.Module):
    """A tsgen SDE seen by torchsde: flat ``(B, D)`` states, time ``s = sign * t``."""

    sde_type = "ito"
    noise_type = "diagonal"

    def __init__(self, sde: SDE, event_shape: torch.Size, sign: int) -> None:
        super().__init__()
        self.sde = sde
        self.event_shape = event_shape
        self.sign = sign
        self.nfe = 0

    def _state(self, y: Tensor) -> Tensor:
        return y.reshape(y.shape[0], *self.event_shape)

    def f(self, s: Tensor, y: Tensor) -> Tensor:
        self.nfe += 1
        x = self._state(y)
        drift = self.sde.drift(self.sign * s, x)
        if self.nfe == 1:
            check_drift_shape(self.sde, drift, x)
        return self.sign * rearrange(drift, "b ... -> b (...)")

    def g(self, s: Tensor, y: Tensor) -> Tensor:
        x = self._state(y)
        return rearrange(self.sde.diffusion(self.sign * s, x).expand(x.shape), "b ... -> b (...)")


class _BrownianView(BaseBrownian):
    """Common metadata of the Brownian motions handed to torchsde: flat ``(B, D)`` increments."""

    def __init__(self, dtype: torch.dtype, device: torch.device, shape: torch.Size, levy: str):
        super().__init__()
        self._meta = (dtype, device, shape, levy)

    @property
    def dtype(self) -> torch.dtype:
        return self._meta[0]

    @property
    def device(self) -> torch.device:
        return self._meta[1]

    @property
    def shape(self) -> torch.Size:
        return self._meta[2]

    @property
    def levy_area_approximation(self) -> str:
        return self._meta[3]


class _GridBrownian(_BrownianView):
    """Brownian motion known through its increments on a grid; answers queries between grid
    times (fixed-step torchsde methods with ``dt`` the grid's spacing ask nothing else)."""

    def __init__(self, times: Tensor, increments: Tensor) -> None:
        super().__init__(increments.dtype, increments.device, increments.shape[1:], "none")
        self.times = times.detach().cpu().double()
        # W at every grid time, flattened per sample: (n_points, B, D).
        zero = torch.zeros_like(increments[:1])
        self.values = torch.cat([zero, increments.cumsum(dim=0)])
        self.tol = 1e-6 * float(self.times.diff().abs().min())

    def _index(self, t: Tensor | float) -> int:
        t = float(t)
        k = int(torch.searchsorted(self.times, torch.tensor([t], dtype=torch.float64)).item())
        candidates = [i for i in (k - 1, k) if 0 <= i < self.times.shape[0]]
        best = min(candidates, key=lambda i: abs(float(self.times[i]) - t))
        if abs(float(self.times[best]) - t) > self.tol:
            raise ValueError(
                f"torchsde asked for the Brownian motion at t = {t}, between grid times; "
                "explicit, per-sample or default increments only cover the grid: use "
                "tsgen.sde.BrownianIntervalNoise for adaptive steps and methods that query "
                "other times"
            )
        return best

    def __call__(self, ta, tb=None, return_U=False, return_A=False):
        if return_U or return_A:
            raise ValueError("Levy areas need tsgen.sde.BrownianIntervalNoise")
        if tb is None:
            return self.values[self._index(ta)]
        return self.values[self._index(tb)] - self.values[self._index(ta)]

    def __repr__(self) -> str:
        return f"_GridBrownian(n_points={self.times.shape[0]})"


class _FlatBrownian(_BrownianView):
    """A Brownian interval over states ``(B, *event)`` seen by torchsde as ``(B, D)``."""

    def __init__(self, interval: torchsde.BrownianInterval) -> None:
        shape = interval.shape
        flat = torch.Size((shape[0], math.prod(shape[1:])))
        super().__init__(interval.dtype, interval.device, flat, interval.levy_area_approximation)
        self.interval = interval

    def __call__(self, ta, tb=None, return_U=False, return_A=False):
        out = self.interval(ta, tb, return_U=return_U, return_A=return_A)
        if isinstance(out, tuple):
            return tuple(rearrange(o, "b ... -> b (...)") for o in out)
        return rearrange(out, "b ... -> b (...)")

    def __repr__(self) -> str:
        return f"_FlatBrownian({self.interval!r})"


class TorchsdeSolver(Solver):
    """torchsde's Ito solvers as ``method="torchsde:<name>"`` (``euler``, ``milstein``, ``srk``).

    Args:
        method: the torchsde method name.
        adjoint: compute gradients with ``torchsde.sdeint_adjoint`` (memory constant in the
            number of steps) instead of backpropagating through the solver.
        adjoint_method: the method of the adjoint pass (default: the forward method).
        adaptive: adaptive step sizes (needs :class:`~tsgen.sde.BrownianIntervalNoise`); the
            grid's first step is the initial step size.
        rtol, atol, dt_min: torchsde's adaptive-stepping tolerances.
    """

    name: ClassVar[str] = "torchsde"

    def __init__(
        self,
        method: str,
        adjoint: bool = False,
        adjoint_method: str | None = None,
        adaptive: bool = False,
        rtol: float = 1e-5,
        atol: float = 1e-4,
        dt_min: float = 1e-5,
    ) -> None:
        if method not in _ITO_METHODS:
            raise ValueError(
                f"torchsde method must be one of {sorted(_ITO_METHODS)} (Ito); got '{method}'"
            )
        self.method = method
        self.strong_order = _ITO_METHODS[method]
        self.adjoint = bool(adjoint)
        self.adjoint_method = adjoint_method or method
        self.adaptive = bool(adaptive)
        self.rtol, self.atol, self.dt_min = rtol, atol, dt_min

    def _brownian(
        self, noise: NoiseSource | None, grid: Tensor, s_grid: Tensor, x0: Tensor
    ) -> BaseBrownian:
        needs_interval = self.adaptive or self.method == "srk"
        if noise is None:
            noise = BrownianIntervalNoise() if needs_interval else GaussianNoise()
        if isinstance(noise, BrownianIntervalNoise):
            lo, hi = float(s_grid[0]), float(s_grid[-1])
            return _FlatBrownian(noise.brownian_for(lo, hi, tuple(x0.shape), x0.dtype, x0.device))
        if needs_interval:
            raise ValueError(
                f"torchsde:{self.method}{' (adaptive)' if self.adaptive else ''} queries the "
                "Brownian motion between grid times (and srk needs Levy areas): pass "
                f"noise=tsgen.sde.BrownianIntervalNoise(...), not {type(noise).__name__}"
            )
        increments = noise.increments(grid, x0.shape, x0.dtype, x0.device)
        block = torch.stack([increments[k] for k in range(len(increments))])
        return _GridBrownian(s_grid, rearrange(block, "n b ... -> n b (...)"))

    def integrate(self, problem: Problem) -> SolverOutput:
        if problem.callback is not None or problem.progress or problem.checkpoint_every:
            raise ValueError(
                "torchsde methods do not take callback, progress or checkpoint_every; "
                "use a native method (euler, heun) for those"
            )
        sde, x0, grid = problem.sde, problem.x0, problem.grid
        sign = validate_grid(grid)
        s_grid = sign * grid
        flat = _FlatSDE(sde, x0.shape[1:], sign)
        bm = self._brownian(problem.noise, grid, s_grid, x0)
        y0 = rearrange(x0, "b ... -> b (...)")
        kwargs = {"method": self.method, "adaptive": self.adaptive, "bm": bm}
        if self.adaptive:
            kwargs.update(rtol=self.rtol, atol=self.atol, dt_min=self.dt_min)
        if self.adjoint:
            kwargs.update(adjoint_method=self.adjoint_method)
        integrate = torchsde.sdeint_adjoint if self.adjoint else torchsde.sdeint
        steps = s_grid.diff()
        if self.adaptive or bool((steps - steps.mean()).abs().max() <= 1e-9 * steps.abs().max()):
            ys = integrate(flat, y0, s_grid, dt=float(steps[0]), **kwargs)
        else:
            # A step a hair longer than the interval is clipped to its end by torchsde, so each
            # call takes exactly one step and lands on the grid point.
            ys_list = [y0]
            for k in range(steps.shape[0]):
                interval = s_grid[k : k + 2]
                ys_list.append(
                    integrate(
                        flat, ys_list[-1], interval, dt=float(steps[k]) * (1 + 1e-9), **kwargs
                    )[-1]
                )
            ys = torch.stack(ys_list)
        ys = ys.reshape(ys.shape[0], *x0.shape)
        return SolverOutput(
            x=ys[-1], path=ys if problem.return_path else None, nfe=flat.nfe, grid=grid
        )
