"""The interpretable trend + season transformer (after Diffusion-TS, Yuan & Qiao, ICLR 2024).

A denoiser ``D(x_t, t)`` for regular windows ``(B, L, C)`` whose output is an explicit sum

    output = trend + season + residual

- the input is embedded by a short convolution along time plus learned positional encodings;
- an encoder of self-attention blocks and a decoder of self- plus cross-attention blocks, every
  normalisation an adaptive LayerNorm whose scale and shift are functions of ``t``;
- each decoder block also emits trend and season features; their sums over the blocks feed
- a trend head: per-channel coefficients of the Legendre polynomials of degree ``<= trend_degree``
  on normalised time, so the trend is a low-degree polynomial by construction;
- a season head: per-channel signals of which only the ``k`` strongest non-constant Fourier
  frequencies are kept (``k = max(1, floor(ln n_freq))`` by default), so the season is a sum of
  ``k`` sinusoids with zero mean by construction;
- a residual head on the decoder's last hidden state, for what neither explains.

The network knows nothing of bridges or noise schedules: it maps ``(x, t)`` to a tensor of
``x``'s shape, so any other backbone with that signature can replace it from the config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, overload

import torch
from einops import einsum, rearrange
from torch import Tensor, nn

from tsgen._validation import check_int
from tsgen.nn.embeddings import InputEmbedding, LearnedPositionalEncoding, SinusoidalTimeEmbedding

__all__ = [
    "AdaptiveLayerNorm",
    "DecoderBlock",
    "EncoderBlock",
    "FeedForward",
    "MultiHeadAttention",
    "SeasonHead",
    "TrendHead",
    "TrendSeasonComponents",
    "TrendSeasonTransformer",
    "default_season_top_k",
    "legendre_basis",
    "season_frequencies",
]


def legendre_basis(
    length: int,
    degree: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """Legendre polynomials ``P_0 .. P_degree`` on ``length`` equispaced points of ``[-1, 1]``.

    Returns ``(degree + 1, length)``. Legendre rather than monomial powers because they are
    nearly orthogonal on the grid, so the learned coefficients stay well conditioned.
    """
    # Built in float64 and cast at the end so the float32 basis is as exact as float32 allows.
    tau = torch.linspace(-1.0, 1.0, length, dtype=torch.float64, device=device)
    rows = [torch.ones_like(tau)]
    if degree >= 1:
        rows.append(tau)
    for n in range(1, degree):
        # Bonnet's recursion: (n + 1) P_{n+1} = (2n + 1) tau P_n - n P_{n-1}.
        rows.append(((2 * n + 1) * tau * rows[n] - n * rows[n - 1]) / (n + 1))
    return torch.stack(rows).to(dtype)


def season_frequencies(length: int) -> int:
    """Number of candidate seasonal frequencies of a window: bins ``1 .. (length - 1) // 2``.

    The constant bin belongs to the trend, and the Nyquist bin of an even length is excluded
    because it has no phase (a sampled ``cos(pi n)``), so every candidate is a full sinusoid.
    """
    return (length - 1) // 2


def default_season_top_k(length: int) -> int:
    """``max(1, floor(ln n_freq))`` kept frequencies (``0`` when a window has no candidate).

    Diffusion-TS keeps ``floor(ln n_freq)`` (2 at ``L = 24``); the floor of 1 keeps a seasonal
    term for short windows (``L < 17``), where the logarithm alone would remove it.
    """
    n_freq = season_frequencies(length)
    if n_freq < 1:
        return 0
    return max(1, math.floor(math.log(n_freq)))


@dataclass(frozen=True)
class TrendSeasonComponents:
    """The decomposition returned by ``TrendSeasonTransformer(..., return_components=True)``.

    Every field is ``(B, L, C)``; ``output = trend + season + residual`` exactly (it is computed
    as that sum).
    """

    trend: Tensor
    season: Tensor
    residual: Tensor
    output: Tensor


class AdaptiveLayerNorm(nn.Module):
    """LayerNorm whose scale and shift are functions of the time embedding.

    ``h (B, L, d)``, ``temb (B, d_time)`` -> ``LN(h) * (1 + scale(temb)) + shift(temb)``; with the
    ``1 +`` a zero modulation is the plain normalisation.
    """

    def __init__(self, d_model: int, d_time: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model, elementwise_affine=False)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(d_time, 2 * d_model))

    def forward(self, h: Tensor, temb: Tensor) -> Tensor:
        """``h (B, L, d)``, ``temb (B, d_time)`` -> ``(B, L, d)``."""
        scale, shift = rearrange(self.modulation(temb), "b (two d) -> two b 1 d", two=2)
        return self.norm(h) * (1 + scale) + shift


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention of ``h`` (queries) over ``context`` (keys and values).

    ``h (B, L, d)``, ``context (B, S, d)`` -> ``(B, L, d)``; self-attention when ``context`` is
    ``h``. No mask: every step of a window sees every other (the denoiser is not causal).
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.dropout = dropout
        self.to_q = nn.Linear(d_model, d_model)
        self.to_kv = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Sequential(nn.Linear(d_model, d_model), nn.Dropout(dropout))

    def forward(self, h: Tensor, context: Tensor) -> Tensor:
        """``h (B, L, d)``, ``context (B, S, d)`` -> ``(B, L, d)``."""
        q = rearrange(self.to_q(h), "b l (n e) -> b n l e", n=self.n_heads)
        k, v = rearrange(self.to_kv(context), "b s (two n e) -> two b n s e", two=2, n=self.n_heads)
        attended = nn.functional.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out(rearrange(attended, "b n l e -> b l (n e)"))


class FeedForward(nn.Module):
    """Per-step MLP ``d -> mlp_ratio * d -> d`` with GELU: ``(B, L, d) -> (B, L, d)``."""

    def __init__(self, d_model: int, mlp_ratio: int, dropout: float = 0.0) -> None:
        super().__init__()
        hidden = mlp_ratio * d_model
        self.net = nn.Sequential(
            nn.Linear(d_model, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, d_model),
            nn.Dropout(dropout),
        )

    def forward(self, h: Tensor) -> Tensor:
        """``h (B, L, d)`` -> ``(B, L, d)``."""
        return self.net(h)


class EncoderBlock(nn.Module):
    """Pre-norm block: time-conditioned self-attention, then a time-conditioned MLP."""

    def __init__(
        self, d_model: int, n_heads: int, mlp_ratio: int, dropout: float, d_time: int
    ) -> None:
        super().__init__()
        self.norm_attn = AdaptiveLayerNorm(d_model, d_time)
        self.attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.norm_mlp = AdaptiveLayerNorm(d_model, d_time)
        self.mlp = FeedForward(d_model, mlp_ratio, dropout)

    def forward(self, h: Tensor, temb: Tensor) -> Tensor:
        """``h (B, L, d)``, ``temb (B, d_time)`` -> ``(B, L, d)``."""
        normed = self.norm_attn(h, temb)
        h = h + self.attn(normed, normed)
        return h + self.mlp(self.norm_mlp(h, temb))


class DecoderBlock(EncoderBlock):
    """Pre-norm block: self-attention, cross-attention to the encoder, then an MLP (an
    :class:`EncoderBlock` with cross-attention inserted before its MLP).

    After the attentions the hidden state is projected into trend and season features, which the
    network sums over the blocks and hands to its trend and season heads; the MLP then updates the
    hidden state for the next block.
    """

    def __init__(
        self, d_model: int, n_heads: int, mlp_ratio: int, dropout: float, d_time: int
    ) -> None:
        super().__init__(d_model, n_heads, mlp_ratio, dropout, d_time)
        self.norm_cross = AdaptiveLayerNorm(d_model, d_time)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.to_components = nn.Linear(d_model, 2 * d_model)

    def forward(self, h: Tensor, memory: Tensor, temb: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``h (B, L, d)``, encoder ``memory (B, L, d)``, ``temb (B, d_time)`` ->
        ``(hidden, trend_features, season_features)``, each ``(B, L, d)``."""
        normed = self.norm_attn(h, temb)
        h = h + self.attn(normed, normed)
        h = h + self.cross_attn(self.norm_cross(h, temb), memory)
        trend, season = rearrange(self.to_components(h), "b l (two d) -> two b l d", two=2)
        h = h + self.mlp(self.norm_mlp(h, temb))
        return h, trend, season


