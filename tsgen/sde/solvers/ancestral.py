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

With ``posterior_variance="diagonal"`` the dropped term is put back: by second-order Tweedie,
with ``x_t = a_t x_T + b_t X_0 + sqrt(c_t) Z``,

    Cov(X_0 | x_t, x_T) = (c_t / b_t) dD/dx_t          (D = E[X_0 | x_t, x_T])

whose diagonal is estimated with one Rademacher probe ``u`` (Hutchinson's diagonal estimator,
``diag J ~ u * J u``) and a forward difference ``J u ~ (D(x_t + eps u) - D(x_t)) / eps``, and the
step draws ``x_s ~ N(a x_t + b x0_hat, c + b^2 max(v, 0))``. For data whose posterior is
Gaussian with a diagonal covariance, and ``D`` the exact posterior mean, this is the exact
transition; otherwise the estimate carries the off-diagonal terms of ``J`` as noise. The
identity needs ``D = E[X_0 | x_t, x_T]``: a predictor that does not see ``x_T`` (as TimeBridge's
network) or that estimates a median (an L1 loss) has another Jacobian, and with a random prior
the estimate is then too small (on a Gaussian by ``(b^2 s_0^2 + c) / (b^2 s_0^2 + a^2 s_T^2 +
c)``, with ``s_0^2`` and ``s_T^2`` the variances of ``X_0`` and ``X_T``). It costs a second
predictor call per interval (``2n - 1`` in all).

On a last interval that ends at ``s = 0`` the posterior is a point mass at ``x0_hat``
(``a = c = 0``, ``b = 1``): the step returns ``x0_hat`` itself. ``n`` intervals cost ``n``
predictor evaluations.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from einops import rearrange
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

    Args:
        posterior_variance: ``"none"`` (plug in ``D`` only) or ``"diagonal"`` (add the diagonal
            Tweedie estimate of ``b^2 Var(X_0 | x_t, x_T)``; two evaluations per interval).
        probe_scale: ``eps`` of the forward difference, in the state's units.
    """

    name: ClassVar[str] = "bridge_ancestral"
    weak_order: ClassVar[float | None] = 1.0
    noise_types: ClassVar[frozenset[str]] = frozenset({"additive"})
    directions: ClassVar[tuple[int, ...]] = (-1,)

    def __init__(
        self,
        posterior_variance: Literal["none", "diagonal"] = "none",
        probe_scale: float = 1e-3,
    ) -> None:
        super().__init__()
        if posterior_variance not in ("none", "diagonal"):
            raise ValueError(
                f"posterior_variance must be 'none' or 'diagonal'; got {posterior_variance!r}"
            )
        if not probe_scale > 0:
            raise ValueError(f"probe_scale must be positive; got {probe_scale!r}")
        self.posterior_variance = posterior_variance
        self.probe_scale = float(probe_scale)

    def noise_shape(self, shape: torch.Size) -> torch.Size:
        # With the diagonal variance each step also draws the probe: (B, 2, *event), the
        # step's normals in [:, 0] and the probe's signs from [:, 1].
        if self.posterior_variance == "none":
            return shape
        return torch.Size((shape[0], 2, *shape[1:]))

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
        self.tweedie_factors: list[Tensor] = []
        zero = grid.new_zeros(())
        for t, s, dt in zip(self.times[:-1], self.times[1:], self.steps, strict=True):
            # q(x_s | X_0, X_t): marginal time s, pinned end (t, x_t), start (0, x0_hat); see
            # the module docstring for the mapping onto bridge_coefficients' convention.
            a, b, c = bridge_coefficients(sde.process, s, T=t, s=zero)
            self.weights_x.append(a)
            self.weights_x0.append(b)
            # z = dW / sqrt(|dt|) is standard normal; fold both scales into one factor.
            self.noise_scales.append(torch.sqrt(c / dt.abs()))
            if self.posterior_variance == "diagonal":
                # c_t / b_t of the marginal x_t = a_t x_T + b_t X_0 + sqrt(c_t) Z (Tweedie).
                _, b_t, c_t = bridge_coefficients(sde.process, t, T=sde.T)
                self.tweedie_factors.append(c_t / b_t)

    def step(self, sde: SDE, k: int, x: Tensor, dW: Tensor | None, last: bool) -> Tensor:
        t = self.times[k]
        x0_hat = self.predict(sde, t, x)
        if last and self.final_denoise:
            return x0_hat
        a, b = self.weights_x[k], self.weights_x0[k]
        if self.posterior_variance == "none":
            return a * x + b * x0_hat + self.noise_scales[k] * dW
        dW, probe_normals = rearrange(dW, "b two ... -> two b ...")
        probe = torch.sign(probe_normals)
        jacobian_probe = (self.predict(sde, t, x + self.probe_scale * probe) - x0_hat) / (
            self.probe_scale
        )
        variance = (self.tweedie_factors[k] * probe * jacobian_probe).clamp_min(0)
        dt = self.steps[k].abs()
        # std of x_s = sqrt(c + b^2 v); noise_scales[k]^2 |dt| = c.
        scale = torch.sqrt(self.noise_scales[k] ** 2 + b**2 * variance / dt)
        return a * x + b * x0_hat + scale * dW

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
