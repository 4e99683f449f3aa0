"""An exponential moving average of a network's weights, used for sampling (timebridge.md,
"Optimisation": decay 0.995, updated every 10 optimizer steps)."""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["EMA"]


class EMA(nn.Module):
    """Holds ``average``, a frozen copy of ``network`` whose weights follow
    ``average <- decay * average + (1 - decay) * network`` at every :meth:`update`.

    Buffers (batch-norm statistics and the like) are copied, not averaged. The copy is a
    submodule, so it is saved in the owning module's ``state_dict`` and moves with it.

    Args:
        network: the trained network.
        decay: in ``[0, 1)``.
    """

    def __init__(self, network: nn.Module, decay: float = 0.995) -> None:
        super().__init__()
        if not 0 <= decay < 1:
            raise ValueError(f"ema decay must lie in [0, 1); got {decay!r}")
        self.decay = float(decay)
        self.average = copy.deepcopy(network).requires_grad_(False)

    @torch.no_grad()
    def update(self, network: nn.Module) -> None:
        """One averaging step towards the current weights of ``network``."""
        averaged = list(self.average.parameters())
        current = [p.detach() for p in network.parameters()]
        # One fused kernel over all tensors (no per-parameter launches, no host sync).
        torch._foreach_lerp_(averaged, current, 1.0 - self.decay)
        for mine, theirs in zip(self.average.buffers(), network.buffers(), strict=True):
            mine.copy_(theirs)

    def forward(self, *args: object, **kwargs: object) -> object:
        return self.average(*args, **kwargs)