class TrendHead(nn.Module):
    """Trend features ``(B, L, d)`` -> a polynomial trend ``(B, L, C)`` of degree ``<= degree``.

    Features are mapped per step to ``C`` channels, then a learned linear map along time turns each
    channel's ``L`` values into ``degree + 1`` coefficients of the Legendre basis on normalised
    time; the trend is the basis expansion, hence exactly a polynomial.
    """

    def __init__(self, window: int, d_model: int, n_features: int, degree: int) -> None:
        super().__init__()
        self.to_channels = nn.Linear(d_model, n_features)
        self.to_coefficients = nn.Linear(window, degree + 1)
        self.window = window
        self.degree = degree

    def forward(self, features: Tensor) -> Tensor:
        """``features (B, L, d)`` -> ``(B, L, C)``."""
        per_channel = rearrange(self.to_channels(features), "b l c -> b c l")
        coefficients = self.to_coefficients(per_channel)
        # Built per call rather than held as a buffer: a float32 buffer cast to float64 would
        # keep float32's rounding of the grid, and the trend would be polynomial only to ~1e-8.
        basis = legendre_basis(self.window, self.degree, features.dtype, features.device)
        return einsum(coefficients, basis, "b c p, p l -> b l c")


class SeasonHead(nn.Module):
    """Season features ``(B, L, d)`` -> a season ``(B, L, C)`` of at most ``top_k`` sinusoids.

    Features are mapped per step to ``C`` channels; along time each channel keeps only its
    ``top_k`` largest-amplitude frequencies among bins ``1 .. (L - 1) // 2`` of the real FFT (no
    constant, no Nyquist bin), and is transformed back. The selection is per sample and per
    channel; gradients flow through the kept coefficients.
    """

    def __init__(self, window: int, d_model: int, n_features: int, top_k: int) -> None:
        super().__init__()
        self.window = window
        self.n_freq = season_frequencies(window)
        self.top_k = min(top_k, self.n_freq)
        self.to_channels = nn.Linear(d_model, n_features)

    def forward(self, features: Tensor) -> Tensor:
        """``features (B, L, d)`` -> ``(B, L, C)``."""
        signal = self.to_channels(features)
        if signal.dtype in (torch.float16, torch.bfloat16):
            # Under autocast the projection comes out in half precision, which the FFTs reject
            # (or, on CUDA, accept only for power-of-two lengths): select in float32.
            signal = signal.float()
        if self.top_k == 0:
            # No seasonal term (k = 0 or a window too short for one); zeros keep the sum exact.
            return torch.zeros_like(signal)
        spectrum = torch.fft.rfft(signal, dim=1)
        candidates = spectrum[:, 1 : 1 + self.n_freq]
        top = torch.topk(candidates.abs(), self.top_k, dim=1).indices
        keep = torch.zeros(candidates.shape, dtype=torch.bool, device=signal.device)
        keep.scatter_(1, top, True)
        kept = torch.where(keep, candidates, torch.zeros_like(candidates))
        # Constant and Nyquist (and any bin above the candidates) stay zero.
        after = spectrum.shape[1] - 1 - self.n_freq
        full = nn.functional.pad(kept, (0, 0, 1, after))
        return torch.fft.irfft(full, n=self.window, dim=1)


