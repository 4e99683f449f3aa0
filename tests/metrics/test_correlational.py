"""Tests for tsgen.metrics.correlational."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tsgen.metrics.correlational import (
    _mean_correlation,
    constant_features,
    correlational_score,
    mean_cross_correlation,
)


def _correlated(n: int, length: int = 24, seed: int = 0) -> torch.Tensor:
    """``(n, L, 3)`` windows with strong cross-feature correlation (+, -, weak)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, length, 1, generator=g, dtype=torch.float64)
    noise = torch.randn(n, length, 3, generator=g, dtype=torch.float64)
    return torch.cat(
        [base + 0.3 * noise[..., :1], -base + 0.3 * noise[..., 1:2], noise[..., 2:]], -1
    )


def _loop_reference(x: np.ndarray) -> np.ndarray:
    """Average of ``numpy.corrcoef`` over windows, one window at a time."""
    return np.mean([np.corrcoef(w, rowvar=False) for w in x], axis=0)


def test_mean_cross_correlation_matches_corrcoef() -> None:
    x = _correlated(7)
    got = mean_cross_correlation(x)
    assert got.shape == (3, 3)
    np.testing.assert_allclose(got.numpy(), _loop_reference(x.numpy()), atol=1e-12)
    np.testing.assert_allclose(torch.diagonal(got).numpy(), 1.0, atol=1e-12)


def test_constant_feature_has_zero_correlation() -> None:
    x = _correlated(4)
    x[1, :, 0] = 3.5  # feature 0 constant in window 1
    got = mean_cross_correlation(x).numpy()
    with np.errstate(invalid="ignore"):
        ref = np.stack([np.corrcoef(w, rowvar=False) for w in x.numpy()])
    ref = np.nan_to_num(ref, nan=0.0)
    ref[1, 0, 0] = 0.0  # corrcoef gives NaN on the whole row/column, our definition gives 0
    np.testing.assert_allclose(got, ref.mean(axis=0), atol=1e-12)
    assert got[0, 0] == pytest.approx(0.75)


def test_score_equals_loop_reference_with_the_same_indices() -> None:
    real = _correlated(40, seed=1)
    fake = _correlated(25, seed=2)
    fake[..., 2] = fake[..., 0] + 0.1 * fake[..., 2]  # different structure
    seed = 123
    scores = correlational_score(
        real, fake, repeats=3, generator=torch.Generator().manual_seed(seed), standardise="window"
    )
    g = torch.Generator().manual_seed(seed)
    idx_r = torch.randint(40, (3, 8), generator=g).numpy()
    idx_f = torch.randint(25, (3, 8), generator=g).numpy()  # N // 5 from each set
    for r in range(3):
        c_real = _loop_reference(real.numpy()[idx_r[r]])
        c_fake = _loop_reference(fake.numpy()[idx_f[r]])
        expected = sum(abs(c_fake[i, j] - c_real[i, j]) for i in range(3) for j in range(i)) / 10
        assert scores[r].item() == pytest.approx(expected, abs=1e-12)
    # Batched core agrees with the per-sample core.
    batched = _mean_correlation(real[torch.from_numpy(idx_r)])
    for r in range(3):
        torch.testing.assert_close(batched[r], _mean_correlation(real[torch.from_numpy(idx_r[r])]))


def test_same_distribution_small_destroyed_correlation_large() -> None:
    data = _correlated(1000, seed=3)
    perm = torch.randperm(1000, generator=torch.Generator().manual_seed(0))
    real, other_half = data[perm[:500]], data[perm[500:]]
    same = correlational_score(real, other_half, generator=torch.Generator().manual_seed(1))
    # Shuffle each feature independently across windows: marginals kept, correlations destroyed.
    g = torch.Generator().manual_seed(2)
    shuffled = torch.stack(
        [other_half[torch.randperm(500, generator=g), :, c] for c in range(3)], -1
    )
    broken = correlational_score(real, shuffled, generator=torch.Generator().manual_seed(1))
    assert same.shape == broken.shape == (5,)
    assert same.max() < 0.03
    assert broken.min() > 0.07  # |corr| of features 0 and 1 is about 0.92, / 10
    assert broken.min() > 5 * same.max()


