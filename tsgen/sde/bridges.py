"""Doob h-transform bridges of linear SDEs (sde.md, "Bridges").

A linear SDE ``dX = f X dt + g dW`` pinned at ``X_T = y`` has the extra drift ``g^2 h`` with

    h(t, x) = grad_x log p(X_T = y | X_t = x) = alpha(t,T) (y - alpha(t,T) x) / sigma2(t,T).

Given both ends, ``X_t | X_s = x, X_T = y ~ N(a y + b x, c)`` with

    a = alpha(t,T) sigma2(s,t) / sigma2(s,T)
    b = alpha(s,t) sigma2(t,T) / sigma2(s,T)
    c = sigma2(s,t) sigma2(t,T) / sigma2(s,T)

(with ``s = 0`` these are the ``a_t, b_t, c_t`` of the bridge marginal). With an endpoint
predictor ``D(x_t, t) ~ E[X_0 | X_t, X_T]`` the score of ``q(x_t | x_T)`` is
``-(x - a_t y - b_t D) / c_t`` and the reverse-time dynamics are

    reverse SDE:  dX = [f X - g^2 (score - h)] dt + g dW_bar
    prob. flow:   dX = [f X - g^2 (score/2 - h)] dt
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn

from tsgen.sde.base import (
    ODE,
    SDE,
    GaussianTransitions,
    LinearSDE,
    NoiseType,
    as_time,
    expand_time,
)
from tsgen.sde.processes import VPSDE

__all__ = [
    "BridgeCoefficients",
    "BridgePreconditioning",
    "LinearBridge",
    "ReverseBridge",
    "bridge_coefficients",
    "bridge_preconditioning",
    "ddbm_vp_coefficients",
    "h_transform",
]

EndpointPredictor = Callable[[Tensor, Tensor], Tensor]
"""``D(x_t, t) -> E[X_0 | X_t = x_t, X_T]``: state ``(B, *event)`` and time (scalar or ``(B,)``)
to a tensor of the state's shape."""


class BridgeCoefficients(NamedTuple):
    """``X_t | X_s = x, X_T = y ~ N(a y + b x, c)``."""

    a: Tensor
    b: Tensor
    c: Tensor


def bridge_coefficients(
    process: LinearSDE, t: Tensor, T: Tensor | float = 1.0, s: Tensor | float = 0.0
) -> BridgeCoefficients:
    """Coefficients of the bridge marginal of ``process`` between ``(s, x)`` and ``(T, y)``.

    Args:
        process: a linear SDE with closed-form ``alpha`` and ``sigma2``.
        t: times with ``s <= t <= T``. They broadcast against the process's coefficients as
            they are: for per-sample times ``(B,)`` with per-coordinate coefficients, pass
            ``expand_time(t, x)`` so that the batch dimension stays in front.
        T: the pinned end time; s: the start time.

    Returns:
        ``(a, b, c)`` broadcast over ``t`` (and per-coordinate coefficients, if any).
    """
    T, s = as_time(T, t), as_time(s, t)
    var_st, var_tT, var_sT = process.sigma2(s, t), process.sigma2(t, T), process.sigma2(s, T)
    a = process.alpha(t, T) * var_st / var_sT
    b = process.alpha(s, t) * var_tT / var_sT
    return BridgeCoefficients(a, b, var_st * var_tT / var_sT)


def ddbm_vp_coefficients(process: VPSDE, t: Tensor, T: Tensor | float = 1.0) -> BridgeCoefficients:
    """The same marginal in the variance-preserving parametrisation of DDBM (Zhou et al. 2024).

    With ``alpha_t = alpha(0, t)``, the EDM noise level ``sigma_t^2 = 1/alpha_t^2 - 1`` (so
    ``SNR_t = 1 / sigma_t^2 = alpha_t^2 / (1 - alpha_t^2)``) and ``rho = SNR_T / SNR_t``:
    ``a = rho alpha_t / alpha_T``, ``b = alpha_t (1 - rho)``, ``c = alpha_t^2 sigma_t^2 (1 - rho)``.
    """
    T = as_time(T, t)
    zero = torch.zeros_like(t)
    alpha_t, alpha_T = process.alpha(zero, t), process.alpha(torch.zeros_like(T), T)
    sigma2_edm_t = 1 / alpha_t**2 - 1
    rho = (alpha_T**2 / (1 - alpha_T**2)) * sigma2_edm_t
    return BridgeCoefficients(
        rho * alpha_t / alpha_T, alpha_t * (1 - rho), alpha_t**2 * sigma2_edm_t * (1 - rho)
    )


