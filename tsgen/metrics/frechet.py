"""Frechet (2-Wasserstein) distance between Gaussians fitted to feature sets, the core of FID
(Heusel et al. 2017) and Context-FID (encoder features of whole series).

For ``N(m1, C1)`` and ``N(m2, C2)`` (Dowson & Landau 1982)::

    d^2 = ||m1 - m2||^2 + tr(C1 + C2 - 2 (C1^{1/2} C2 C1^{1/2})^{1/2})

Everything is computed in float64 with NumPy. The trace of the matrix square root is taken from
the eigenvalues of the symmetric PSD matrix ``C1^{1/2} C2 C1^{1/2}`` rather than from
``scipy.linalg.sqrtm(C1 @ C2)``: the product ``C1 C2`` is not symmetric, its ``sqrtm`` can come
back complex or inaccurate when the covariances are near singular (few samples, many features),
whereas a symmetric eigendecomposition is backward stable and its tiny negative round-off
eigenvalues can simply be clamped to 0.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

__all__ = ["frechet_distance", "frechet_distance_from_samples", "gaussian_fit"]


def _as_float64(name: str, x: ArrayLike | torch.Tensor) -> NDArray[np.float64]:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().to(torch.float64).numpy()
    array = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} has non-finite values")
    return array


def gaussian_fit(x: ArrayLike | torch.Tensor) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean and unbiased covariance of the rows of ``x``.

    Args:
        x: ``(N, D)`` features, one row per sample (NumPy array or tensor, any device), N >= 2.

    Returns:
        ``(mean (D,), cov (D, D))`` as float64 NumPy arrays; ``cov`` divides by ``N - 1``.
    """
    x = _as_float64("x", x)
    if x.ndim != 2:
        raise ValueError(f"x must have shape (N, D); got {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"x needs at least 2 rows for an unbiased covariance; got {x.shape[0]}")
    mean = x.mean(axis=0)
    centred = x - mean
    cov = centred.T @ centred / (x.shape[0] - 1)
    return mean, cov


def _psd_sqrt(cov: NDArray[np.float64]) -> NDArray[np.float64]:
    """Symmetric square root of a symmetric PSD matrix, negative round-off eigenvalues -> 0."""
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def frechet_distance(
    mean1: ArrayLike | torch.Tensor,
    cov1: ArrayLike | torch.Tensor,
    mean2: ArrayLike | torch.Tensor,
    cov2: ArrayLike | torch.Tensor,
) -> float:
    """Squared Frechet distance between ``N(mean1, cov1)`` and ``N(mean2, cov2)``.

    Following FID convention this is the *squared* 2-Wasserstein distance (no final square root).

    Args:
        mean1, mean2: ``(D,)`` means.
        cov1, cov2: ``(D, D)`` symmetric positive semi-definite covariances.

    Returns:
        ``||m1 - m2||^2 + tr(C1) + tr(C2) - 2 tr((C1^{1/2} C2 C1^{1/2})^{1/2})`` as a float,
        clamped at 0 (round-off can otherwise give ``-1e-15`` for identical inputs).
    """
    m1, m2 = _as_float64("mean1", mean1), _as_float64("mean2", mean2)
    c1, c2 = _as_float64("cov1", cov1), _as_float64("cov2", cov2)
    if m1.ndim != 1 or m2.shape != m1.shape:
        raise ValueError(f"mean1 {m1.shape} and mean2 {m2.shape} must both have shape (D,)")
    d = m1.shape[0]
    for name, c in (("cov1", c1), ("cov2", c2)):
        if c.shape != (d, d):
            raise ValueError(f"{name} must have shape (D, D) = {(d, d)}; got {c.shape}")
    # Symmetrise: fitted covariances are symmetric only up to round-off, and eigh reads one
    # triangle only.
    c1 = 0.5 * (c1 + c1.T)
    c2 = 0.5 * (c2 + c2.T)

    sqrt_c1 = _psd_sqrt(c1)
    middle = sqrt_c1 @ c2 @ sqrt_c1
    middle = 0.5 * (middle + middle.T)
    # tr(M^{1/2}) = sum sqrt(lambda_i(M)) for symmetric PSD M; the eigenvalues of
    # C1^{1/2} C2 C1^{1/2} equal those of C1 C2, so this is the usual FID trace term.
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(middle), 0.0, None)).sum()

    diff = m1 - m2
    distance = diff @ diff + np.trace(c1) + np.trace(c2) - 2.0 * trace_sqrt
    return float(max(distance, 0.0))


def frechet_distance_from_samples(
    a: ArrayLike | torch.Tensor, b: ArrayLike | torch.Tensor
) -> float:
    """Frechet distance between Gaussians fitted (:func:`gaussian_fit`) to two feature sets.

    Args:
        a: ``(N_a, D)`` features of one set (e.g. real series, encoded).
        b: ``(N_b, D)`` features of the other (e.g. generated series), same D.

    Returns:
        The squared Frechet distance as a float. With finite N it is biased upwards relative to
        the distance between the true distributions (Chong & Forsyth 2020), so compare values
        computed with the same N.
    """
    mean_a, cov_a = gaussian_fit(a)
    mean_b, cov_b = gaussian_fit(b)
    if mean_a.shape != mean_b.shape:
        raise ValueError(
            f"a and b must have the same feature dimension; got {mean_a.shape[0]} and "
            f"{mean_b.shape[0]}"
        )
    return frechet_distance(mean_a, cov_a, mean_b, cov_b)
