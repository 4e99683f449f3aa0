"""``torchsde:<method>``: torchsde's solvers (Milstein, SRK, adaptive steps, the adjoint) behind
the same interface as the native ones.

torchsde integrates flat ``(B, D)`` states forward in time, steps at multiples of ``dt`` and
interpolates linearly in between. The adapter flattens states with einops and picks a clock:

- Fixed-step methods (``euler``, ``milstein``) run in step-index time ``u``: on ``[k, k + 1]``
  the SDE ``dX = f dt + g dW`` over ``[t_k, t_{k+1}]`` is ``dX = f dt_k du + g sqrt|dt_k| dB_u``
  with ``dB = dW / sqrt|dt_k|`` of unit variance. One call with ``dt = 1`` hits every grid point
  exactly, whatever the grid's spacing or direction, and the increments of any noise source
  are those the native solvers use. (Both methods evaluate the coefficients at the start of
  each step only, so the per-step scalings are exact, Milstein's correction included.)
  The adjoint's backward pass evaluates step ``k`` at its end ``u = k + 1``, where such a clock
  answers step ``k + 1``'s ``dt``: on a non-uniform grid the adjoint makes one call per
  interval instead, each on ``u`` in ``[0, 1]`` with its own ``dt`` (sde.md, "Solvers").
- Adaptive steps and ``srk`` query the Brownian motion at arbitrary times: they run in
  ``s = +-t`` (a decreasing grid as ``dY = -f(-s, Y) ds + g dW``) on a Brownian interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import torch
import torchsde
from einops import rearrange
from torch import Tensor, nn
from torchsde import BaseBrownian

from tsgen.sde.base import SDE
from tsgen.sde.noise import BrownianIntervalNoise, GaussianNoise
from tsgen.sde.solvers.base import Problem, Solver, SolverOutput, check_drift_shape

__all__ = ["TorchsdeSolver"]

# Ito methods of torchsde and their strong orders for diagonal noise (sde.md "Solvers").
_ITO_METHODS = {"euler": 0.5, "milstein": 1.0, "srk": 1.5}


Clock = Callable[[Tensor], tuple[Tensor, Tensor, Tensor]]
"""``clock(u) -> (t, drift_scale, diffusion_scale)``: torchsde's time to tsgen's, with the factors
that turn ``f`` and ``g`` into the coefficients in torchsde's time."""


def _signed_clock(sign: int) -> Clock:
    """``s = sign * t``: ``dX = sign f ds + g dW``."""
    one = torch.ones(())
    return lambda s: (sign * s, sign * one.to(s), one.to(s))


def _interval_clock(grid: Tensor, k: int) -> Clock:
    """``u`` in ``[0, 1]`` across ``[grid[k], grid[k + 1]]``: ``dX = f dt_k du + g sqrt|dt_k| dB_u``
    with step ``k``'s ``dt`` at both ends."""
    start, step = grid[k], grid[k + 1] - grid[k]
    sqrt_step = step.abs().sqrt()
    return lambda u: (start + u * step, step, sqrt_step)


