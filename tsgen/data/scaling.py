"""Scaling between original units, ``[0, 1]`` (where metrics are computed) and model space
``[-1, 1]``.

- :class:`MinMaxScaler`: per-feature min-max fitted once on the training split; an ``nn.Module``
  whose parameters are buffers, so it travels inside a model's checkpoint and ``generate`` can
  return original units.
- :func:`fit_window_scale`: per-window (instance) min-max from each window's own observed entries,
  for conditional tasks where later data leave the training range (see timebridge.md, "Data
  protocol").

Neither clamps: values outside the fitted range map outside ``[-1, 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from tsgen._validation import check_int

__all__ = ["MinMaxScaler", "WindowScale", "fit_window_scale"]


def _as_tensor(x: Tensor | np.ndarray, arg: str) -> Tensor:
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    if not isinstance(x, Tensor):
        raise TypeError(f"{arg} must be a tensor or NumPy array; got {type(x).__name__}")
    return x


class MinMaxScaler(nn.Module):
    """Per-feature min-max scaling, fitted on the training split only.

    Model space is ``2 (x - min) / (max - min) - 1``. The minima and maxima are float64 buffers
    (prices and volumes need more than float32's 7 digits to come back exactly), cast to the
    input's dtype and device on use; NaN entries are ignored by :meth:`fit`.

    Args:
        n_features: the number of features (the last dimension of every input). Known before
            fitting so that the buffers have their final shape and ``load_state_dict`` works on
            a freshly constructed scaler.
    """

    data_min: Tensor
    data_max: Tensor
    fitted: Tensor

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.n_features = check_int("n_features", n_features)
        self.register_buffer("data_min", torch.full((n_features,), torch.nan, dtype=torch.float64))
        self.register_buffer("data_max", torch.full((n_features,), torch.nan, dtype=torch.float64))
        self.register_buffer("fitted", torch.tensor(False))

    def _check(self, x: Tensor | np.ndarray, arg: str, fitting: bool = False) -> Tensor:
        x = _as_tensor(x, arg)
        if not fitting and not bool(self.fitted):
            raise ValueError(
                "MinMaxScaler is not fitted; call fit(train) on the training split first"
            )
        if x.ndim < 1 or x.shape[-1] != self.n_features or not x.is_floating_point():
            raise ValueError(
                f"{arg} must be a floating tensor of shape (..., {self.n_features}); got shape "
                f"{tuple(x.shape)} and dtype {x.dtype}"
            )
        return x

    @torch.no_grad()
    def fit(
        self,
        train: Tensor | np.ndarray,
        *,
        names: list[str] | None = None,
        where: str = "train",
    ) -> MinMaxScaler:
        """Fit the per-feature minima and maxima of ``train``: ``(N, L, C)`` windows or a
        ``(rows, C)`` series, NaN ignored. Returns ``self``.

        Args:
            train: the data fitted on.
            names: the features' names for error messages (default: their positions).
            where: how error messages refer to ``train`` (a datamodule names its source and
                split).

        Raises:
            ValueError: for another shape, an infinite value, or a feature that is constant or
                has no observed values in ``train`` (it cannot be scaled).
        """
        x = self._check(train, "train", fitting=True)
        if x.ndim not in (2, 3):
            raise ValueError(f"train must be (N, L, C) or (rows, C); got shape {tuple(x.shape)}")
        x = x.detach().to(torch.float64).reshape(-1, self.n_features)
        labels = list(range(self.n_features)) if names is None else names
        infinite = [labels[c] for c in x.isinf().any(dim=0).nonzero().flatten().tolist()]
        if infinite:
            raise ValueError(f"{where}: feature(s) {infinite} hold inf; min-max scaling needs "
                             "finite values")  # fmt: skip
        nan = x.isnan()
        low = x.masked_fill(nan, torch.inf).amin(dim=0)
        high = x.masked_fill(nan, -torch.inf).amax(dim=0)
        bad = [labels[c] for c in (high <= low).nonzero().flatten().tolist()]
        if bad:
            raise ValueError(
                f"{where}: feature(s) {bad} are constant or have no observed values; min-max "
                "scaling needs at least two distinct values per feature"
            )
        self.data_min.copy_(low)
        self.data_max.copy_(high)
        self.fitted.fill_(True)
        return self

    def _range(self, x: Tensor) -> tuple[Tensor, Tensor]:
        low = self.data_min.to(dtype=x.dtype, device=x.device)
        return low, self.data_max.to(dtype=x.dtype, device=x.device) - low

    def to_unit(self, x: Tensor | np.ndarray) -> Tensor:
        """Original units -> ``[0, 1]`` (on the training range). ``x``: ``(..., C)``."""
        x = self._check(x, "x")
        low, span = self._range(x)
        return (x - low) / span

    def from_unit(self, u: Tensor | np.ndarray) -> Tensor:
        """``[0, 1]`` -> original units. ``u``: ``(..., C)``."""
        u = self._check(u, "u")
        low, span = self._range(u)
        return u * span + low

    def transform(self, x: Tensor | np.ndarray) -> Tensor:
        """Original units -> model space ``[-1, 1]``. ``x``: ``(..., C)``."""
        return self.to_unit(x) * 2.0 - 1.0

    def inverse_transform(self, y: Tensor | np.ndarray) -> Tensor:
        """Model space -> original units. ``y``: ``(..., C)``."""
        y = self._check(y, "y")
        return self.from_unit((y + 1.0) / 2.0)

    def extra_repr(self) -> str:
        return f"n_features={self.n_features}"


@dataclass(frozen=True)
class WindowScale:
    """Per-window, per-feature min-max parameters: ``low`` and ``high`` of shape ``(N, 1, C)``,
    broadcast over the window length. Model space is ``2 (x - low) / (high - low) - 1``."""

    low: Tensor
    high: Tensor

    def transform(self, x: Tensor) -> Tensor:
        """Original units ``(N, L, C)`` -> each window's model space."""
        return (x - self.low) / (self.high - self.low) * 2.0 - 1.0

    def inverse_transform(self, y: Tensor) -> Tensor:
        """Each window's model space ``(N, L, C)`` (e.g. predictions) -> original units."""
        return (y + 1.0) / 2.0 * (self.high - self.low) + self.low


@torch.no_grad()
def fit_window_scale(
    x: Tensor,
    mask: Tensor | None = None,
    span: Tensor | None = None,
    min_span: Tensor | None = None,
) -> WindowScale:
    """Instance scaling: min-max per window and feature over the observed entries only.

    Args:
        x: ``(N, L, C)`` windows in original units; unobserved entries may hold anything
            (NaN included).
        mask: ``(N, L, C)`` bool, True where observed; ``None`` means every non-NaN entry.
        span: ``(C,)`` a typical range of each feature in original units (e.g. the global
            scaler's ``data_max - data_min``), used where a window has no range of its own;
            ``None`` means 2, i.e. original units.
        min_span: ``(C,)`` the narrowest range a window's feature is scaled over, in original
            units; a narrower observed range is widened about its midpoint. With many entries
            hidden, the observed range can be a small part of the window's, and the hidden
            values then land far outside ``[-1, 1]`` (docs/timebridge.md, "Imputation on
            ETTh1"). ``None``: no floor.

    Fallback, where a window's feature has fewer than two distinct observed values: with one
    value ``v`` (seen once or repeated), ``low = v - span / 2`` and ``high = v + span / 2``, so
    ``v`` maps to 0 and the rest of the window is scaled like the feature at large (a unit span
    would blow a feature such as trading volume, ~1e7, up to ~1e6 in model space); with no
    observed value, ``v = 0``. Either way the parameters are finite and the round trip exact.

    Returns:
        the parameters; ``scale.transform(x)`` gives model space, ``scale.inverse_transform``
        maps predictions back.
    """
    if not isinstance(x, Tensor) or x.ndim != 3 or not x.is_floating_point():
        raise ValueError(
            "x must be a floating tensor of windows (N, L, C); got "
            f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}"
        )
    observed = ~x.isnan()
    if mask is not None:
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.shape != x.shape:
            raise ValueError(
                f"mask must be a bool tensor of the windows' shape {tuple(x.shape)}; got "
                f"{getattr(mask, 'dtype', type(mask).__name__)} of shape "
                f"{tuple(getattr(mask, 'shape', ()))}"
            )
        observed = observed & mask
    low, high = _observed_min_max(x, observed)
    any_observed = observed.any(dim=1, keepdim=True)
    degenerate = high <= low  # one distinct value, or none (then low = inf > high = -inf)
    centre = torch.where(any_observed, low, torch.zeros_like(low))
    if span is None:
        half = torch.ones((), dtype=x.dtype, device=x.device)
    else:
        _check_span("span", span, x.shape[2])
        half = span.to(dtype=x.dtype, device=x.device) / 2
    low, high = (
        torch.where(degenerate, centre - half, low),
        torch.where(degenerate, centre + half, high),
    )
    if min_span is not None:
        _check_span("min_span", min_span, x.shape[2], "non-negative")
        floor = min_span.to(dtype=x.dtype, device=x.device) / 2
        middle, half_range = (high + low) / 2, ((high - low) / 2).clamp(min=floor)
        low, high = middle - half_range, middle + half_range
    return WindowScale(low=low, high=high)


