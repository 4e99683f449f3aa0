"""Tests for the real-vs-generated window distances in ``tsgen.metrics.distances``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import wasserstein_distance

from tsgen.metrics.distances import (
    acf_distance,
    autocorrelation,
    marginal_wasserstein,
    mmd_rbf,
    power_spectrum,
    spectrum_distance,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _ar1(n: int, length: int, phis: list[float], seed: int) -> torch.Tensor:
    """``(n, length, len(phis))`` stationary AR(1) windows with unit innovation variance."""
    g = _gen(seed)
    phi = torch.tensor(phis, dtype=torch.float64)
    noise = torch.randn(n, length, len(phis), generator=g, dtype=torch.float64)
    x = torch.empty_like(noise)
    x[:, 0] = noise[:, 0] / torch.sqrt(1 - phi**2)  # stationary start
    for t in range(1, length):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x


# --------------------------------------------------------------------------------------------
# Validation (shared by every public function)
# --------------------------------------------------------------------------------------------

PAIR_FUNCTIONS = [marginal_wasserstein, acf_distance, spectrum_distance, mmd_rbf]


@pytest.mark.parametrize("fn", PAIR_FUNCTIONS)
def test_pair_functions_validate_inputs(fn) -> None:
    good = torch.randn(4, 6, 2, generator=_gen(0))
    with pytest.raises(TypeError, match=r"real must be a torch\.Tensor"):
        fn(good.numpy(), good)
    with pytest.raises(TypeError, match="fake must be a floating-point"):
        fn(good, torch.ones(4, 6, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"real must be 3-D.*got 2-D"):
        fn(good[0], good)
    with pytest.raises(ValueError, match="same window length L"):
        fn(good, good[:, :5])
    with pytest.raises(ValueError, match="same window length L"):
        fn(good, good[:, :, :1])
    with pytest.raises(TypeError, match="same dtype"):
        fn(good, good.double())
    bad = good.clone()
    bad[1, 2, 0] = float("nan")
    with pytest.raises(ValueError, match="fake must be finite; got 1"):
        fn(good, bad)
    with pytest.raises(ValueError, match="real must be non-empty"):
        fn(good[:0], good)


@pytest.mark.parametrize("fn", [power_spectrum, lambda x: autocorrelation(x, 1)])
def test_single_set_functions_validate_inputs(fn) -> None:
    with pytest.raises(TypeError, match=r"x must be a torch\.Tensor"):
        fn([[[1.0]]])
    with pytest.raises(ValueError, match="x must be 3-D"):
        fn(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="x must be finite"):
        fn(torch.full((2, 4, 1), float("inf")))


# --------------------------------------------------------------------------------------------
# Marginal Wasserstein
# --------------------------------------------------------------------------------------------


def test_marginal_wasserstein_matches_scipy_for_different_sizes() -> None:
    g = _gen(1)
    real = torch.randn(7, 13, 3, generator=g, dtype=torch.float64)
    fake = 1.5 * torch.rand(11, 13, 3, generator=g, dtype=torch.float64) - 0.2
    got = marginal_wasserstein(real, fake)
    assert got.shape == (3,) and got.dtype == torch.float64
    for c in range(3):
        expected = wasserstein_distance(
            real[:, :, c].flatten().numpy(), fake[:, :, c].flatten().numpy()
        )
        assert abs(got[c].item() - expected) < 1e-10


def test_marginal_wasserstein_with_ties_matches_scipy() -> None:
    g = _gen(2)
    real = torch.randint(0, 4, (5, 3, 1), generator=g).double()
    fake = torch.randint(1, 6, (9, 3, 1), generator=g).double()
    expected = wasserstein_distance(real.flatten().numpy(), fake.flatten().numpy())
    assert abs(marginal_wasserstein(real, fake).item() - expected) < 1e-10


def test_marginal_wasserstein_of_shifted_copy_is_the_shift() -> None:
    real = torch.randn(9, 8, 2, generator=_gen(3), dtype=torch.float64)
    shift = torch.tensor([0.75, -2.5], dtype=torch.float64)
    got = marginal_wasserstein(real, real + shift)
    torch.testing.assert_close(got, shift.abs(), rtol=0, atol=1e-12)
    assert torch.all(marginal_wasserstein(real, real) == 0)


def test_marginal_wasserstein_is_symmetric_and_float32() -> None:
    g = _gen(4)
    real = torch.randn(6, 5, 2, generator=g)
    fake = torch.randn(3, 5, 2, generator=g) + 1
    a, b = marginal_wasserstein(real, fake), marginal_wasserstein(fake, real)
    assert a.dtype == torch.float32
    torch.testing.assert_close(a, b)


# --------------------------------------------------------------------------------------------
# Autocorrelation
# --------------------------------------------------------------------------------------------


def _acf_reference(x: torch.Tensor, max_lag: int) -> np.ndarray:
    """The docstring definition with explicit loops in float64."""
    arr = x.double().numpy()
    N, L, C = arr.shape
    out = np.zeros((max_lag + 1, C))
    for c in range(C):
        kept = 0
        for n in range(N):
            w = arr[n, :, c]
            if w.max() == w.min():
                continue
            d = w - w.mean()
            den = float(np.sum(d * d))
            kept += 1
            for k in range(max_lag + 1):
                out[k, c] += float(np.sum(d[: L - k] * d[k:])) / den
        out[:, c] /= kept
    return out


def test_autocorrelation_matches_definition_and_skips_constant_windows() -> None:
    x = torch.randn(5, 9, 2, generator=_gen(5), dtype=torch.float64)
    x[1, :, 0] = 3.7  # constant window in feature 0: left out for that feature only
    got = autocorrelation(x, 8)
    assert got.shape == (9, 2)
    np.testing.assert_allclose(got.numpy(), _acf_reference(x, 8), rtol=0, atol=1e-12)
    np.testing.assert_allclose(got[0].numpy(), 1.0)
    without = autocorrelation(x[[0, 2, 3, 4]], 8)
    torch.testing.assert_close(got[:, 0], without[:, 0])


def test_autocorrelation_of_ar1_is_geometric() -> None:
    phis = [0.7, -0.5]
    x = _ar1(16, 4000, phis, seed=6)
    got = autocorrelation(x, 5)
    expected = torch.tensor([[p**k for p in phis] for k in range(6)], dtype=torch.float64)
    torch.testing.assert_close(got, expected, rtol=0, atol=0.03)


def test_autocorrelation_rejects_bad_lag_and_constant_feature() -> None:
    x = torch.randn(3, 6, 2, generator=_gen(7))
    for lag in (-1, 6, 2.0, True):
        with pytest.raises(ValueError, match=r"max_lag must be an integer in \[0, L - 1\]"):
            autocorrelation(x, lag)
    x[:, :, 1] = 1.0
    with pytest.raises(ValueError, match=r"x is constant .* feature\(s\) \[1\]"):
        autocorrelation(x, 2)


def test_acf_distance() -> None:
    real = _ar1(8, 200, [0.8, 0.0], seed=8)
    fake = _ar1(12, 200, [0.8, 0.0], seed=9)
    assert torch.all(acf_distance(real, real) == 0)
    # Default max_lag = L // 2, as an explicit call.
    torch.testing.assert_close(acf_distance(real, fake), acf_distance(real, fake, max_lag=100))
    ar_vs_noise = acf_distance(real, real[:, :, [1, 0]], max_lag=3)
    expected = torch.mean(
        torch.abs(autocorrelation(real, 3)[1:, 0] - autocorrelation(real, 3)[1:, 1])
    )
    torch.testing.assert_close(ar_vs_noise, expected.repeat(2))
    assert ar_vs_noise[0] > 0.3
    for lag in (0, 200, 1.5):
        with pytest.raises(ValueError, match=r"max_lag must be an integer in \[1, L - 1\]"):
            acf_distance(real, fake, max_lag=lag)
    with pytest.raises(ValueError, match="L >= 2"):
        acf_distance(real[:, :1], fake[:, :1])
    constant = torch.zeros(3, 200, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="fake is constant"):
        acf_distance(real, constant)


# --------------------------------------------------------------------------------------------
# Power spectrum
# --------------------------------------------------------------------------------------------


def _sines(n: int, length: int, bins: list[int], seed: int) -> torch.Tensor:
    """``(n, length, len(bins))`` sines at the given frequency bins, random phase, amplitude and
    offset per window."""
    g = _gen(seed)
    t = torch.arange(length, dtype=torch.float64).view(1, length, 1)
    k = torch.tensor(bins, dtype=torch.float64).view(1, 1, -1)
    phase = 2 * math.pi * torch.rand(n, 1, len(bins), generator=g, dtype=torch.float64)
    amp = 0.5 + torch.rand(n, 1, len(bins), generator=g, dtype=torch.float64)
    offset = torch.randn(n, 1, len(bins), generator=g, dtype=torch.float64)
    return offset + amp * torch.sin(2 * math.pi * k * t / length + phase)


def test_power_spectrum_of_sine_is_at_its_bin() -> None:
    L = 32
    x = _sines(6, L, [3, 7], seed=10)
    got = power_spectrum(x)
    assert got.shape == (L // 2 + 1, 2)
    for c, k in enumerate([3, 7]):
        others = torch.cat([got[:k, c], got[k + 1 :, c]])
        assert got[k, c] > 0.1
        assert others.abs().max() < 1e-20 + 1e-12 * got[k, c]
    # Against numpy's FFT, directly from the definition.
    arr = x.numpy() - x.numpy().mean(axis=1, keepdims=True)
    expected = (np.abs(np.fft.rfft(arr, axis=1)) ** 2 / L).mean(axis=0)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_power_spectrum_odd_length_shape() -> None:
    assert power_spectrum(torch.randn(2, 11, 3)).shape == (6, 3)


def test_spectrum_distance() -> None:
    L = 32
    real = _sines(5, L, [3, 4], seed=11)
    same_bins = _sines(9, L, [3, 4], seed=12)
    shifted = _sines(9, L, [5, 9], seed=13)
    assert torch.all(spectrum_distance(real, real) == 0)
    torch.testing.assert_close(
        spectrum_distance(real, same_bins), torch.zeros(2, dtype=torch.float64), rtol=0, atol=1e-9
    )
    torch.testing.assert_close(
        spectrum_distance(real, shifted), torch.full((2,), 2.0, dtype=torch.float64)
    )
    noise = torch.randn(4, L, 2, generator=_gen(14), dtype=torch.float64)
    d = spectrum_distance(real, noise)
    assert torch.all((d > 0) & (d < 2))
    with pytest.raises(ValueError, match=r"fake has zero spectral power for feature\(s\) \[0, 1\]"):
        spectrum_distance(real, torch.ones(3, L, 2, dtype=torch.float64))


# --------------------------------------------------------------------------------------------
# MMD
# --------------------------------------------------------------------------------------------


def _mmd_reference(real: torch.Tensor, fake: torch.Tensor, h: float) -> float:
    X = real.double().reshape(real.shape[0], -1).numpy()
    Y = fake.double().reshape(fake.shape[0], -1).numpy()

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return math.exp(-float(np.sum((a - b) ** 2)) / (2 * h * h))

    N, M = len(X), len(Y)
    xx = sum(k(X[i], X[j]) for i in range(N) for j in range(N) if i != j) / (N * (N - 1))
    yy = sum(k(Y[i], Y[j]) for i in range(M) for j in range(M) if i != j) / (M * (M - 1))
    xy = sum(k(X[i], Y[j]) for i in range(N) for j in range(M)) / (N * M)
    return xx + yy - 2 * xy


def test_mmd_matches_hand_computation_with_given_bandwidth() -> None:
    g = _gen(15)
    real = torch.randn(3, 2, 2, generator=g, dtype=torch.float64)
    fake = torch.randn(4, 2, 2, generator=g, dtype=torch.float64) + 0.5
    got = mmd_rbf(real, fake, bandwidth=1.3)
    assert got.shape == ()
    assert abs(got.item() - _mmd_reference(real, fake, 1.3)) < 1e-12


def test_mmd_tiny_closed_form() -> None:
    # Scalars real {0, 1}, fake {0, 2}, h = 1: k(d) = exp(-d^2 / 2).
    real = torch.tensor([[[0.0]], [[1.0]]], dtype=torch.float64)
    fake = torch.tensor([[[0.0]], [[2.0]]], dtype=torch.float64)
    e = math.exp
    expected = e(-0.5) + e(-2.0) - 2 * (1 + e(-2.0) + e(-0.5) + e(-0.5)) / 4
    assert abs(mmd_rbf(real, fake, bandwidth=1.0).item() - expected) < 1e-14


def test_mmd_median_heuristic_matches_explicit_median() -> None:
    g = _gen(16)
    real = torch.randn(5, 3, 2, generator=g, dtype=torch.float64)
    fake = torch.randn(6, 3, 2, generator=g, dtype=torch.float64) * 2
    pooled = torch.cat([real, fake]).reshape(11, -1).numpy()
    dists = [
        float(np.linalg.norm(pooled[i] - pooled[j])) for i in range(11) for j in range(i + 1, 11)
    ]
    h = float(np.median(dists))
    assert abs(mmd_rbf(real, fake).item() - _mmd_reference(real, fake, h)) < 1e-12


def test_mmd_same_distribution_near_zero_shifted_positive() -> None:
    g = _gen(17)
    real = torch.randn(200, 4, 2, generator=g, dtype=torch.float64)
    fake = torch.randn(150, 4, 2, generator=g, dtype=torch.float64)
    same = mmd_rbf(real, fake).item()
    shifted = mmd_rbf(real, fake + 1.0).item()
    assert abs(same) < 0.01
    assert shifted > 0.1
    assert shifted > 20 * abs(same)


def test_mmd_subsampled_median_is_reproducible_with_generator() -> None:
    g = _gen(18)
    real = torch.randn(40, 3, 1, generator=g)
    fake = torch.randn(30, 3, 1, generator=g) + 0.5
    a = mmd_rbf(real, fake, max_median_samples=20, generator=_gen(0))
    b = mmd_rbf(real, fake, max_median_samples=20, generator=_gen(0))
    assert a.item() == b.item()
    assert a.item() > 0


def test_mmd_rejects_bad_arguments() -> None:
    x = torch.randn(4, 3, 2, generator=_gen(19))
    with pytest.raises(ValueError, match="at least 2 windows"):
        mmd_rbf(x[:1], x)
    for h in (0.0, -1.0, float("inf"), "1"):
        with pytest.raises(ValueError, match="bandwidth must be a positive finite number"):
            mmd_rbf(x, x, bandwidth=h)
    with pytest.raises(ValueError, match="max_median_samples"):
        mmd_rbf(x, x, max_median_samples=1)
    with pytest.raises(ValueError, match="median heuristic gave bandwidth 0"):
        mmd_rbf(torch.zeros(3, 3, 2), torch.zeros(2, 3, 2))


# --------------------------------------------------------------------------------------------
# Device
# --------------------------------------------------------------------------------------------


@pytest.mark.gpu
def test_cuda_matches_cpu() -> None:
    g = _gen(20)
    real = torch.randn(10, 16, 2, generator=g, dtype=torch.float64)
    fake = torch.randn(7, 16, 2, generator=g, dtype=torch.float64) + 0.3
    for fn in (marginal_wasserstein, acf_distance, spectrum_distance, mmd_rbf):
        cpu = fn(real, fake)
        gpu = fn(real.cuda(), fake.cuda())
        assert gpu.device.type == "cuda"
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-9, atol=1e-12)