def test_identical_sets_small_and_reproducible() -> None:
    data = _correlated(100, seed=4)
    a = correlational_score(data, data, repeats=4, generator=torch.Generator().manual_seed(7))
    b = correlational_score(data, data, repeats=4, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    # The two sets get different draws, so the score is small but not exactly zero.
    assert (a >= 0).all() and a.max() < 0.03
    c = correlational_score(data, data, repeats=4, generator=torch.Generator().manual_seed(8))
    assert not torch.equal(a, c)
    # Default generator has a fixed seed: reproducible, independent of the global RNG.
    torch.manual_seed(999)
    d = correlational_score(data, data, repeats=4)
    torch.manual_seed(1)
    e = correlational_score(data, data, repeats=4)
    torch.testing.assert_close(d, e, rtol=0, atol=0)
    torch.testing.assert_close(
        d, correlational_score(data, data, repeats=4, generator=torch.Generator().manual_seed(0))
    )


def test_float32_and_small_sets() -> None:
    real = _correlated(3).float()  # fewer than 5 windows: one window per draw
    out = correlational_score(real, real[:2], repeats=2)
    assert out.dtype == torch.float32 and out.shape == (2,)
    assert torch.isfinite(out).all()


def test_errors() -> None:
    x = _correlated(10)
    with pytest.raises(ValueError, match="C = 2"):
        correlational_score(x[..., :1], x[..., :1])
    with pytest.raises(ValueError, match="C = 2"):
        mean_cross_correlation(x[..., :1])
    with pytest.raises(ValueError, match="same window length"):
        correlational_score(x, x[:, :5])
    with pytest.raises(ValueError, match="same window length"):
        correlational_score(x, x[..., :2])
    with pytest.raises(TypeError):
        correlational_score(x, x.float())
    bad = x.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        correlational_score(x, bad)
    with pytest.raises(ValueError, match="3-D"):
        correlational_score(x[0], x[0])
    with pytest.raises(TypeError):
        correlational_score(x.long(), x.long())
    for repeats in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="repeats"):
            correlational_score(x, x, repeats=repeats)
    with pytest.raises(ValueError, match="generator"):
        correlational_score(x, x, generator=0)


def test_pooled_score_is_the_reference_formula() -> None:
    """The default standardises each feature over all drawn windows and steps (ddof 1) and sums
    the lower triangle with its diagonal, as the Diffusion-TS evaluation code does."""
    real = _correlated(40, seed=1)
    fake = _correlated(25, seed=2)
    fake[..., 2] = fake[..., 0] + 0.1 * fake[..., 2]
    scores = correlational_score(real, fake, repeats=2, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    idx_r = torch.randint(40, (2, 8), generator=g).numpy()
    idx_f = torch.randint(25, (2, 8), generator=g).numpy()  # N // 5 from each set

    def pooled(x: np.ndarray) -> np.ndarray:
        z = (x - x.mean(axis=(0, 1))) / x.std(axis=(0, 1), ddof=1)
        return np.einsum("nli,nlj->ij", z, z) / (x.shape[0] * x.shape[1])

    for r in range(2):
        difference = np.abs(pooled(fake.numpy()[idx_f[r]]) - pooled(real.numpy()[idx_r[r]]))
        expected = difference[np.tril_indices(3)].sum() / 10
        assert scores[r].item() == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError, match="standardise must be 'pooled' or 'window'"):
        correlational_score(real, fake, standardise="global")


def test_score_does_not_depend_on_how_many_windows_were_generated() -> None:
    """N // 5 windows are drawn from both sets (the reference's size): a generated set ten times
    larger with the same windows gives the same scores in distribution; drawing M // 5 from it
    instead would shrink the fake sample's noise and lower the score (by a tenth here)."""
    real = _correlated(50, seed=1)
    fake = _correlated(50, seed=2)
    same = correlational_score(real, fake, repeats=400)
    larger = correlational_score(real, fake.repeat(10, 1, 1), repeats=400)
    assert float(larger.mean() / same.mean()) == pytest.approx(1.0, abs=0.05)


def test_pooled_constant_feature_is_a_clear_error() -> None:
    real = _correlated(20)
    fake = real.clone()
    fake[..., 1] = 0.5  # a generator that collapsed feature 1
    with pytest.raises(ValueError, match=r"fake features \[1\] are constant"):
        correlational_score(real, fake)
    assert constant_features(fake) == [1] and constant_features(real) == []
    # The per-window standardisation defines the correlation of a constant feature as 0.
    assert torch.isfinite(correlational_score(real, fake, standardise="window")).all()
