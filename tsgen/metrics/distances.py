"""Distances between a set of real windows and a set of generated windows.

Every public function takes windows as float tensors of shape ``(N, L, C)``: ``N`` windows of
length ``L`` with ``C`` features. The two sets may hold different numbers of windows but must share
``L``, ``C``, dtype and device. All computations are batched over windows (sorting, FFTs and
matrix operations, no Python loop over windows), run on whatever device the inputs live on and
are deterministic: the only randomness is the optional subsampling for the MMD median heuristic,
which draws from the ``generator`` passed in.

Definitions (also in each function's docstring):

- ``marginal_wasserstein``: per feature, the exact Wasserstein-1 distance between the empirical
  distributions of all values of that feature (windows and time steps pooled).
- ``autocorrelation`` / ``acf_distance``: per window and feature the sample ACF of the window
  centred by its own mean, averaged over windows with nonzero variance; the distance is the mean
  absolute difference over lags ``1..max_lag``.
- ``power_spectrum`` / ``spectrum_distance``: the mean one-sided periodogram of the mean-removed
  windows; the distance is the L1 distance between the two mean periodograms each normalised to
  sum to 1 over frequencies (so it lies in ``[0, 2]``).
- ``mmd_rbf``: the unbiased (U-statistic) estimate of the squared MMD between flattened windows
  with the kernel ``exp(-||x - y||^2 / (2 h^2))``, ``h`` by the median heuristic by default.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "acf_distance",
    "autocorrelation",
    "marginal_wasserstein",
    "mmd_rbf",
    "power_spectrum",
    "spectrum_distance",
]


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _check_windows(name: str, x: object) -> Tensor:
    """``x`` if it is a finite, non-empty floating tensor of shape ``(N, L, C)``; otherwise a
    ``TypeError`` (wrong type or dtype) or ``ValueError`` (wrong shape, non-finite) naming
    ``name``, what was expected and what came."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, L, C); got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got dtype {x.dtype}")
    if x.dim() != 3:
        raise ValueError(
            f"{name} must be 3-D with shape (N, L, C); got {x.dim()}-D with shape {tuple(x.shape)}"
        )
    if x.numel() == 0:
        raise ValueError(f"{name} must be non-empty (N, L, C >= 1); got shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        n_bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} must be finite; got {n_bad} NaN or infinite entries")
    return x


def _check_pair(real: object, fake: object) -> tuple[Tensor, Tensor]:
    """Both window sets checked, plus matching ``L``, ``C``, dtype and device (``N`` may
    differ)."""
    real = _check_windows("real", real)
    fake = _check_windows("fake", fake)
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(
            "real and fake must have the same window length L and number of features C; got "
            f"real of shape {tuple(real.shape)} and fake of shape {tuple(fake.shape)}"
        )
    if real.dtype != fake.dtype:
        raise TypeError(
            f"real and fake must have the same dtype; got {real.dtype} and {fake.dtype}"
        )
    if real.device != fake.device:
        raise ValueError(
            f"real and fake must be on the same device; got {real.device} and {fake.device}"
        )
    return real, fake