@torch.no_grad()
def median_window_span(x: Tensor, observed: Tensor) -> Tensor:
    """Each feature's median range over windows ``(N, L, C)`` of their ``observed`` entries
    (windows with fewer than two observed entries of a feature left out; 0 where none has
    two), ``(C,)``: the typical window range that ``fit_window_scale``'s ``min_span`` is a
    fraction of."""
    low, high = _observed_min_max(x, observed)
    enough = observed.sum(dim=1, keepdim=True) >= 2
    spans = torch.where(enough, high - low, torch.full_like(low, torch.nan))
    return spans.squeeze(1).nanmedian(dim=0).values.nan_to_num(0.0)


def _observed_min_max(x: Tensor, observed: Tensor) -> tuple[Tensor, Tensor]:
    """``(N, 1, C)`` minimum and maximum of each window's observed entries (``inf`` and
    ``-inf`` where a feature has none)."""
    low = x.masked_fill(~observed, torch.inf).amin(dim=1, keepdim=True)
    high = x.masked_fill(~observed, -torch.inf).amax(dim=1, keepdim=True)
    return low, high


def _check_span(name: str, span: object, n_features: int, minimum: str = "positive") -> None:
    ok = isinstance(span, Tensor) and span.shape == (n_features,)
    if ok:
        ok = bool((span > 0).all()) if minimum == "positive" else bool((span >= 0).all())
        ok = ok and bool(torch.isfinite(span).all())
    if not ok:
        raise ValueError(
            f"{name} must be a finite {minimum} tensor of shape (C,) = ({n_features},); got "
            f"{tuple(span.shape) if isinstance(span, Tensor) else type(span).__name__}"
        )
