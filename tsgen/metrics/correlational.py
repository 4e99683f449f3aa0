"""The "correlational score" of Yoon et al. 2019 (TimeGAN) as used by Yuan & Qiao 2024
(Diffusion-TS): how well generated windows reproduce the lag-0 cross-correlations between
features.

Protocol (design notes, metrics.md, "Unconditional generation"): for each repeat,
draw ``N_real // 5`` windows with replacement from the real set and as many from the generated
set (the reference code draws ``size = N_real / 5`` from each set, so that the score does not
depend on how many windows were generated); for each sample average
the per-window lag-0 cross-correlation matrices; the score is the sum of ``|C_fake - C_real|`` over
the strictly lower triangle, divided by 10 (the reference's constant, kept so that numbers are
comparable with the papers' tables).

Two standardisations:

- ``"pooled"`` (default; the reference code, Diffusion-TS ``Utils/cross_correlation.py``): each
  feature is standardised once over all drawn windows and time steps (sample std, ``ddof = 1``),
  ``C`` is the mean of ``z_i z_j`` over windows and steps, and the sum runs over the lower
  triangle *including* the diagonal, as the reference's ``tril_indices(C, C)`` does (its terms are
  ``(nL - 1) / (nL)`` in both sets and cancel up to the sample sizes). This is what the papers'
  tables report.
- ``"window"``: per window, each feature is standardised over its ``L`` time steps (mean 0,
  population std 1) and ``C = X^T X / L`` (the window's Pearson correlation matrix, as
  ``numpy.corrcoef``), averaged over windows; the sum runs over the strictly lower triangle. A
  feature constant within a window has no defined correlation; its standardised values are set
  to 0 there, so its correlations in that window are 0 (diagonal included).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from tsgen.metrics.distances import _check_pair, _check_windows

__all__ = ["constant_features", "correlational_score", "mean_cross_correlation"]

# The reference implementation divides the summed absolute difference by 10.
_REFERENCE_SCALE = 10.0


def _check_features(x: Tensor) -> None:
    if x.shape[-1] < 2:
        raise ValueError(
            f"cross-correlations need at least C = 2 features; got shape {tuple(x.shape)}"
        )


def _mean_correlation(x: Tensor) -> Tensor:
    """Average lag-0 correlation matrix over windows, batched over leading dimensions.

    Args:
        x: ``(..., n, L, C)`` windows.

    Returns:
        ``(..., C, C)``: the mean over the ``n`` windows of each window's ``C x C`` Pearson
        correlation matrix (rows/columns of a feature constant in a window are 0 for that window).
    """
    length = x.shape[-2]
    centred = x - x.mean(dim=-2, keepdim=True)
    std = centred.square().mean(dim=-2, keepdim=True).sqrt()  # (..., n, 1, C), population std
    # Constant feature in a window: std == 0 (or a rounding-level residue of the centring), the
    # standardised values are defined as 0 so its correlations are 0.
    scale = x.abs().amax(dim=-2, keepdim=True)
    tiny = std <= torch.finfo(x.dtype).eps * 8 * scale
    z = torch.where(tiny, torch.zeros_like(centred), centred / torch.where(tiny, 1.0, std))
    corr = z.transpose(-1, -2) @ z / length  # (..., n, C, C)
    return corr.mean(dim=-3)


def constant_features(x: Tensor) -> list[int]:
    """The features of ``x`` (``(..., n, L, C)``) that take one value over all its windows and
    steps (in any leading batch entry): the pooled standardisation of :func:`correlational_score`
    is undefined for them."""
    flat = x.flatten(-3, -2)
    constant = (flat.amax(dim=-2) == flat.amin(dim=-2)).reshape(-1, x.shape[-1]).any(dim=0)
    return constant.nonzero().flatten().tolist()


def _pooled_correlation(x: Tensor, name: str) -> Tensor:
    """The reference's correlation: standardise each feature over all windows and steps
    (``ddof = 1``), then average ``z_i z_j``. ``x``: ``(..., n, L, C)`` -> ``(..., C, C)``;
    ``name``: which set ``x`` was drawn from, for the error on a constant feature."""
    constant = constant_features(x)
    if constant:
        raise ValueError(
            f"{name} features {constant} are constant over the drawn windows: the pooled "
            "correlation is undefined (standardise='window' defines it as 0)"
        )
    dims = (-3, -2)
    z = (x - x.mean(dim=dims, keepdim=True)) / x.std(dim=dims, keepdim=True)
    steps = x.shape[-3] * x.shape[-2]
    return z.flatten(-3, -2).transpose(-1, -2) @ z.flatten(-3, -2) / steps


Standardisation = Literal["pooled", "window"]


def mean_cross_correlation(x: Tensor) -> Tensor:
    """Mean over windows of the lag-0 cross-correlation matrix between features.

    Each window's features are standardised over its ``L`` time steps and ``X^T X / L`` is
    averaged over windows (a feature constant within a window contributes correlations of 0 for
    that window, diagonal included).

    Args:
        x: ``(N, L, C)`` finite floating windows, ``C >= 2``.

    Returns:
        ``(C, C)`` symmetric matrix in the dtype and on the device of ``x``; its diagonal is 1
        where a feature is non-constant in every window.
    """
    x = _check_windows("x", x)
    _check_features(x)
    return _mean_correlation(x)


def correlational_score(
    real: Tensor,
    fake: Tensor,
    *,
    repeats: int = 5,
    generator: torch.Generator | None = None,
    standardise: Standardisation = "pooled",
) -> Tensor:
    """Correlational score (Yoon et al. 2019, TimeGAN; Yuan & Qiao 2024, Diffusion-TS), once
    per repeat.

    For each repeat ``r``: ``n = max(1, N // 5)`` indices into ``real`` and as many into
    ``fake`` are drawn uniformly with replacement (the reference draws ``N / 5`` from each set,
    whatever ``M``; the ``max(1, .)`` only matters for fewer than 5 windows);
    ``C_real``, ``C_fake`` are the lag-0 correlation matrices of the two samples (pooled or
    per-window standardisation, see the module docstring) and the score is
    ``sum |C_fake[i, j] - C_real[i, j]| / 10`` over the lower triangle (with the diagonal when
    pooled, as the reference), the division by 10 being the reference's constant. Lower is
    better; 0 means identical mean correlation structure.

    All repeats are computed at once: one ``(repeats, n)`` index tensor per set and a single
    gather, with no Python loop over windows or repeats (memory ``2 * repeats * N / 5 * L * C``
    elements).

    Args:
        real: ``(N, L, C)`` real windows, ``C >= 2``.
        fake: ``(M, L, C)`` generated windows with the same ``L``, ``C``, dtype and device.
        repeats: number of independent draws (>= 1).
        standardise: ``"pooled"`` (the reference's, default) or ``"window"`` (see the module
            docstring).
        generator: CPU ``torch.Generator`` used for all draws (real indices first, then fake).
            ``None`` uses ``torch.Generator().manual_seed(0)``, so the result never depends on
            torch's global RNG state; pass your own generator for fresh randomness.

    Returns:
        ``(repeats,)`` scores in the dtype and on the device of the inputs.

    Raises:
        ValueError: with ``standardise="pooled"``, if a feature is constant over the windows
            drawn from either set (:func:`constant_features`).
    """
    real, fake = _check_pair(real, fake)
    _check_features(real)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer; got {repeats!r}")
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    elif not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
        raise ValueError(f"generator must be a CPU torch.Generator; got {generator!r}")

    n = max(1, real.shape[0] // 5)
    idx_real = torch.randint(real.shape[0], (repeats, n), generator=generator)
    idx_fake = torch.randint(fake.shape[0], (repeats, n), generator=generator)
    if standardise not in ("pooled", "window"):
        raise ValueError(f"standardise must be 'pooled' or 'window'; got {standardise!r}")
    drawn = {"real": real[idx_real.to(real.device)], "fake": fake[idx_fake.to(fake.device)]}
    if standardise == "pooled":
        c_real, c_fake = (_pooled_correlation(x, name) for name, x in drawn.items())
    else:
        c_real, c_fake = (_mean_correlation(x) for x in drawn.values())  # (repeats, C, C)

    channels = real.shape[-1]
    # The reference sums the lower triangle with its diagonal; the per-window variant without.
    offset = 0 if standardise == "pooled" else -1
    rows, cols = torch.tril_indices(channels, channels, offset=offset, device=real.device)
    diff = (c_fake - c_real)[:, rows, cols].abs()  # (repeats, C (C + 1) / 2 or C (C - 1) / 2)
    return diff.sum(dim=-1) / _REFERENCE_SCALE
