"""Embeddings of the diffusion time, of the position along a window and of the input values.

- :class:`SinusoidalTimeEmbedding`: a fixed sinusoidal code of the (possibly raw, unscaled)
  diffusion time ``t``; the time-conditioned layers learn their own maps from it.
- :class:`LearnedPositionalEncoding`: one learned vector per step of the window, added.
- :class:`InputEmbedding`: a short 1-D convolution along time from ``C`` features to ``d_model``.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor, nn

__all__ = [
    "InputEmbedding",
    "LearnedPositionalEncoding",
    "SinusoidalTimeEmbedding",
]


class SinusoidalTimeEmbedding(nn.Module):
    """``t (B,) -> (B, dim)``: ``[sin(s t w_i), cos(s t w_i)]``, ``w_i = P^(-i / (dim/2 - 1))``.

    ``P`` is ``max_period`` (10000), so the frequencies run geometrically from 1 to ``1 / P``.

    ``scale`` (``s``) multiplies ``t`` first. TimeBridge's best runs feed the raw bridge time
    ``t in [1e-4, 1]`` (``scale = 1``); a diffusion-step count would use ``scale = 1000``.
    An odd ``dim`` gets one trailing zero so every width is allowed.
    """

    def __init__(self, dim: int, scale: float = 1.0, max_period: float = 10_000.0) -> None:
        super().__init__()
        if dim < 1:
            raise ValueError(f"SinusoidalTimeEmbedding: dim must be >= 1, got {dim}")
        if not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"SinusoidalTimeEmbedding: scale must be positive, got {scale}")
        self.dim = dim
        self.scale = scale
        self.max_period = max_period

    def forward(self, t: Tensor) -> Tensor:
        """``t (B,)`` floating -> ``(B, dim)`` in ``t``'s dtype and device."""
        half = self.dim // 2
        # Frequencies are built per call in t's dtype so float64 runs stay float64 throughout.
        exponent = torch.arange(half, dtype=t.dtype, device=t.device) / max(half - 1, 1)
        freqs = torch.exp(-math.log(self.max_period) * exponent)
        angles = rearrange(t * self.scale, "b -> b 1") * rearrange(freqs, "f -> 1 f")
        emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
        if self.dim % 2:
            emb = nn.functional.pad(emb, (0, 1))
        return emb


class LearnedPositionalEncoding(nn.Module):
    """Adds one learned ``d_model`` vector per step: ``(B, L, d_model) -> (B, L, d_model)``."""

    def __init__(self, length: int, d_model: int, dropout: float = 0.0) -> None:
        super().__init__()
        # Small init (as for token embeddings) so the positions start as a mild perturbation.
        self.weight = nn.Parameter(torch.empty(length, d_model).normal_(std=0.02))
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: Tensor) -> Tensor:
        """``h (B, L, d_model)`` -> ``(B, L, d_model)``."""
        return self.dropout(h + self.weight)


class InputEmbedding(nn.Module):
    """``x (B, L, C) -> (B, L, d_model)`` by a width-``kernel_size`` convolution along time.

    The kernel mixes each step with its neighbours, a local smoothing that plain per-step linear
    maps lack; zero ("same") padding keeps the length and, unlike circular padding, does not tie
    the window's last step to its first.
    """

    def __init__(self, n_features: int, d_model: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"InputEmbedding: kernel_size must be odd and >= 1, got {kernel_size}")
        self.conv = nn.Conv1d(n_features, d_model, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor) -> Tensor:
        """``x (B, L, C)`` -> ``(B, L, d_model)``."""
        h = self.conv(rearrange(x, "b l c -> b c l"))
        return rearrange(h, "b d l -> b l d")