def _check_lag(name: str, value: object, minimum: int, length: int) -> int:
    """``value`` if it is an integer (not a bool) in ``[minimum, length - 1]``, else a
    ``ValueError``: a lag of ``L`` or more has no pairs of time steps in a window of length
    ``L``."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= length - 1:
        raise ValueError(
            f"{name} must be an integer in [{minimum}, L - 1] = [{minimum}, {length - 1}] for "
            f"windows of length L = {length}; got {value!r}"
        )
    return value


# --------------------------------------------------------------------------------------------
# Marginal Wasserstein-1
# --------------------------------------------------------------------------------------------


def marginal_wasserstein(real: Tensor, fake: Tensor) -> Tensor:
    """Per-feature Wasserstein-1 distance between the empirical marginals of ``real`` and
    ``fake``.

    For each feature ``c``, all ``N * L`` values ``real[:, :, c]`` (windows and time steps pooled)
    form one empirical distribution, and likewise for ``fake``. The distance is exact for any two
    sample sizes: ``W1 = ∫ |F_real^{-1}(u) - F_fake^{-1}(u)| du = ∫ |F_real(x) - F_fake(x)| dx``;
    the second form is evaluated exactly on the sorted union of the two samples, between whose
    consecutive points both empirical CDFs are constant (the same computation as
    ``scipy.stats.wasserstein_distance``).

    Args:
        real: ``(N, L, C)`` real windows.
        fake: ``(M, L, C)`` generated windows.

    Returns:
        ``(C,)`` distances, in the dtype and on the device of the inputs.
    """
    real, fake = _check_pair(real, fake)
    C = real.shape[-1]
    # (C, n) and (C, m): one row per feature, all windows and time steps pooled.
    a = torch.sort(real.reshape(-1, C).T.contiguous(), dim=1).values
    b = torch.sort(fake.reshape(-1, C).T.contiguous(), dim=1).values
    n, m = a.shape[1], b.shape[1]
    merged = torch.sort(torch.cat([a, b], dim=1), dim=1).values
    widths = torch.diff(merged, dim=1)
    # Both CDFs are constant on [merged[k], merged[k + 1]); their value there is the count of
    # sample points <= merged[k], which searchsorted(right=True) gives in one batched call.
    left = merged[:, :-1].contiguous()
    cdf_a = torch.searchsorted(a, left, right=True).to(real.dtype) / n
    cdf_b = torch.searchsorted(b, left, right=True).to(real.dtype) / m
    return (torch.abs(cdf_a - cdf_b) * widths).sum(dim=1)


# --------------------------------------------------------------------------------------------
# Autocorrelation
# --------------------------------------------------------------------------------------------


def autocorrelation(x: Tensor, max_lag: int) -> Tensor:
    """Mean autocorrelation function per feature, lags ``0..max_lag``.

    Per window ``n`` and feature ``c`` with mean ``m = mean_t x[n, t, c]`` (each window is
    centred by its own mean), the lag-``k`` autocorrelation is::

        r_k = sum_{t=0}^{L-1-k} (x_t - m)(x_{t+k} - m) / sum_{t=0}^{L-1} (x_t - m)^2

    (the standard biased sample ACF, so ``r_0 = 1`` and ``|r_k| <= 1``). For each feature the
    result is the mean of ``r_k`` over the windows that are not constant in that feature;
    constant windows have no defined ACF and are left out.

    Args:
        x: ``(N, L, C)`` windows.
        max_lag: largest lag, an integer in ``[0, L - 1]``.

    Returns:
        ``(max_lag + 1, C)`` mean ACF, row ``k`` for lag ``k``.

    Raises:
        ValueError: on invalid input, or if some feature is constant in every window.
    """
    x = _check_windows("x", x)
    return _autocorrelation(x, _check_lag("max_lag", max_lag, 0, x.shape[1]), "x")


def _autocorrelation(x: Tensor, max_lag: int, name: str) -> Tensor:
    L = x.shape[1]
    centred = x - x.mean(dim=1, keepdim=True)
    # Autocovariance sums for all lags at once by FFT; zero-padding to 2L makes the circular
    # correlation equal to the linear one for lags < L.
    spectrum = torch.fft.rfft(centred, n=2 * L, dim=1)
    sums = torch.fft.irfft(spectrum.real**2 + spectrum.imag**2, n=2 * L, dim=1)[:, : max_lag + 1]
    # Lag 0 directly (exact sum of squares) rather than from the FFT, and constancy tested exactly
    # by max == min: a constant window can leave rounding noise after centring.
    energy = (centred**2).sum(dim=1)  # (N, C)
    varying = x.amax(dim=1) != x.amin(dim=1)  # (N, C)
    counts = varying.sum(dim=0)  # (C,)
    if bool((counts == 0).any()):
        bad = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(
            f"{name} is constant over time in every window for feature(s) {bad}; the "
            "autocorrelation is undefined for a constant window"
        )
    safe_energy = torch.where(varying, energy, torch.ones_like(energy))
    r = sums / safe_energy.unsqueeze(1)  # (N, max_lag + 1, C)
    r[:, 0, :] = 1.0
    r = torch.where(varying.unsqueeze(1), r, torch.zeros_like(r))
    return r.sum(dim=0) / counts.to(x.dtype)


def acf_distance(real: Tensor, fake: Tensor, max_lag: int | None = None) -> Tensor:
    """Per-feature ACF distance: ``mean_{k=1..max_lag} |acf_real[k] - acf_fake[k]|``, with the
    mean ACFs of :func:`autocorrelation` (lag 0, always 1, is left out).

    Args:
        real: ``(N, L, C)`` real windows.
        fake: ``(M, L, C)`` generated windows.
        max_lag: largest lag, an integer in ``[1, L - 1]``; default ``L // 2`` (which needs
            ``L >= 2``).

    Returns:
        ``(C,)`` distances in ``[0, 2]``.
    """
    real, fake = _check_pair(real, fake)
    L = real.shape[1]
    if max_lag is None:
        if L < 2:
            raise ValueError(
                f"acf_distance needs windows of length L >= 2 (lags 1..L//2); got L = {L}"
            )
        max_lag = L // 2
    max_lag = _check_lag("max_lag", max_lag, 1, L)
    acf_real = _autocorrelation(real, max_lag, "real")
    acf_fake = _autocorrelation(fake, max_lag, "fake")
    return torch.abs(acf_real[1:] - acf_fake[1:]).mean(dim=0)


# --------------------------------------------------------------------------------------------
# Power spectrum
# --------------------------------------------------------------------------------------------


def power_spectrum(x: Tensor) -> Tensor:
    """Mean periodogram per feature.

    Each window is centred by its own mean per feature, then
    ``P[n, j, c] = |rfft(x[n, :, c])_j|^2 / L`` for frequency bins ``j = 0..L//2`` (one-sided,
    no doubling of the bins that have a mirror image), and the result is the mean over windows.
    Bin 0 is therefore 0.

    Args:
        x: ``(N, L, C)`` windows.

    Returns:
        ``(L // 2 + 1, C)`` mean periodogram.
    """
    x = _check_windows("x", x)
    return _power_spectrum(x)


def _power_spectrum(x: Tensor) -> Tensor:
    L = x.shape[1]
    centred = x - x.mean(dim=1, keepdim=True)
    spectrum = torch.fft.rfft(centred, dim=1)
    return ((spectrum.real**2 + spectrum.imag**2) / L).mean(dim=0)


def spectrum_distance(real: Tensor, fake: Tensor) -> Tensor:
    """Per-feature L1 distance between the mean periodograms of :func:`power_spectrum`, each
    normalised to sum to 1 over the ``L // 2 + 1`` frequency bins.

    The normalisation compares the shape of the spectra (where the power lies), not the overall
    scale, which :func:`marginal_wasserstein` already covers. The distance is 0 for identical
    spectra and 2 for spectra with disjoint support.

    Args:
        real: ``(N, L, C)`` real windows.
        fake: ``(M, L, C)`` generated windows.

    Returns:
        ``(C,)`` distances in ``[0, 2]``.

    Raises:
        ValueError: on invalid input, or if some feature has no power at all (constant in every
            window) in ``real`` or ``fake``, where the normalised spectrum is undefined.
    """
    real, fake = _check_pair(real, fake)
    normalised = []
    for name, x in (("real", real), ("fake", fake)):
        power = _power_spectrum(x)
        total = power.sum(dim=0)  # (C,)
        if bool((total == 0).any()):
            bad = torch.nonzero(total == 0).flatten().tolist()
            raise ValueError(
                f"{name} has zero spectral power for feature(s) {bad} (constant in every "
                "window); the normalised spectrum is undefined"
            )
        normalised.append(power / total)
    return torch.abs(normalised[0] - normalised[1]).sum(dim=0)


# --------------------------------------------------------------------------------------------
# MMD
# --------------------------------------------------------------------------------------------


def _sq_dists(a: Tensor, b: Tensor) -> Tensor:
    """Squared Euclidean distances between the rows of ``a`` and ``b``. The direct (non-matmul)
    mode of ``cdist`` avoids the cancellation of ``|a|^2 + |b|^2 - 2ab``, so identical rows give
    exactly 0."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist") ** 2