class TrendSeasonTransformer(nn.Module):
    """The interpretable trend + season transformer: ``(x (B, L, C), t) -> (B, L, C)``.

    Args:
        window: window length ``L`` (linked from the datamodule).
        n_features: number of channels ``C`` (linked from the datamodule).
        d_model: width of the hidden states; must be divisible by ``n_heads``.
        n_heads: attention heads.
        encoder_layers: self-attention blocks in the encoder (``>= 1``).
        decoder_layers: self- plus cross-attention blocks in the decoder (``>= 1``).
        mlp_ratio: hidden width of the per-step MLPs, as a multiple of ``d_model``.
        dropout: dropout on embeddings, attention weights and block outputs, in ``[0, 1)``.
        trend_degree: highest degree of the polynomial trend (``>= 0``).
        season_top_k: frequencies kept per channel by the season head; ``None`` for
            :func:`default_season_top_k` (2 at ``L = 24``), ``0`` for no seasonal term.
        time_scale: factor applied to ``t`` before the sinusoidal embedding; ``1`` feeds the
            raw bridge time as the reference does.
        kernel_size: width of the input convolution along time (odd).

    The reference sizes (encoder / decoder layers, ``d_model = 64``) are Sines 1 / 2, Stocks
    2 / 2, ETTh 3 / 2, giving 0.3M-0.45M parameters at ``L = 24``.
    """

    def __init__(
        self,
        window: int,
        n_features: int,
        d_model: int = 64,
        n_heads: int = 4,
        encoder_layers: int = 2,
        decoder_layers: int = 2,
        mlp_ratio: int = 4,
        dropout: float = 0.0,
        trend_degree: int = 3,
        season_top_k: int | None = None,
        time_scale: float = 1.0,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        for name, value in [
            ("window", window),
            ("n_features", n_features),
            ("d_model", d_model),
            ("n_heads", n_heads),
            ("encoder_layers", encoder_layers),
            ("decoder_layers", decoder_layers),
            ("mlp_ratio", mlp_ratio),
        ]:
            check_int(name, value)
        if d_model % n_heads:
            raise ValueError(
                f"TrendSeasonTransformer: d_model ({d_model}) must be divisible by "
                f"n_heads ({n_heads})"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"TrendSeasonTransformer: dropout must lie in [0, 1), got {dropout!r}")
        integer = isinstance(trend_degree, int) and not isinstance(trend_degree, bool)
        # window points determine a polynomial of degree window - 1 at most: beyond it the
        # Legendre basis is rank-deficient.
        if not integer or not 0 <= trend_degree < window:
            raise ValueError(
                f"TrendSeasonTransformer: trend_degree must be an integer in [0, window = "
                f"{window}), got {trend_degree!r}"
            )
        if season_top_k is not None and season_top_k < 0:
            raise ValueError(
                f"TrendSeasonTransformer: season_top_k must be >= 0 or None, got {season_top_k!r}"
            )
        if not math.isfinite(time_scale) or time_scale <= 0:
            raise ValueError(
                f"TrendSeasonTransformer: time_scale must be positive, got {time_scale!r}"
            )

        self.window = window
        self.n_features = n_features
        top_k = default_season_top_k(window) if season_top_k is None else season_top_k

        self.time_embedding = nn.Sequential(
            SinusoidalTimeEmbedding(d_model, scale=time_scale),
            nn.Linear(d_model, mlp_ratio * d_model),
            nn.SiLU(),
            nn.Linear(mlp_ratio * d_model, d_model),
        )
        self.input_embedding = InputEmbedding(n_features, d_model, kernel_size)
        self.encoder_position = LearnedPositionalEncoding(window, d_model, dropout)
        self.decoder_position = LearnedPositionalEncoding(window, d_model, dropout)
        self.encoder = nn.ModuleList(
            EncoderBlock(d_model, n_heads, mlp_ratio, dropout, d_model)
            for _ in range(encoder_layers)
        )
        self.encoder_norm = nn.LayerNorm(d_model)
        self.decoder = nn.ModuleList(
            DecoderBlock(d_model, n_heads, mlp_ratio, dropout, d_model)
            for _ in range(decoder_layers)
        )
        self.trend_head = TrendHead(window, d_model, n_features, trend_degree)
        self.season_head = SeasonHead(window, d_model, n_features, top_k)
        self.residual_head = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, n_features))

    @property
    def season_top_k(self) -> int:
        """Frequencies the season head keeps per channel (after clipping to the candidates)."""
        return self.season_head.top_k

    @overload
    def forward(
        self, x: Tensor, t: Tensor | float, return_components: Literal[False] = ...
    ) -> Tensor: ...

    @overload
    def forward(
        self, x: Tensor, t: Tensor | float, return_components: Literal[True]
    ) -> TrendSeasonComponents: ...

    def forward(
        self, x: Tensor, t: Tensor | float, return_components: bool = False
    ) -> Tensor | TrendSeasonComponents:
        """Predict from ``x (B, L, C)`` at time ``t`` (a number, a scalar tensor or ``(B,)``).

        Returns ``(B, L, C)``, or with ``return_components=True`` the
        :class:`TrendSeasonComponents` whose ``output`` is that tensor.
        """
        t = self._check_inputs(x, t)
        temb = self.time_embedding(t)
        embedded = self.input_embedding(x)

        memory = self.encoder_position(embedded)
        for block in self.encoder:
            memory = block(memory, temb)
        memory = self.encoder_norm(memory)

        h = self.decoder_position(embedded)
        trend_features = torch.zeros_like(h)
        season_features = torch.zeros_like(h)
        for block in self.decoder:
            h, trend_part, season_part = block(h, memory, temb)
            trend_features = trend_features + trend_part
            season_features = season_features + season_part

        trend = self.trend_head(trend_features)
        season = self.season_head(season_features)
        residual = self.residual_head(h)
        output = trend + season + residual
        if return_components:
            return TrendSeasonComponents(trend, season, residual, output)
        return output

    def _check_inputs(self, x: Tensor, t: Tensor | float) -> Tensor:
        """Validate ``x`` and return ``t`` as a ``(B,)`` tensor in ``x``'s dtype and device."""
        expected = f"(B, {self.window}, {self.n_features})"
        if not isinstance(x, Tensor):
            raise TypeError(f"TrendSeasonTransformer: x must be a tensor {expected}, got {type(x)}")
        if x.ndim != 3 or tuple(x.shape[1:]) != (self.window, self.n_features):
            raise ValueError(
                f"TrendSeasonTransformer: x must have shape (B, window, n_features) = {expected}, "
                f"got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise TypeError(f"TrendSeasonTransformer: x must be floating point, got {x.dtype}")
        batch = x.shape[0]
        if isinstance(t, Tensor):
            t = t.to(dtype=x.dtype, device=x.device)
        else:
            # Filled on the device: no host-to-device copy on every sampler step.
            t = torch.full((), float(t), dtype=x.dtype, device=x.device)
        if t.ndim == 0:
            return t.expand(batch)
        if t.ndim == 1 and t.shape[0] == batch:
            return t
        raise ValueError(
            f"TrendSeasonTransformer: t must be a scalar or have shape (B,) = ({batch},), "
            f"got {tuple(t.shape)}"
        )