def _step_clock(grid: Tensor) -> Clock:
    """``u = k`` at ``grid[k]``: on step ``k``, ``dX = f dt_k du + g sqrt|dt_k| dB_u``."""
    steps = grid.diff()
    sqrt_steps = steps.abs().sqrt()
    last = steps.shape[0] - 1

    def clock(u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # Coefficients are evaluated at step starts u = k (exact integers in floating point).
        k = u.floor().long().clamp(0, last)
        return grid[k], steps[k], sqrt_steps[k]

    return clock


class _FlatSDE(nn.Module):
    """A tsgen SDE seen by torchsde: flat ``(B, D)`` states on a chosen clock; counts drifts."""

    sde_type = "ito"
    noise_type = "diagonal"

    def __init__(self, sde: SDE, event_shape: torch.Size, clock: Clock) -> None:
        super().__init__()
        self.sde = sde
        self.event_shape = event_shape
        self.clock = clock
        self.nfe = 0

    def _state(self, y: Tensor) -> Tensor:
        # reshape, not unflatten: the event shape may be empty (states of shape (B,)).
        return y.reshape(y.shape[0], *self.event_shape)

    def f(self, u: Tensor, y: Tensor) -> Tensor:
        self.nfe += 1
        x = self._state(y)
        t, drift_scale, _ = self.clock(u)
        drift = self.sde.drift(t, x)
        if self.nfe == 1:
            check_drift_shape(self.sde, drift, x)
        return rearrange(drift, "b ... -> b (...)") * drift_scale

    def g(self, u: Tensor, y: Tensor) -> Tensor:
        x = self._state(y)
        t, _, diffusion_scale = self.clock(u)
        diffusion = self.sde.diffusion(t, x).expand(x.shape)
        return rearrange(diffusion, "b ... -> b (...)") * diffusion_scale


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

    def integrate(self, problem: Problem) -> SolverOutput:
        if problem.callback is not None or problem.progress or problem.checkpoint_every:
            raise ValueError(
                "torchsde methods do not take callback, progress or checkpoint_every; "
                "use a native method (euler, heun) for those"
            )
        sde, x0, grid, noise = problem.sde, problem.x0, problem.grid, problem.noise
        kwargs = {"method": self.method, "adaptive": self.adaptive}
        if self.adaptive:
            kwargs.update(rtol=self.rtol, atol=self.atol, dt_min=self.dt_min)
        if self.adjoint:
            kwargs.update(adjoint_method=self.adjoint_method)
        if self.adaptive or self.method == "srk":
            if noise is None:
                noise = BrownianIntervalNoise()
            if not isinstance(noise, BrownianIntervalNoise):
                raise ValueError(
                    f"torchsde:{self.method}{' (adaptive)' if self.adaptive else ''} queries the "
                    "Brownian motion between grid times (and srk needs Levy areas): pass "
                    f"noise=tsgen.sde.BrownianIntervalNoise(...), not {type(noise).__name__}"
                )
            sign = 1 if bool(grid[-1] > grid[0]) else -1
            ts = sign * grid
            interval = noise.brownian_for(
                float(ts[0]), float(ts[-1]), tuple(x0.shape), x0.dtype, x0.device
            )
            flat = _FlatSDE(sde, x0.shape[1:], _signed_clock(sign))
            kwargs.update(bm=_FlatBrownian(interval), dt=float(ts[1] - ts[0]))
        else:
            source = noise if noise is not None else GaussianNoise()
            increments = source.increments(grid, x0.shape, x0.dtype, x0.device)
            block = torch.stack([increments[k] for k in range(len(increments))])
            steps = grid.diff()
            unit = block / rearrange(steps.abs().sqrt(), "n -> n" + " 1" * x0.ndim)
            unit = rearrange(unit, "n b ... -> n b (...)")
            if self.adjoint and bool((steps - steps[0]).abs().max() > 1e-9 * steps[0].abs()):
                return self._adjoint_per_interval(problem, unit, kwargs)
            ts = torch.arange(grid.shape[0], dtype=x0.dtype, device=x0.device)
            flat = _FlatSDE(sde, x0.shape[1:], _step_clock(grid))
            kwargs.update(bm=_GridBrownian(ts, unit), dt=1.0)
        integrate = torchsde.sdeint_adjoint if self.adjoint else torchsde.sdeint
        ys = integrate(flat, rearrange(x0, "b ... -> b (...)"), ts, **kwargs)
        ys = ys.reshape(ys.shape[0], *x0.shape)
        # torchsde evaluates the drift once more to check shapes before integrating.
        return SolverOutput(
            x=ys[-1], path=ys if problem.return_path else None, nfe=flat.nfe - 1, grid=grid
        )

    def _adjoint_per_interval(
        self, problem: Problem, unit: Tensor, kwargs: dict[str, object]
    ) -> SolverOutput:
        """The adjoint on a non-uniform grid: one ``sdeint_adjoint`` call per interval, each on
        ``u`` in ``[0, 1]`` with :func:`_interval_clock` (see the module docstring). ``unit``:
        ``(n_steps, B, D)`` unit-variance increments."""
        x0, grid = problem.x0, problem.grid
        ts = torch.tensor([0.0, 1.0], dtype=x0.dtype, device=x0.device)
        y = rearrange(x0, "b ... -> b (...)")
        states, nfe = [y], 0
        for k in range(grid.shape[0] - 1):
            flat = _FlatSDE(problem.sde, x0.shape[1:], _interval_clock(grid, k))
            bm = _GridBrownian(ts, unit[k : k + 1])
            y = torchsde.sdeint_adjoint(flat, y, ts, bm=bm, dt=1.0, **kwargs)[-1]
            states.append(y)
            # torchsde evaluates the drift once more per call to check shapes.
            nfe += flat.nfe - 1
        ys = torch.stack(states).reshape(len(states), *x0.shape)
        return SolverOutput(x=ys[-1], path=ys if problem.return_path else None, nfe=nfe, grid=grid)