def _median_bandwidth(
    pooled: Tensor, max_samples: int, generator: torch.Generator | None
) -> Tensor:
    """Median of the pairwise distances ``||x_i - x_j||`` over ``i < j`` in ``pooled``
    (subsampled to ``max_samples`` rows without replacement if larger)."""
    count = pooled.shape[0]
    if count > max_samples:
        # The median of a random subset is a good estimate and bounds the O(count^2) memory.
        idx = torch.randperm(count, generator=generator)[:max_samples].to(pooled.device)
        pooled = pooled[idx]
        count = max_samples
    rows, cols = torch.triu_indices(count, count, offset=1, device=pooled.device)
    dists = torch.cdist(pooled, pooled, compute_mode="donot_use_mm_for_euclid_dist")[rows, cols]
    values = torch.sort(dists).values
    P = values.numel()
    # The usual median: the mean of the two middle values when the count is even.
    return (values[(P - 1) // 2] + values[P // 2]) / 2


def mmd_rbf(
    real: Tensor,
    fake: Tensor,
    bandwidth: float | None = None,
    *,
    max_median_samples: int = 2048,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Unbiased estimate of the squared maximum mean discrepancy with an RBF kernel.

    Windows are flattened to vectors of length ``L * C`` and compared with the kernel
    ``k(x, y) = exp(-||x - y||^2 / (2 h^2))``. With ``X = real`` (``N`` rows) and ``Y = fake``
    (``M`` rows), the U-statistic is::

        MMD^2 = sum_{i != j} k(x_i, x_j) / (N (N - 1)) + sum_{i != j} k(y_i, y_j) / (M (M - 1))
                - 2 sum_{i, j} k(x_i, y_j) / (N M)

    It is unbiased, so it can be slightly negative when the two distributions agree.

    Args:
        real: ``(N, L, C)`` real windows, ``N >= 2``.
        fake: ``(M, L, C)`` generated windows, ``M >= 2``.
        bandwidth: kernel bandwidth ``h > 0``. ``None`` (default): the median heuristic, ``h`` =
            the median of the pairwise Euclidean distances between distinct windows of the
            pooled set ``real ∪ fake``.
        max_median_samples: if the pooled set has more windows than this, the median heuristic
            uses a random subset of this many (the only non-deterministic step; the MMD itself
            always uses every window).
        generator: CPU ``torch.Generator`` for that subset; ``None`` uses the global generator.

    Returns:
        0-d tensor, the squared MMD estimate.
    """
    real, fake = _check_pair(real, fake)
    N, M = real.shape[0], fake.shape[0]
    if N < 2 or M < 2:
        raise ValueError(
            f"mmd_rbf (unbiased estimator) needs at least 2 windows in each set; got N = {N} "
            f"real and M = {M} fake"
        )
    if (
        isinstance(max_median_samples, bool)
        or not isinstance(max_median_samples, int)
        or (max_median_samples < 2)
    ):
        raise ValueError(f"max_median_samples must be an integer >= 2; got {max_median_samples!r}")
    X = real.reshape(N, -1)
    Y = fake.reshape(M, -1)
    if bandwidth is None:
        h = _median_bandwidth(torch.cat([X, Y]), max_median_samples, generator)
        if not bool(h > 0):
            raise ValueError(
                "median heuristic gave bandwidth 0 (at least half of the pairwise distances "
                "between pooled windows are 0); pass bandwidth explicitly"
            )
    else:
        if (
            isinstance(bandwidth, bool)
            or not isinstance(bandwidth, (int, float))
            or not (0 < bandwidth < float("inf"))
        ):
            raise ValueError(
                f"bandwidth must be a positive finite number or None; got {bandwidth!r}"
            )
        h = torch.tensor(float(bandwidth), dtype=X.dtype, device=X.device)
    scale = -1.0 / (2.0 * h**2)
    k_xx = torch.exp(_sq_dists(X, X) * scale)
    k_yy = torch.exp(_sq_dists(Y, Y) * scale)
    k_xy = torch.exp(_sq_dists(X, Y) * scale)
    # Diagonal terms k(x_i, x_i) = 1 are dropped for the unbiased within-set averages.
    term_xx = (k_xx.sum() - k_xx.diagonal().sum()) / (N * (N - 1))
    term_yy = (k_yy.sum() - k_yy.diagonal().sum()) / (M * (M - 1))
    return term_xx + term_yy - 2.0 * k_xy.mean()