class BridgePreconditioning(NamedTuple):
    """DDBM's network preconditioning for a bridge: ``D = c_skip x_t + c_out F(c_in x_t, t)``,
    and the loss weight ``weight = 1 / c_out^2`` that gives every time the same scale."""

    c_in: Tensor
    c_skip: Tensor
    c_out: Tensor
    weight: Tensor


def bridge_preconditioning(
    coefficients: BridgeCoefficients, sigma_data: float
) -> BridgePreconditioning:
    """Preconditioning of an endpoint predictor for ``x_t = a x_T + b x_0 + sqrt(c) z`` when
    ``x_0`` and ``x_T`` are uncorrelated, each with variance ``s_d^2 = sigma_data^2``
    (timebridge.md, "Training"; Zhou et al. 2024):

        A      = a^2 s_d^2 + b^2 s_d^2 + c            (= Var x_t, so c_in x_t has unit variance)
        c_in   = 1 / sqrt(A)
        c_skip = b s_d^2 / A                           (= Cov(x_0, x_t) / Var x_t)
        c_out  = sqrt(a^2 s_d^4 + s_d^2 c) / sqrt(A)   (= std of x_0 - c_skip x_t)
        weight = 1 / c_out^2

    so the network's target ``(x_0 - c_skip x_t) / c_out`` has unit variance at every ``t``.
    """
    if not sigma_data > 0:
        raise ValueError(f"sigma_data must be positive; got {sigma_data}")
    a, b, c = coefficients
    s2 = sigma_data**2
    total = (a**2 + b**2) * s2 + c
    c_out2 = s2 * (a**2 * s2 + c) / total
    return BridgePreconditioning(total.rsqrt(), b * s2 / total, c_out2.sqrt(), 1 / c_out2)


def h_transform(process: LinearSDE, t: Tensor, x: Tensor, y: Tensor, T: Tensor | float) -> Tensor:
    """``h(t, x) = alpha(t,T) (y - alpha(t,T) x) / sigma2(t,T)``, the Doob h-transform direction.

    Args:
        t: scalar or ``(B,)`` time, ``t < T``; x, y: states ``(B, *event)``.
    """
    t = expand_time(t, x)
    T = as_time(T, x)
    alpha = process.alpha(t, T)
    return alpha * (y - alpha * x) / process.sigma2(t, T)


class LinearBridge(SDE, GaussianTransitions):
    """``process`` pinned at ``X_T = endpoint``: ``dX = [f X + g^2 h(t, X)] dt + g dW``.

    Its transitions are Gaussian in closed form (the bridge coefficients with start ``s``), so
    the ``exact`` solver applies; :meth:`marginal` is ``q(x_t | x_0, x_T)``.

    Args:
        process: the linear SDE to pin.
        endpoint: ``y``, ``(B, *event)``.
        T: the pinning time.
    """

    noise_type: NoiseType = "additive"

    def __init__(self, process: LinearSDE, endpoint: Tensor, T: float = 1.0) -> None:
        super().__init__()
        self.process = process
        self.register_buffer("endpoint", endpoint, persistent=False)
        self.T = float(T)

    def check_inputs(self, x0: Tensor, times: Tensor, drift_times: Tensor) -> None:
        # The h-drift is singular at T; the transitions are defined up to T.
        _check_endpoint(self, x0)
        _check_times(self, times, drift_times, lower=-math.inf, upper=self.T)

    def drift(self, t: Tensor, x: Tensor) -> Tensor:
        h = h_transform(self.process, t, x, self.endpoint, self.T)
        return self.process.drift(t, x) + self.process.g2(expand_time(t, x)) * h

    def diffusion(self, t: Tensor, x: Tensor) -> Tensor:
        return self.process.diffusion(t, x)

    def transition(self, s: Tensor | float, t: Tensor | float, x: Tensor) -> tuple[Tensor, Tensor]:
        s, t = expand_time(s, x), expand_time(t, x)
        a, b, c = bridge_coefficients(self.process, t, self.T, s)
        return a * self.endpoint + b * x, c.sqrt()


class _BridgeProbabilityFlow(ODE):
    """The probability-flow ODE of a :class:`ReverseBridge`."""

    def __init__(self, bridge: ReverseBridge) -> None:
        super().__init__()
        self.bridge = bridge

    def check_inputs(self, x0: Tensor, times: Tensor, drift_times: Tensor) -> None:
        # The bridge's domain and singular times are the flow's.
        self.bridge.check_inputs(x0, times, drift_times)

    def drift(self, t: Tensor, x: Tensor) -> Tensor:
        return self.bridge.reverse_drift(t, x, score_weight=0.5)


