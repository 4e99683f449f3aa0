"""The SDE contract shared by every process and solver.

An SDE is ``dX = drift(t, X) dt + diffusion(t, X) dW`` with diagonal noise: ``diffusion`` returns
a tensor broadcastable to the state's shape, multiplied elementwise with the Brownian increment.
States have any shape ``(B, *event)`` with the batch first. Times are a scalar tensor or a
``(B,)`` tensor (one time per sample).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Literal, get_args

import torch
from einops import rearrange
from torch import Tensor, nn

from tsgen.sde.noise import NoiseSource, standard_normal

NoiseType = Literal["none", "additive", "diagonal"]
"""``none``: an ODE; ``additive``: diffusion independent of the state; ``diagonal``: elementwise,
state-dependent (multiplicative) noise."""

NOISE_TYPES: tuple[str, ...] = get_args(NoiseType)


def expand_time(t: Tensor | float, x: Tensor) -> Tensor:
    """Shape a time so that it broadcasts against a state.

    Args:
        t: a Python number, a scalar tensor, or a ``(B,)`` tensor with ``B = x.shape[0]``.
        x: the state, ``(B, *event)``.

    Returns:
        A tensor on ``x``'s device and dtype: scalar for a scalar time, ``(B, 1, ..., 1)``
        (``x.ndim`` dimensions) for per-sample times.
    """
    t = as_time(t, x)
    if t.ndim == 0:
        return t
    if t.ndim == 1 and x.ndim >= 1 and t.shape[0] == x.shape[0]:
        return rearrange(t, "b -> b" + " 1" * (x.ndim - 1))
    raise ValueError(
        f"t must be a scalar or have shape (batch,) = ({x.shape[0] if x.ndim else '?'},) to match "
        f"the state of shape {tuple(x.shape)}; got t of shape {tuple(t.shape)}"
    )


def as_time(value: Tensor | float, like: Tensor) -> Tensor:
    """A time as a tensor on ``like``'s device and dtype. A Python number is filled in on the
    device (no host-to-device copy, which would cost a transfer on every solver step)."""
    if isinstance(value, Tensor):
        return value.to(dtype=like.dtype, device=like.device)
    return torch.full((), float(value), dtype=like.dtype, device=like.device)


class SDE(nn.Module, ABC):
    """Base class of every SDE: ``dX = drift(t, X) dt + diffusion(t, X) dW``.

    Subclasses set :attr:`noise_type` and implement :meth:`drift` and :meth:`diffusion`. It is an
    ``nn.Module`` so that learned parts (controls, endpoint predictors) and tensor-valued
    coefficients move with ``.to(device)`` and are seen by optimisers and the torchsde adjoint.
    """

    noise_type: NoiseType = "diagonal"

    @abstractmethod
    def drift(self, t: Tensor, x: Tensor) -> Tensor:
        """Drift ``f(t, x)``, same shape as ``x``."""

    @abstractmethod
    def diffusion(self, t: Tensor, x: Tensor) -> Tensor:
        """Diagonal diffusion ``g(t, x)``, broadcastable to ``x``'s shape, non-negative."""

    def check_inputs(self, x0: Tensor, times: Tensor, drift_times: Tensor) -> None:
        """Part of the solvers' one contract check: raise a ``ValueError`` if this SDE cannot be
        integrated from ``x0`` over ``times`` (the grid, on the host) with its drift evaluated
        at ``drift_times``. SDEs with singular times or fixed end states override it; the
        default accepts everything."""


class ODE(SDE):
    """An ordinary differential equation ``dX = drift(t, X) dt`` seen as an SDE without noise."""

    noise_type: NoiseType = "none"

    def diffusion(self, t: Tensor, x: Tensor) -> Tensor:
        return torch.zeros((), dtype=x.dtype, device=x.device)


