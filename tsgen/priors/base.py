"""The prior contract of TimeBridge (timebridge.md, "Priors"): a module fitted on training windows
that draws ``x_T`` for the bridge.

Windows are float tensors ``(N, L, C)`` in model space (batch, length, channels). Every prior

- is fitted with :meth:`Prior.fit` on the training windows; its fitted state lives in registered
  buffers, so it travels in a checkpoint's ``state_dict`` and loads into a fresh, unfitted
  instance of the same class;
- draws *all* of its randomness as one standard-normal block of :meth:`Prior.noise_shape` through
  the noise protocol (``tsgen.sde.noise.standard_normal``), so with a ``PerSampleNoise`` sample
  ``i`` is the same whatever the batch;
- takes an optional :class:`PriorCondition` (observed values and mask, or trends) where its
  definition uses one.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from tsgen._validation import check_int
from tsgen.sde.noise import NoiseSource, standard_normal

__all__ = [
    "NotFittedError",
    "Prior",
    "PriorCondition",
    "check_windows",
    "finite_nonnegative",
    "normal_cdf",
    "per_feature",
]


class NotFittedError(ValueError):
    """A prior was sampled (or queried for fitted state) before :meth:`Prior.fit`."""


@dataclass(frozen=True)
class PriorCondition:
    """What a conditional prior is conditioned on; every field is ``(n, L, C)`` or ``None``.

    Attributes:
        values: observed values; entries where ``mask`` is False are ignored (NaN allowed there).
        mask: bool, True where ``values`` is observed. Given together with ``values``.
        trends: one trend per sample (the trend prior's mean).
    """

    values: Tensor | None = None
    mask: Tensor | None = None
    trends: Tensor | None = None

    def __post_init__(self) -> None:
        shapes = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            if not isinstance(value, Tensor) or value.ndim != 3:
                raise TypeError(
                    f"PriorCondition.{field.name} must be a tensor of shape (n, L, C); got "
                    f"{_describe(value)}"
                )
            shapes[field.name] = tuple(value.shape)
        if (self.values is None) != (self.mask is None):
            raise ValueError(
                "PriorCondition.values and PriorCondition.mask must be given together; got "
                f"values={_describe(self.values)}, mask={_describe(self.mask)}"
            )
        if self.mask is not None and self.mask.dtype != torch.bool:
            raise TypeError(f"PriorCondition.mask must be a bool tensor; got {self.mask.dtype}")
        for name in ("values", "trends"):
            value = getattr(self, name)
            if value is not None and not value.is_floating_point():
                raise TypeError(f"PriorCondition.{name} must be a float tensor; got {value.dtype}")
        if len(set(shapes.values())) > 1:
            raise ValueError(f"PriorCondition fields must share one shape (n, L, C); got {shapes}")
        if self.trends is not None and not bool(torch.isfinite(self.trends).all()):
            raise ValueError("PriorCondition.trends must be finite; got NaN or inf entries")

    @property
    def given(self) -> tuple[str, ...]:
        """Names of the fields that are set."""
        return tuple(f.name for f in fields(self) if getattr(self, f.name) is not None)


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return "None" if value is None else type(value).__name__


def check_windows(windows: Tensor, name: str = "windows", min_windows: int = 1) -> None:
    """Raise unless ``windows`` is a finite float tensor ``(N, L, C)`` with ``N >= min_windows``."""
    if not isinstance(windows, Tensor):
        raise TypeError(f"{name} must be a float tensor (N, L, C); got {_describe(windows)}")
    if not windows.is_floating_point():
        raise TypeError(f"{name} must be a float tensor (N, L, C); got dtype {windows.dtype}")
    if windows.ndim != 3 or min(windows.shape, default=0) < 1:
        raise ValueError(
            f"{name} must have shape (N, L, C) with N, L, C >= 1; got {tuple(windows.shape)}"
        )
    if windows.shape[0] < min_windows:
        raise ValueError(f"{name} must hold at least {min_windows} windows; got {windows.shape[0]}")
    if not bool(torch.isfinite(windows).all()):
        bad = int((~torch.isfinite(windows)).sum())
        raise ValueError(f"{name} must be finite; got {bad} NaN or infinite entries")


def per_feature(name: str, value: float | Sequence[float], n_features: int) -> Tensor:
    """A hyper-parameter given as one float or one float per feature, as a float64 ``(C,)``."""
    values = torch.as_tensor(
        [float(value)] if isinstance(value, (int, float)) else [float(v) for v in value],
        dtype=torch.float64,
    )
    if values.numel() == 1:
        return values.expand(n_features).clone()
    if values.numel() != n_features:
        raise ValueError(
            f"{name} must be one float or one per feature ({n_features}); got {values.numel()}"
        )
    return values


class Prior(nn.Module, ABC):
    """Base class: ``fit`` on ``(N, L, C)`` windows, then ``sample(n, noise, condition)``.

    Subclasses implement :meth:`_fit` (store fitted state with ``register_buffer``) and
    :meth:`_sample` (map the standard-normal block to samples). The fitted state adopts the
    windows' dtype and device (the whole module is moved there by :meth:`fit`); move it later
    with ``.to()`` like any module. Samples have the dtype and device of the module's buffers.

    Class attributes:
        condition_fields: the :class:`PriorCondition` fields the prior reads (empty: it takes
            no condition).
        condition_required: whether ``sample`` needs a condition.
    """

    condition_fields: ClassVar[tuple[str, ...]] = ()
    condition_required: ClassVar[bool] = False
    min_windows: ClassVar[int] = 1

    def __init__(self) -> None:
        super().__init__()
        # (L, C) of the fitted windows, zeros until fit; a buffer so a checkpoint restores it.
        self.register_buffer("window_shape", torch.zeros(2, dtype=torch.long))
        # Carries the module's float dtype and device for priors without float state.
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)
        self._shape: tuple[int, int] | None = None

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` (or a fitted state dict) has set the prior up."""
        return self._shape is not None

    @property
    def length(self) -> int:
        """``L``, the window length seen by :meth:`fit`."""
        return self._fitted_shape()[0]

    @property
    def n_features(self) -> int:
        """``C``, the number of features seen by :meth:`fit`."""
        return self._fitted_shape()[1]

    def _fitted_shape(self) -> tuple[int, int]:
        if self._shape is None:
            raise NotFittedError(
                f"{type(self).__name__} is not fitted: call fit(windows) with the training "
                "windows (N, L, C) before sample()"
            )
        return self._shape

    def fit(self, windows: Tensor) -> Prior:
        """Fit on training windows ``(N, L, C)`` (finite floats); returns ``self``."""
        check_windows(windows, min_windows=self.min_windows)
        self.to(device=windows.device, dtype=windows.dtype)
        windows = windows.detach()
        self._fit(windows)
        self.window_shape = torch.tensor(windows.shape[1:], dtype=torch.long, device=windows.device)
        self._shape = (int(windows.shape[1]), int(windows.shape[2]))
        return self

    @abstractmethod
    def _fit(self, windows: Tensor) -> None:
        """Compute and register the fitted state from validated windows ``(N, L, C)``."""

    def noise_shape(self, n: int) -> tuple[int, ...]:
        """Shape of the one standard-normal block that :meth:`sample` draws for ``n`` samples."""
        length, n_features = self._fitted_shape()
        return (n, length, n_features)

    def sample(
        self,
        n: int,
        noise: NoiseSource | Tensor | None = None,
        condition: PriorCondition | None = None,
    ) -> Tensor:
        """Draw ``n`` prior samples ``(n, L, C)``.

        Args:
            n: number of samples.
            noise: where the one standard-normal block of :meth:`noise_shape` comes from: a
                ``NoiseSource`` (``PerSampleNoise`` with ``n`` seeds makes sample ``i``
                independent of the batch), the block itself, or ``None`` (global generator).
            condition: required by priors that need one, refused by priors that take none.
        """
        self._fitted_shape()
        check_int("n", n)
        condition = self._check_condition(n, condition)
        dtype, device = self._anchor.dtype, self._anchor.device
        z = standard_normal(self.noise_shape(n), dtype, device, noise).to(
            dtype=dtype, device=device
        )
        return self._sample(z, condition)

    @abstractmethod
    def _sample(self, z: Tensor, condition: PriorCondition | None) -> Tensor:
        """Samples ``(n, L, C)`` from the standard-normal block ``z`` of :meth:`noise_shape`."""

    def _check_condition(self, n: int, condition: PriorCondition | None) -> PriorCondition | None:
        """Validate ``condition`` against this prior and move it to the module's dtype/device."""
        name = type(self).__name__
        if condition is None:
            if self.condition_required:
                raise ValueError(
                    f"{name} needs a condition: pass condition=PriorCondition("
                    f"{', '.join(f'{f}=...' for f in self.condition_fields)}) of shape (n, L, C)"
                )
            return None
        if not isinstance(condition, PriorCondition):
            raise TypeError(
                f"condition must be a PriorCondition or None; got {_describe(condition)}"
            )
        if not self.condition_fields:
            raise ValueError(f"{name} takes no condition; got one with {condition.given}")
        extra = [f for f in condition.given if f not in self.condition_fields]
        if extra or not condition.given:
            raise ValueError(
                f"{name} reads the condition fields {self.condition_fields}; got {condition.given}"
            )
        expected = (n, *self._fitted_shape())
        shape = next(tuple(getattr(condition, f).shape) for f in condition.given)
        if shape != expected:
            raise ValueError(
                f"{name}: condition fields must have shape (n, L, C) = {expected}; got {shape}"
            )
        dtype, device = self._anchor.dtype, self._anchor.device
        moved = {
            f: getattr(condition, f).to(device=device, dtype=None if f == "mask" else dtype)
            for f in condition.given
        }
        return PriorCondition(**moved)

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Tensor],
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # Fitted buffers have data-dependent shapes (empty before fit): take the checkpoint's
        # shapes, keeping this module's dtype and device (load_state_dict then copies into them).
        for name, buffer in self._buffers.items():
            key = prefix + name
            if buffer is not None and key in state_dict and state_dict[key].shape != buffer.shape:
                self._buffers[name] = torch.empty(
                    state_dict[key].shape, dtype=buffer.dtype, device=buffer.device
                )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        length, n_features = (int(v) for v in self.window_shape.tolist())
        self._shape = (length, n_features) if length > 0 else None

    def extra_repr(self) -> str:
        shape = (
            "unfitted"
            if self._shape is None
            else f"length={self.length}, n_features={self.n_features}"
        )
        return shape


def normal_cdf(z: Tensor) -> Tensor:
    """``Phi(z)``, the standard-normal CDF: maps a normal draw to a uniform on (0, 1)."""
    return torch.special.ndtr(z)


def finite_nonnegative(name: str, value: float, *, positive: bool = False) -> float:
    """``value`` as a float, or a ``ValueError`` naming ``name`` if not finite and >= 0 (> 0)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float; got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        kind = "positive" if positive else "non-negative"
        raise ValueError(f"{name} must be finite and {kind}; got {value}")
    return value
