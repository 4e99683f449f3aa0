"""Processes with closed-form transitions (sde.md, "Processes with closed forms").

| process | f, g | alpha(s, t) | sigma2(s, t) |
|---|---|---|---|
| Brownian | 0, s | 1 | s^2 (t - s) |
| OU | -a, s | e^{-a (t-s)} | s^2 (1 - e^{-2 a (t-s)}) / (2a) |
| VP | -beta/2, sqrt(beta) | exp(-(B(t) - B(s)) / 2) | 1 - alpha^2 |
| VE (EDM) | 0, sqrt(2t) | 1 | t^2 - s^2 |

with ``beta(t) = beta_min + beta_d t`` and ``B(t) = int_0^t beta = beta_min t + beta_d t^2 / 2``.
Geometric Brownian motion (multiplicative noise) is here too, with its exact strong solution, as
the reference problem for solvers on state-dependent noise.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from tsgen.sde.base import SDE, LinearSDE, NoiseType, check_positive, expand_time

__all__ = [
    "VESDE",
    "VPSDE",
    "BrownianMotion",
    "ControlledSDE",
    "GeometricBrownianMotion",
    "OrnsteinUhlenbeck",
    "one_minus_exp_ratio",
]


def one_minus_exp_ratio(z: Tensor) -> Tensor:
    """``(1 - e^{-z}) / z`` with its limit 1 at ``z = 0``, accurate for tiny ``|z|`` (``expm1``)."""
    safe = torch.where(z == 0, torch.ones_like(z), z)
    return torch.where(z == 0, torch.ones_like(z), -torch.expm1(-safe) / safe)


def _coefficient(module: nn.Module, name: str, value: float | Tensor, *, allow_zero: bool) -> None:
    """Store a validated coefficient: a float stays a float, a tensor becomes a buffer."""
    if isinstance(value, Tensor):
        check_positive(name, value, allow_zero=allow_zero)
        module.register_buffer(name, value.detach().clone(), persistent=True)
    else:
        value = float(value)
        check_positive(name, value, allow_zero=allow_zero)
        setattr(module, name, value)


class BrownianMotion(LinearSDE):
    """Scaled Brownian motion ``dX = s dW``.

    Args:
        scale: ``s > 0``, a float or a tensor broadcasting against the state's trailing dims.
    """

    def __init__(self, scale: float | Tensor = 1.0) -> None:
        super().__init__()
        _coefficient(self, "scale", scale, allow_zero=False)

    def f(self, t: Tensor) -> Tensor:
        return torch.zeros_like(t)

    def g2(self, t: Tensor) -> Tensor:
        return self.scale**2 * torch.ones_like(t)

    def alpha(self, s: Tensor, t: Tensor) -> Tensor:
        return torch.ones_like(t - s)

    def sigma2(self, s: Tensor, t: Tensor) -> Tensor:
        return self.scale**2 * (t - s)


class OrnsteinUhlenbeck(LinearSDE):
    """Ornstein-Uhlenbeck process ``dX = -a X dt + s dW`` (mean zero).

    ``rate`` and ``scale`` are floats or tensors broadcasting against the state's trailing
    dimensions, so one instance can hold a different OU per coordinate (the spectral Hilbert-space
    OU is this with one ``(a_k, s sqrt(lambda_k))`` per mode). The variance uses ``expm1`` and is
    exact as ``a -> 0``, where it tends to Brownian motion.

    Args:
        rate: ``a >= 0``.
        scale: ``s > 0``.
    """

    def __init__(self, rate: float | Tensor = 1.0, scale: float | Tensor = 1.0) -> None:
        super().__init__()
        _coefficient(self, "rate", rate, allow_zero=True)
        _coefficient(self, "scale", scale, allow_zero=False)

    def f(self, t: Tensor) -> Tensor:
        return -self.rate * torch.ones_like(t)

    def g2(self, t: Tensor) -> Tensor:
        return self.scale**2 * torch.ones_like(t)

    def alpha(self, s: Tensor, t: Tensor) -> Tensor:
        return torch.exp(-self.rate * (t - s))

    def sigma2(self, s: Tensor, t: Tensor) -> Tensor:
        dt = t - s
        # s^2 (1 - e^{-2a dt}) / (2a) = s^2 dt (1 - e^{-z}) / z with z = 2 a dt.
        return self.scale**2 * dt * one_minus_exp_ratio(2 * self.rate * dt)

    def stationary_variance(self) -> float | Tensor:
        """``s^2 / (2a)``, the variance as ``t -> infinity`` (infinite where ``a = 0``)."""
        if isinstance(self.rate, float) and self.rate == 0.0:
            return math.inf
        return self.scale**2 / (2 * self.rate)


class VPSDE(LinearSDE):
    """Variance-preserving SDE with linear beta: ``dX = -beta(t)/2 X dt + sqrt(beta(t)) dW``.

    ``beta(t) = beta_min + beta_d t``; from ``X_0 = 0`` the variance is ``1 - alpha(0, t)^2``.

    Args:
        beta_min: ``beta(0) > 0``.
        beta_d: slope ``beta_d >= 0``.
    """

    def __init__(self, beta_min: float = 0.1, beta_d: float = 19.9) -> None:
        super().__init__()
        _coefficient(self, "beta_min", beta_min, allow_zero=False)
        _coefficient(self, "beta_d", beta_d, allow_zero=True)

    def beta(self, t: Tensor) -> Tensor:
        return self.beta_min + self.beta_d * t

    def check_inputs(self, x0: Tensor, times: Tensor, drift_times: Tensor) -> None:
        # g^2 = beta(t) is linear in t: non-negative over the grid iff at its earliest time.
        earliest = times.min()
        if bool(self.beta(earliest) < 0):
            raise ValueError(
                f"VPSDE needs beta(t) = beta_min + beta_d t >= 0 (g^2 = beta); the grid reaches "
                f"t = {float(earliest):.6g}, where beta = {float(self.beta(earliest)):.6g}"
            )

    def integrated_beta(self, s: Tensor, t: Tensor) -> Tensor:
        """``B(t) - B(s) = beta_min (t - s) + beta_d (t^2 - s^2) / 2``."""
        return (t - s) * (self.beta_min + 0.5 * self.beta_d * (t + s))

    def f(self, t: Tensor) -> Tensor:
        return -0.5 * self.beta(t)

    def g2(self, t: Tensor) -> Tensor:
        return self.beta(t)

    def alpha(self, s: Tensor, t: Tensor) -> Tensor:
        return torch.exp(-0.5 * self.integrated_beta(s, t))

    def sigma2(self, s: Tensor, t: Tensor) -> Tensor:
        return -torch.expm1(-self.integrated_beta(s, t))


class VESDE(LinearSDE):
    """Variance-exploding SDE of EDM: ``sigma(t) = t``, so ``dX = sqrt(2t) dW``."""

    def f(self, t: Tensor) -> Tensor:
        return torch.zeros_like(t)

    def g2(self, t: Tensor) -> Tensor:
        return 2 * t

    def check_inputs(self, x0: Tensor, times: Tensor, drift_times: Tensor) -> None:
        if bool((times < 0).any()):
            raise ValueError(
                f"VESDE is defined for t >= 0 (g^2 = 2t); the grid reaches t = "
                f"{float(times.min()):.6g}"
            )

    def alpha(self, s: Tensor, t: Tensor) -> Tensor:
        return torch.ones_like(t - s)

    def sigma2(self, s: Tensor, t: Tensor) -> Tensor:
        return t**2 - s**2


class GeometricBrownianMotion(SDE):
    """``dX = mu X dt + sigma X dW`` (Ito), multiplicative noise.

    The exact strong solution given the Brownian path is
    ``X_t = X_0 exp((mu - sigma^2 / 2) t + sigma W_t)``: see :meth:`solution`.
    """

    noise_type: NoiseType = "diagonal"

    def __init__(self, mu: float = 0.0, sigma: float = 1.0) -> None:
        super().__init__()
        self.mu = float(mu)
        _coefficient(self, "sigma", sigma, allow_zero=False)

    def drift(self, t: Tensor, x: Tensor) -> Tensor:
        return self.mu * x

    def diffusion(self, t: Tensor, x: Tensor) -> Tensor:
        return self.sigma * x

    def solution(self, t: Tensor | float, x0: Tensor, w: Tensor) -> Tensor:
        """Exact state at time ``t`` given the Brownian value ``w = W_t`` (``x0``'s shape)."""
        t = expand_time(t, x0)
        return x0 * torch.exp((self.mu - 0.5 * self.sigma**2) * t + self.sigma * w)


class ControlledSDE(SDE):
    """A base SDE steered by a control: ``dX = [b(t, X) + g(t, X) u(t, X)] dt + g(t, X) dW``.

    Args:
        base: the uncontrolled SDE (its ``noise_type`` is kept).
        control: ``u(t, x)``, a module returning a tensor of ``x``'s shape.
    """

    def __init__(self, base: SDE, control: nn.Module) -> None:
        super().__init__()
        self.base = base
        self.control = control
        self.noise_type = base.noise_type

    def drift(self, t: Tensor, x: Tensor) -> Tensor:
        return self.base.drift(t, x) + self.base.diffusion(t, x) * self.control(t, x)

    def diffusion(self, t: Tensor, x: Tensor) -> Tensor:
        return self.base.diffusion(t, x)
