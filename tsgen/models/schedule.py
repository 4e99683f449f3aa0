"""The learning-rate schedule of the TimeBridge / Diffusion-TS reference (timebridge.md,
"Optimisation"): a linear warm-up, then reduce-on-plateau driven by the training loss, stepped
once per optimizer step."""

from __future__ import annotations

import math
from typing import Any

from torch.optim import Optimizer

__all__ = ["WarmupReduceOnPlateau"]


class WarmupReduceOnPlateau:
    """Linear warm-up from ``warmup_lr`` to ``lr`` over ``warmup_steps`` optimizer steps, then
    multiply the rate by ``factor`` whenever the loss has not improved on its best value by the
    relative ``threshold`` for ``patience`` steps (never below ``min_lr``).

    ``step(loss)`` is called once per optimizer step with that step's training loss; the
    schedule's whole state is in :meth:`state_dict`, so a resumed run continues exactly.

    Args:
        optimizer: whose parameter groups' ``lr`` this schedule sets.
        lr: the rate reached at the end of the warm-up.
        warmup_lr: the rate of the first step.
        warmup_steps: length of the warm-up (0: start at ``lr``).
        factor: the reduction factor in ``(0, 1)``.
        patience: steps without improvement before a reduction.
        threshold: relative improvement that counts (``loss < best * (1 - threshold)``).
        min_lr: the floor of the rate.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        lr: float,
        warmup_lr: float,
        warmup_steps: int,
        factor: float = 0.5,
        patience: int = 2000,
        threshold: float = 0.1,
        min_lr: float = 1e-5,
    ) -> None:
        for name, value in (("lr", lr), ("warmup_lr", warmup_lr), ("min_lr", min_lr)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite float; got {value!r}")
        if not 0 < factor < 1:
            raise ValueError(f"factor must lie in (0, 1); got {factor!r}")
        if not 0 <= threshold < 1:
            raise ValueError(f"threshold must lie in [0, 1); got {threshold!r}")
        if warmup_steps < 0 or patience < 0:
            raise ValueError(
                f"warmup_steps and patience must be >= 0; got {warmup_steps!r}, {patience!r}"
            )
        self.optimizer = optimizer
        self.target_lr, self.warmup_lr, self.warmup_steps = lr, warmup_lr, warmup_steps
        self.factor, self.patience, self.threshold, self.min_lr = (
            factor,
            patience,
            threshold,
            min_lr,
        )
        self.steps = 0
        self.best = math.inf
        self.bad_steps = 0
        self.lr = warmup_lr if warmup_steps > 0 else lr
        self._apply()

    def step(self, loss: float) -> None:
        """Advance by one optimizer step whose training loss was ``loss``."""
        self.steps += 1
        if self.steps < self.warmup_steps:
            self.lr = self.warmup_lr + (self.target_lr - self.warmup_lr) * (
                self.steps / self.warmup_steps
            )
        elif self.steps == self.warmup_steps:
            self.lr = self.target_lr
        else:
            # Plateau detection starts after the warm-up, as in the reference.
            if loss < self.best * (1 - self.threshold):
                self.best, self.bad_steps = loss, 0
            else:
                self.bad_steps += 1
            if self.bad_steps > self.patience:
                self.lr = max(self.lr * self.factor, self.min_lr)
                self.bad_steps = 0
        self._apply()

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    def get_last_lr(self) -> list[float]:
        """The current rate of every parameter group (for Lightning's ``LearningRateMonitor``)."""
        return [self.lr for _ in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {
            key: getattr(self, key)
            for key in ("steps", "best", "bad_steps", "lr", "target_lr", "warmup_lr")
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
        self._apply()
