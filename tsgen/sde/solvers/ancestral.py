"""Ancestral (DDPM-style posterior) sampling of a :class:`~tsgen.sde.ReverseBridge`.

On each interval ``t -> s`` of a decreasing grid, one predictor call ``x0_hat = D(x_t, t)``,
then a draw from the bridge posterior with ``X_0`` replaced by that estimate:

    x_s ~ q(x_s | X_0 = x0_hat, X_t = x_t) = N(a x_t + b x0_hat, c)

(``X_T`` drops out: given ``X_0``, the bridge on ``[0, t]`` pinned at ``X_t`` is the bridge of a
Markov process between its two ends, whatever happens after ``t``.) The coefficients are
:func:`~tsgen.sde.bridge_coefficients` with the roles renamed. Its convention is
``X_t' | X_s' = x, X_T' = y ~ N(a y + b x, c)`` with

    a = alpha(t',T') sigma2(s',t') / sigma2(s',T')
    b = alpha(s',t') sigma2(t',T') / sigma2(s',T')
    c = sigma2(s',t') sigma2(t',T') / sigma2(s',T')

Here the marginal time is ``t' = s``, the pinned end is ``T' = t`` (``y = x_t``) and the start
is ``s' = 0`` (``x = x0_hat``), so ``bridge_coefficients(process, s, T=t, s=0)`` gives

    a = alpha(s,t) sigma2(0,s) / sigma2(0,t)      (weight of x_t)
    b = alpha(0,s) sigma2(s,t) / sigma2(0,t)      (weight of x0_hat)
    c = sigma2(0,s) sigma2(s,t) / sigma2(0,t)

For the VP process with ``alpha(s,t)^2 = 1 - beta_k`` and ``alpha(0,t)^2 = abar_k`` these are
the DDPM posterior of Ho et al. (2020), eq. 7: ``sqrt(1 - beta_k) (1 - abar_{k-1}) / (1 - abar_k)``,
``sqrt(abar_{k-1}) beta_k / (1 - abar_k)`` and ``tilde beta_k``. The mean is exact in
expectation over ``X_0 | x_t`` (linear in ``x0``); plugging in the mean drops the
``b^2 Var(X_0 | x_t, x_T)`` part of the variance, an error that vanishes as the grid is refined.

On a last interval that ends at ``s = 0`` the posterior is a point mass at ``x0_hat``
(``a = c = 0``, ``b = 1``): the step returns ``x0_hat`` itself. ``n`` intervals cost ``n``
predictor evaluations.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from tsgen.sde.base import SDE
from tsgen.sde.bridges import ReverseBridge, bridge_coefficients
from tsgen.sde.solvers.base import FixedStepSolver

__all__ = ["BridgeAncestral"]


class BridgeAncestral(FixedStepSolver):
    """Ancestral sampling of a :class:`~tsgen.sde.ReverseBridge` (decreasing grids only).

    Exact in distribution when ``X_0`` given ``(x_t, x_T)`` is deterministic and ``D`` exact;
    otherwise weak order 1 (``b = O(dt)``, so the dropped ``b^2 Var(X_0 | x_t, x_T)`` is
    ``O(dt^2)`` per step): the variance comes out too small, by about 15% with 40 Karras
    intervals on the Gaussian toy of the tests, halving as the intervals double. The standard
    normals are the solver's
    Brownian increments divided by ``sqrt(|dt|)`` (as in the ``exact`` solver), so every
    :class:`~tsgen.sde.NoiseSource` applies: with :class:`~tsgen.sde.PerSampleNoise` each
    sample's noise is drawn as one block from its own generator and does not depend on the batch.
    """

    name: ClassVar[str] = "bridge_ancestral"
    weak_order: ClassVar[float | None] = 1.0
    noise_types: ClassVar[frozenset[str]] = frozenset({"additive"})
    directions: ClassVar[tuple[int, ...]] = (-1,)

    def check(self, sde: SDE, x0: Tensor, grid: Tensor, times: Tensor, direction: int) -> None:
        if not isinstance(sde, ReverseBridge):
            raise ValueError(
                f"method '{self.name}' samples a tsgen.sde.ReverseBridge (it needs the bridge's "
                f"process and endpoint predictor); got {type(sde).__name__}"
            )
        if direction != -1:
            raise ValueError(
                f"method '{self.name}' samples backwards in time: the grid must decrease"
            )
        super().check(sde, x0, grid, times, direction)
        # Decided here, on the host copy of the grid, so that the loop branches on no tensor.
        self.final_denoise = bool(times[-1] == 0)

    def prepare(self, sde: SDE, grid: Tensor) -> None:
        super().prepare(sde, grid)
        self.weights_x: list[Tensor] = []
        self.weights_x0: list[Tensor] = []
        self.noise_scales: list[Tensor] = []
        zero = grid.new_zeros(())
        for t, s, dt in zip(self.times[:-1], self.times[1:], self.steps, strict=True):
            # q(x_s | X_0, X_t): marginal time s, pinned end (t, x_t), start (0, x0_hat); see
            # the module docstring for the mapping onto bridge_coefficients' convention.
            a, b, c = bridge_coefficients(sde.process, s, T=t, s=zero)
            self.weights_x.append(a)
            self.weights_x0.append(b)
            # z = dW / sqrt(|dt|) is standard normal; fold both scales into one factor.
            self.noise_scales.append(torch.sqrt(c / dt.abs()))

    def step(self, sde: SDE, k: int, x: Tensor, dW: Tensor | None, last: bool) -> Tensor:
        x0_hat = self.predict(sde, self.times[k], x)
        if last and self.final_denoise:
            return x0_hat
        return self.weights_x[k] * x + self.weights_x0[k] * x0_hat + self.noise_scales[k] * dW

    def predict(self, sde: ReverseBridge, t: Tensor, x: Tensor) -> Tensor:
        """``D(x, t)``, counted in ``nfe``; the first result's shape, dtype and device are checked
        (a ``(B, 1)`` output would otherwise broadcast silently)."""
        self.nfe += 1
        x0_hat = sde.predictor(x, t)
        if self.nfe == 1 and (
            x0_hat.shape != x.shape or x0_hat.dtype != x.dtype or x0_hat.device != x.device
        ):
            raise ValueError(
                f"the endpoint predictor returned {x0_hat.dtype} of shape {tuple(x0_hat.shape)} "
                f"on {x0_hat.device} for a state of {x.dtype} of shape {tuple(x.shape)} on "
                f"{x.device}; it must return the state's shape, dtype and device"
            )
        return x0_hat
