"""What every solver shares: the output type, capability declarations, the one contract check
and the stepping loop (paths, callbacks, progress, activation checkpointing)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from tsgen.sde.base import SDE, broadcasts_to
from tsgen.sde.noise import GaussianNoise, Increments, NoiseSource

if TYPE_CHECKING:
    from tqdm.auto import tqdm

__all__ = [
    "Callback",
    "FixedStepSolver",
    "Problem",
    "Solver",
    "SolverOutput",
    "check_drift_shape",
]

Callback = Callable[[int, Tensor, Tensor], "Tensor | None"]
"""``callback(k, t_k, x_k)`` after each step ``k = 1..n``; a returned tensor replaces ``x_k``
(for example to reset observed entries)."""


@dataclass(frozen=True)
class Problem:
    """Everything a solver integrates, after :func:`tsgen.sde.solve` has checked it.

    Attributes:
        sde: the SDE or ODE.
        x0: initial states, ``(B, *event)``.
        grid: the time grid on ``x0``'s device and dtype, ``(n_points,)``.
        noise: the noise source, or ``None`` for the solver's default.
        return_path: also return the states at every grid time.
        callback: called after each step; a returned tensor replaces the state.
        progress: show a progress bar.
        checkpoint_every: recompute blocks of this many steps in the backward pass.
    """

    sde: SDE
    x0: Tensor
    grid: Tensor
    noise: NoiseSource | None = None
    return_path: bool = False
    callback: Callback | None = None
    progress: bool = False
    checkpoint_every: int | None = None


@dataclass
class SolverOutput:
    """Result of :func:`tsgen.sde.solve`.

    Attributes:
        x: the state at the last grid time, ``(B, *event)``.
        path: the states at every grid time, ``(n_points, B, *event)``, if requested.
        nfe: number of drift evaluations (network evaluations for a learned drift).
        grid: the time grid used, ``(n_points,)``.
    """

    x: Tensor
    path: Tensor | None
    nfe: int
    grid: Tensor


class Solver(ABC):
    """A numerical method for :class:`~tsgen.sde.SDE`. Subclasses declare their capabilities.

    Attributes:
        name: the ``method`` string of :func:`~tsgen.sde.solve`.
        strong_order, weak_order: convergence orders for the noise types they support (the
            additive-noise order where it is higher is given in the docstring).
        noise_types: the :data:`~tsgen.sde.base.NoiseType` values it accepts.
        directions: ``(1,)`` forward time only, ``(1, -1)`` either way.
    """

    name: ClassVar[str]
    strong_order: ClassVar[float | None] = None
    weak_order: ClassVar[float | None] = None
    noise_types: ClassVar[frozenset[str]] = frozenset({"none", "additive", "diagonal"})
    directions: ClassVar[tuple[int, ...]] = (1, -1)

    def check(self, sde: SDE, x0: Tensor, grid: Tensor, times: Tensor, direction: int) -> None:
        """The one contract check, run once before integrating (``grid`` on ``x0``'s device and
        dtype, ``times`` the same grid on the host).

        Raises ``TypeError``/``ValueError`` naming what is wrong: the SDE type, the state, a
        noise type or time direction this solver does not support, times the SDE cannot be
        evaluated at, a diffusion of the wrong shape, dtype or device, or a negative one. The
        drift (often a network) is checked on its first evaluation instead.
        """
        if not isinstance(sde, SDE):
            raise TypeError(f"sde must be a tsgen.sde.SDE; got {type(sde).__name__}")
        if not isinstance(x0, Tensor) or not x0.is_floating_point() or x0.ndim < 1:
            raise ValueError(
                "x0 must be a floating-point tensor of shape (batch, ...); got "
                f"{getattr(x0, 'dtype', type(x0).__name__)} "
                f"of shape {tuple(getattr(x0, 'shape', ()))}"
            )
        accepted = self.accepted_noise_types()
        if sde.noise_type not in accepted:
            raise ValueError(
                f"method '{self.name}' supports noise types {sorted(accepted)}; "
                f"{type(sde).__name__} has noise_type '{sde.noise_type}'"
            )
        if direction not in self.directions:
            raise ValueError(f"method '{self.name}' needs an increasing time grid")
        sde.check_inputs(x0, times, self.drift_times(times))
        if sde.noise_type == "none":
            return
        with torch.no_grad():
            t0 = grid[0]
            diffusion = sde.diffusion(t0, x0)
            if not broadcasts_to(diffusion.shape, x0.shape):
                raise ValueError(
                    f"{type(sde).__name__}.diffusion returned shape {tuple(diffusion.shape)}, "
                    f"which does not broadcast to the state's shape {tuple(x0.shape)}"
                )
            _check_dtype_device(sde, "diffusion", diffusion, x0)
            # Not ``(diffusion < 0).any()``: NaN (a square root of a negative g^2) fails it.
            if not bool((diffusion >= 0).all()):
                raise ValueError(
                    f"{type(sde).__name__}.diffusion must be non-negative; got a minimum of "
                    f"{float(diffusion.min())} at t = {float(t0)}"
                )

    def drift_times(self, times: Tensor) -> Tensor:
        """The grid times at which the method evaluates the drift (between them it may evaluate
        at interior times too): every point but the last, by default."""
        return times[:-1]

    def accepted_noise_types(self) -> frozenset[str]:
        """The noise types this configured solver accepts (its class's ``noise_types``)."""
        return self.noise_types

    def uses_noise(self, sde: SDE) -> bool:
        """Whether the method draws Brownian increments for this SDE."""
        return sde.noise_type != "none"

    @abstractmethod
    def integrate(self, problem: Problem) -> SolverOutput:
        """Integrate from ``x0`` over ``grid`` (already checked and on ``x0``'s device)."""


def check_drift_shape(sde: SDE, drift: Tensor, x: Tensor) -> Tensor:
    """Return ``drift`` if it has the state's shape, dtype and device, else raise a
    ``ValueError`` naming both."""
    if drift.shape != x.shape:
        raise ValueError(
            f"{type(sde).__name__}.drift returned shape {tuple(drift.shape)} for a state of shape "
            f"{tuple(x.shape)}; it must return the state's shape"
        )
    _check_dtype_device(sde, "drift", drift, x)
    return drift


def _check_dtype_device(sde: SDE, what: str, value: Tensor, x: Tensor) -> None:
    if value.dtype != x.dtype or value.device != x.device:
        raise ValueError(
            f"{type(sde).__name__}.{what} returned {value.dtype} on {value.device} for a state "
            f"of {x.dtype} on {x.device}; move the SDE to the state's dtype and device (sde.to(x0))"
        )


class FixedStepSolver(Solver):
    """A solver that steps exactly from grid point to grid point.

    Subclasses implement :meth:`prepare` (precompute per-step quantities on the grid's device,
    so the loop does no host-device synchronisation) and :meth:`step`, and evaluate drifts
    through :meth:`drift`, which counts them.
    """

    def __init__(self) -> None:
        self.nfe = 0

    def drift(self, sde: SDE, t: Tensor, x: Tensor) -> Tensor:
        """``sde.drift(t, x)``, counted in ``nfe``; the first result's shape is checked."""
        self.nfe += 1
        drift = sde.drift(t, x)
        return check_drift_shape(sde, drift, x) if self.nfe == 1 else drift

    def noise_shape(self, shape: torch.Size) -> torch.Size:
        """Shape of each step's Brownian increment for states of ``shape`` (the state's own,
        unless a method needs more normals per step, e.g. a probe)."""
        return shape

    def prepare(self, sde: SDE, grid: Tensor) -> None:
        """Per-grid precomputation; the default keeps times and steps as device tensors."""
        self.times = list(grid.unbind())
        self.steps = list(grid.diff().unbind())

    @abstractmethod
    def step(self, sde: SDE, k: int, x: Tensor, dW: Tensor | None, last: bool) -> Tensor:
        """Advance ``x`` from ``grid[k]`` to ``grid[k+1]`` with Brownian increment ``dW``."""

    def integrate(self, problem: Problem) -> SolverOutput:
        sde, x0, grid, noise = problem.sde, problem.x0, problem.grid, problem.noise
        # Per-run state: a solver instance integrates one problem at a time.
        self.nfe = 0
        self.prepare(sde, grid)
        n_steps = grid.shape[0] - 1
        increments: Increments | None = None
        if self.uses_noise(sde):
            source = noise if noise is not None else GaussianNoise()
            increments = source.increments(grid, self.noise_shape(x0.shape), x0.dtype, x0.device)
        return_path, callback = problem.return_path, problem.callback
        states = [x0] if return_path else None
        block = problem.checkpoint_every or 1
        bar = _progress_bar(n_steps, type(sde).__name__) if problem.progress else None
        x = x0
        for start in range(0, n_steps, block):
            ks = range(start, min(start + block, n_steps))
            dWs = [increments[k] if increments is not None else None for k in ks]
            if problem.checkpoint_every:
                # Increments are drawn outside the checkpointed block, so that the recomputation
                # in the backward pass sees exactly the same noise.
                block_states = checkpoint(
                    self._run_block, sde, ks, x, dWs, n_steps, return_path, use_reentrant=False
                )
            else:
                block_states = self._run_block(sde, ks, x, dWs, n_steps, return_path)
            x = block_states[-1]
            if states is not None:
                states.extend(block_states)
            if callback is not None:
                replaced = callback(ks[-1] + 1, self.times[ks[-1] + 1], x)
                if replaced is not None:
                    x = replaced
                    if states is not None:
                        states[-1] = x
            if bar is not None:
                bar.update(len(ks))
        if bar is not None:
            bar.close()
        path = torch.stack(states) if states is not None else None
        return SolverOutput(x=x, path=path, nfe=self.nfe, grid=grid)

    def _run_block(
        self,
        sde: SDE,
        ks: range,
        x: Tensor,
        dWs: list[Tensor | None],
        n_steps: int,
        keep_all: bool,
    ) -> list[Tensor]:
        out = []
        for k, dW in zip(ks, dWs, strict=True):
            x = self.step(sde, k, x, dW, last=k == n_steps - 1)
            if keep_all:
                out.append(x)
        return out if keep_all else [x]


def _progress_bar(total: int, name: str) -> tqdm:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"solving {name}", leave=False)