class ReverseBridge(SDE):
    """Reverse-time dynamics of a bridge of ``process`` ending at ``X_T = endpoint``, driven by an
    endpoint predictor ``D(x_t, t) ~ E[X_0 | X_t, X_T]``. Integrate it on a decreasing grid.

    ``drift`` is the reverse SDE ``f X - g^2 (score - h)``; :meth:`probability_flow` returns the
    ODE ``f X - g^2 (score / 2 - h)`` with the same marginals. Both are singular at ``t = T``
    (``h``) and at ``t = 0`` (``score``): start slightly below ``T`` and never evaluate at 0.

    Args:
        process: the linear SDE whose bridge is reversed.
        predictor: ``D(x, t)``; a module, so that its parameters follow the SDE.
        endpoint: ``x_T``, ``(B, *event)``.
        T: the end time of the bridge.
    """

    noise_type: NoiseType = "additive"

    def __init__(
        self, process: LinearSDE, predictor: EndpointPredictor, endpoint: Tensor, T: float = 1.0
    ) -> None:
        super().__init__()
        self.process = process
        self.predictor = predictor if isinstance(predictor, nn.Module) else _Wrapped(predictor)
        self.register_buffer("endpoint", endpoint, persistent=False)
        self.T = float(T)

    def check_inputs(self, x0: Tensor, times: Tensor, drift_times: Tensor) -> None:
        # h is singular at T and the score at 0 (c_t = 0 at both ends): integrate backwards
        # inside [0, T] and evaluate the dynamics strictly inside.
        _check_endpoint(self, x0)
        if not bool(times[-1] < times[0]):
            raise ValueError(
                f"ReverseBridge runs backwards in time: the grid must decrease; it goes from "
                f"{float(times[0]):.6g} to {float(times[-1]):.6g}"
            )
        _check_times(self, times, drift_times, lower=0.0, upper=self.T)

    def score(self, t: Tensor, x: Tensor) -> Tensor:
        """``grad log q(x_t | x_T) = -(x - a_t x_T - b_t D(x, t)) / c_t`` (one predictor call)."""
        a, b, c = bridge_coefficients(self.process, expand_time(t, x), self.T)
        return -(x - a * self.endpoint - b * self.predictor(x, t)) / c

    def reverse_drift(self, t: Tensor, x: Tensor, score_weight: float) -> Tensor:
        """``f X - g^2 (score_weight * score - h)``: 1 for the SDE, 1/2 for the probability flow."""
        g2 = self.process.g2(expand_time(t, x))
        h = h_transform(self.process, t, x, self.endpoint, self.T)
        return self.process.drift(t, x) - g2 * (score_weight * self.score(t, x) - h)

    def drift(self, t: Tensor, x: Tensor) -> Tensor:
        return self.reverse_drift(t, x, score_weight=1.0)

    def diffusion(self, t: Tensor, x: Tensor) -> Tensor:
        return self.process.diffusion(t, x)

    def probability_flow(self) -> ODE:
        """The probability-flow ODE sharing this bridge's marginals."""
        return _BridgeProbabilityFlow(self)


def _check_endpoint(bridge: SDE, x0: Tensor) -> None:
    if bridge.endpoint.shape != x0.shape:
        raise ValueError(
            f"{type(bridge).__name__}.endpoint has shape {tuple(bridge.endpoint.shape)} but the "
            f"state has shape {tuple(x0.shape)}; they must be equal"
        )


def _check_times(
    bridge: SDE, times: Tensor, drift_times: Tensor, lower: float, upper: float
) -> None:
    """Grid inside ``[lower, upper]``; dynamics evaluated strictly inside ``(lower, upper)``."""
    name = type(bridge).__name__
    if bool((times < lower).any() | (times > upper).any()):
        raise ValueError(
            f"the grid leaves the time domain [{lower:.6g}, {upper:.6g}] of {name}: it spans "
            f"{float(times.min()):.6g} to {float(times.max()):.6g}"
        )
    singular = drift_times[(drift_times <= lower) | (drift_times >= upper)]
    if singular.numel():
        raise ValueError(
            f"the method evaluates the dynamics of {name} at t = {float(singular[0]):.6g}, where "
            f"they are singular (only ({lower:.6g}, {upper:.6g}) is allowed): start strictly "
            "inside, and end at a singular time only with a last step that does not evaluate "
            "there (euler, or final_euler=True)"
        )


class _Wrapped(nn.Module):
    """Holds a plain callable as a module (no parameters)."""

    def __init__(self, fn: EndpointPredictor) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return self.fn(x, t)
