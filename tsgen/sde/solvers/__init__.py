"""Solvers and the single entry point :func:`solve`.

One module per method; each solver declares its capabilities and checks its inputs once:

| method | module | notes |
|---|---|---|
| ``euler`` | :mod:`.euler` | Euler-Maruyama, any noise, either time direction |
| ``heun`` | :mod:`.heun` | predictor-corrector; additive noise/ODEs; ``churn`` sampler |
| ``ode_heun`` | :mod:`.heun` | Heun on an ODE or an SDE's probability-flow ODE |
| ``exact`` | :mod:`.exact` | exact Gaussian transitions of linear processes and bridges |
| ``bridge_ancestral`` | :mod:`.ancestral` | posterior steps of a reverse bridge, one call each |
| ``torchsde:<m>`` | :mod:`.torchsde_backend` | ``euler``, ``milstein``, ``srk``; adjoint |
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import Tensor

from tsgen.sde.base import SDE
from tsgen.sde.grids import validate_grid
from tsgen.sde.noise import NoiseSource
from tsgen.sde.solvers.ancestral import BridgeAncestral
from tsgen.sde.solvers.base import (
    Callback,
    FixedStepSolver,
    Problem,
    Solver,
    SolverOutput,
)
from tsgen.sde.solvers.bridge import bridge_sample
from tsgen.sde.solvers.euler import Euler
from tsgen.sde.solvers.exact import Exact
from tsgen.sde.solvers.heun import Heun, ODEHeun
from tsgen.sde.solvers.torchsde_backend import TorchsdeSolver

__all__ = [
    "SOLVERS",
    "BridgeAncestral",
    "Callback",
    "Euler",
    "Exact",
    "FixedStepSolver",
    "Heun",
    "ODEHeun",
    "Problem",
    "Solver",
    "SolverOutput",
    "TorchsdeSolver",
    "bridge_sample",
    "make_solver",
    "solve",
]

SOLVERS: dict[str, type[Solver]] = {
    cls.name: cls for cls in (Euler, Heun, ODEHeun, Exact, BridgeAncestral)
}


def make_solver(method: str, **options: Any) -> Solver:
    """The solver for ``method`` (a name of :data:`SOLVERS` or ``torchsde:<name>``) with its
    options (e.g. ``churn`` for ``heun``, ``adjoint`` for torchsde)."""
    if not isinstance(method, str):
        raise TypeError(f"method must be a string; got {type(method).__name__}")
    if method.startswith("torchsde:"):
        return TorchsdeSolver(method.split(":", 1)[1], **options)
    if method not in SOLVERS:
        raise ValueError(
            f"unknown method '{method}'; choose one of {sorted(SOLVERS)} or 'torchsde:<method>'"
        )
    accepted = inspect.signature(SOLVERS[method]).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(
            f"method '{method}' got unexpected options {unknown}; it takes {sorted(accepted)}"
        )
    return SOLVERS[method](**options)


def solve(
    sde: SDE,
    x0: Tensor,
    grid: Tensor,
    method: str = "euler",
    *,
    noise: NoiseSource | None = None,
    return_path: bool = False,
    callback: Callback | None = None,
    progress: bool = False,
    checkpoint_every: int | None = None,
    **options: Any,
) -> SolverOutput:
    """Integrate ``sde`` from ``x0`` at ``grid[0]`` over every point of ``grid``.

    Args:
        sde: the SDE (or ODE) to integrate.
        x0: initial states, ``(B, *event)``.
        grid: times, ``(n_points,)``, strictly increasing or strictly decreasing (reverse-time
            dynamics); moved to ``x0``'s device and dtype. States are returned exactly at them.
        method: see :data:`SOLVERS`, or ``torchsde:<name>``.
        noise: a :class:`~tsgen.sde.NoiseSource` (default: :class:`~tsgen.sde.GaussianNoise`
            from the global generator).
        return_path: also return the states at every grid time.
        callback: ``callback(k, t_k, x_k)`` after each step; a returned tensor replaces ``x_k``.
        progress: show a progress bar.
        checkpoint_every: recompute blocks of this many steps in the backward pass (activation
            checkpointing) instead of storing every step's activations.
        **options: options of the method's solver.

    Returns:
        A :class:`SolverOutput` with the final state, the optional path and the number of
        drift evaluations.
    """
    solver = make_solver(method, **options)
    if not isinstance(x0, Tensor):
        raise TypeError(f"x0 must be a torch.Tensor of shape (batch, ...); got {type(x0).__name__}")
    if not isinstance(grid, Tensor):
        raise TypeError(f"grid must be a torch.Tensor of times; got {type(grid).__name__}")
    # Validated after the cast: distinct float64 times can coincide in float32 or bfloat16.
    grid = grid.to(dtype=x0.dtype, device=x0.device) if x0.is_floating_point() else grid
    # One host copy serves the validation and the SDE's checks of its time domain.
    times = grid.detach().cpu()
    direction = validate_grid(times)
    if checkpoint_every is not None:
        if not isinstance(checkpoint_every, int) or checkpoint_every < 1:
            raise ValueError(
                f"checkpoint_every must be a positive integer; got {checkpoint_every!r}"
            )
        if callback is not None:
            raise ValueError("checkpoint_every cannot be combined with a callback")
    solver.check(sde, x0, grid, times, direction)
    return solver.integrate(
        Problem(sde, x0, grid, noise, return_path, callback, progress, checkpoint_every)
    )
