"""The trend prior (timebridge.md, "Priors"): a smooth trend of a window as that window's prior
mean, plus Gaussian noise; for trend-conditioned generation."""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.signal
import torch
from torch import Tensor

from tsgen._validation import check_choice, check_int
from tsgen.priors.base import (
    Prior,
    PriorCondition,
    check_windows,
    finite_nonnegative,
    normal_cdf,
)

__all__ = ["TrendPrior"]


class TrendPrior(Prior):
    """``x_T = trend + sigma_f eps`` with ``eps ~ N(0, I)``.

    The trend of a window, per feature, is either

    - ``"butterworth"``: a zero-phase Butterworth low-pass (forward-backward filtering, so no
      lag), of order ``order`` and cutoff ``cutoff`` as a fraction of the Nyquist frequency. The
      filter runs in second-order sections (``scipy.signal.butter(..., output="sos")`` with
      ``sosfiltfilt``), numerically safer than the transfer-function form at low cutoffs and the
      same filter otherwise. The defaults (order 4, cutoff 2/7) are the reference's setting.
    - ``"polynomial"``: the least-squares polynomial of degree ``degree`` in time (exact on
      polynomials of that degree or less).

    At sampling time the trend is taken from ``condition.trends`` when given, otherwise it is
    the trend of a training window drawn uniformly (with replacement) from the fitted set. The
    noise scale ``sigma_f`` is ``noise_std`` when given, otherwise fitted per feature as the
    root-mean-square residual ``x - trend`` of the training windows (its maximum-likelihood
    value given the trends).

    Randomness: one standard-normal block ``(n, 1 + L C)``: the first number of each row picks
    the training trend (through the normal CDF, ``index = floor(Phi(z) N)``), the rest is
    ``eps``. The index number is drawn even when trends are given, so ``eps`` of sample ``i``
    does not depend on whether trends were given.

    Args:
        method: ``"butterworth"`` or ``"polynomial"``.
        order: Butterworth order (>= 1).
        cutoff: Butterworth cutoff in ``(0, 1)``, a fraction of the Nyquist frequency.
        degree: polynomial degree (>= 0, below the window length).
        noise_std: ``sigma >= 0`` for every feature, or ``None`` to fit it.

    Buffers (after :meth:`fit`):
        trends: ``(N, L, C)``, the training windows' trends.
        noise_std: ``(C,)``.
    """

    condition_fields = ("trends",)

    def __init__(
        self,
        method: Literal["butterworth", "polynomial"] = "butterworth",
        order: int = 4,
        cutoff: float = 2 / 7,
        degree: int = 3,
        noise_std: float | None = None,
    ) -> None:
        super().__init__()
        check_choice("method", method, ("butterworth", "polynomial"))
        check_int("order", order)
        check_int("degree", degree, minimum=0)
        cutoff = finite_nonnegative("cutoff", cutoff, positive=True)
        if cutoff >= 1:
            raise ValueError(f"cutoff must lie in (0, 1) (a fraction of Nyquist); got {cutoff}")
        self.method = method
        self.order = order
        self.cutoff = cutoff
        self.degree = degree
        self.given_noise_std = (
            None if noise_std is None else finite_nonnegative("noise_std", noise_std)
        )
        self.register_buffer("trends", torch.empty(0, 0, 0))
        self.register_buffer("noise_std", torch.empty(0))

    def trend(self, windows: Tensor) -> Tensor:
        """The trend of each window, ``(N, L, C) -> (N, L, C)`` (same dtype and device)."""
        check_windows(windows)
        length = windows.shape[1]
        if self.method == "polynomial":
            if self.degree >= length:
                raise ValueError(
                    f"degree must be below the window length {length}; got {self.degree}"
                )
            # Least squares on the monomials of t in [-1, 1] (well conditioned at low degree):
            # trend = V V^+ x, the orthogonal projection onto the polynomials of this degree.
            t = torch.linspace(-1.0, 1.0, length, dtype=torch.float64, device=windows.device)
            V = t[:, None] ** torch.arange(self.degree + 1, device=windows.device)
            projection = V @ torch.linalg.pinv(V)  # (L, L)
            trend = torch.einsum("lm,nmc->nlc", projection, windows.to(torch.float64))
            return trend.to(windows.dtype)
        sos = scipy.signal.butter(self.order, self.cutoff, btype="low", output="sos")
        x = windows.detach().to(torch.float64).cpu().numpy()
        try:
            trend = scipy.signal.sosfiltfilt(sos, x, axis=1)
        except ValueError as error:
            raise ValueError(
                f"window length {length} is too short for a zero-phase Butterworth filter of "
                f"order {self.order} (its edge padding needs more steps): {error}"
            ) from error
        return torch.from_numpy(np.ascontiguousarray(trend)).to(windows.device, windows.dtype)

    def _fit(self, windows: Tensor) -> None:
        trends = self.trend(windows)
        if self.given_noise_std is None:
            residual = (windows - trends).to(torch.float64)
            noise_std = residual.square().mean(dim=(0, 1)).sqrt()
        else:
            noise_std = torch.full((windows.shape[2],), self.given_noise_std, dtype=torch.float64)
        self.trends = trends
        self.noise_std = noise_std.to(windows.device, windows.dtype)

    def noise_shape(self, n: int) -> tuple[int, ...]:
        length, n_features = self._fitted_shape()
        return (n, 1 + length * n_features)

    def _sample(self, z: Tensor, condition: PriorCondition | None) -> Tensor:
        n = z.shape[0]
        length, n_features = self._fitted_shape()
        eps = z[:, 1:].reshape(n, length, n_features)
        if condition is not None:
            trends = condition.trends
        else:
            n_train = self.trends.shape[0]
            # Phi(z) ~ U(0, 1); computed in float64 so every index stays reachable for large N.
            u = normal_cdf(z[:, 0].to(torch.float64))
            index = (u * n_train).long().clamp_(0, n_train - 1)
            trends = self.trends[index]
        return trends + self.noise_std * eps

    def extra_repr(self) -> str:
        detail = (
            f"order={self.order}, cutoff={self.cutoff:.4g}"
            if self.method == "butterworth"
            else f"degree={self.degree}"
        )
        return f"method={self.method!r}, {detail}, " + super().extra_repr()