class GaussianTransitions(ABC):
    """Processes whose transitions ``X_t | X_s = x`` are Gaussian in closed form.

    The ``exact`` solver steps with :meth:`transition`; tests and priors use :meth:`marginal`.
    """

    @abstractmethod
    def transition(self, s: Tensor | float, t: Tensor | float, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and standard deviation of ``X_t | X_s = x`` for ``s <= t``.

        Args:
            s, t: scalar or ``(B,)`` times.
            x: the state at ``s``, ``(B, *event)``.

        Returns:
            ``(mean, std)``; ``mean`` has ``x``'s shape, ``std`` broadcasts to it.
        """

    def marginal(self, t: Tensor | float, x0: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and standard deviation of ``X_t | X_0 = x0``."""
        return self.transition(0.0, t, x0)

    def sample_marginal(
        self, t: Tensor | float, x0: Tensor, noise: NoiseSource | Tensor | None = None
    ) -> Tensor:
        """Draw ``X_t | X_0 = x0`` as ``mean + std * eps`` with ``eps`` standard normal of
        ``x0``'s shape from ``noise`` (see :func:`tsgen.sde.noise.standard_normal`)."""
        mean, std = self.marginal(t, x0)
        return mean + std * standard_normal(x0.shape, x0.dtype, x0.device, noise)


class LinearSDE(SDE, GaussianTransitions):
    """Linear SDE with coefficients that depend on time only: ``dX = f(t) X dt + g(t) dW``.

    The coefficients are scalars or per-coordinate tensors (for example one per spectral mode)
    broadcasting against the trailing dimensions of the state. The transition is Gaussian:
    ``X_t | X_s ~ N(alpha(s, t) X_s, sigma2(s, t))``; subclasses give ``alpha`` and ``sigma2``
    in closed form.
    """

    noise_type: NoiseType = "additive"

    @abstractmethod
    def f(self, t: Tensor) -> Tensor:
        """Linear drift coefficient ``f(t)``."""

    @abstractmethod
    def g2(self, t: Tensor) -> Tensor:
        """Squared diffusion coefficient ``g(t)^2``."""

    @abstractmethod
    def alpha(self, s: Tensor, t: Tensor) -> Tensor:
        """Transition scale ``alpha(s, t) = exp(int_s^t f)``."""

    @abstractmethod
    def sigma2(self, s: Tensor, t: Tensor) -> Tensor:
        """Transition variance ``sigma2(s, t) = int_s^t alpha(u, t)^2 g(u)^2 du``."""

    def drift(self, t: Tensor, x: Tensor) -> Tensor:
        return self.f(expand_time(t, x)) * x

    def diffusion(self, t: Tensor, x: Tensor) -> Tensor:
        return self.g2(expand_time(t, x)).sqrt()

    def transition(self, s: Tensor | float, t: Tensor | float, x: Tensor) -> tuple[Tensor, Tensor]:
        s, t = expand_time(s, x), expand_time(t, x)
        return self.alpha(s, t) * x, self.sigma2(s, t).sqrt()

    def log_snr(self, t: Tensor) -> Tensor:
        """Log signal-to-noise ratio of the marginal: ``log(alpha(0,t)^2 / sigma2(0,t))``."""
        zero = torch.zeros_like(t)
        return 2 * torch.log(self.alpha(zero, t)) - torch.log(self.sigma2(zero, t))


def broadcasts_to(
    shape: tuple[int, ...] | torch.Size, target: tuple[int, ...] | torch.Size
) -> bool:
    """Whether a tensor of ``shape`` (a tuple or ``torch.Size``) broadcasts to ``target`` unchanged.

    Pure Python on purpose: ``torch.broadcast_shapes`` imports sympy on first use (0.3 s).
    """
    if len(shape) > len(target):
        return False
    return all(s in (1, t) for s, t in zip(reversed(shape), reversed(target), strict=False))


def check_positive(name: str, value: float | Tensor, *, allow_zero: bool = False) -> None:
    """Raise a ``ValueError`` naming ``name`` unless every entry is finite and positive."""
    bad = (
        not math.isfinite(value) or (value < 0 if allow_zero else value <= 0)
        if isinstance(value, (int, float))
        else not bool(torch.isfinite(value).all())
        or bool((value < 0).any() if allow_zero else (value <= 0).any())
    )
    if bad:
        kind = "non-negative" if allow_zero else "positive"
        shown = value if isinstance(value, (int, float)) else value.detach().cpu()
        raise ValueError(f"{name} must be finite and {kind}; got {shown}")
