"""Tests for tsgen.metrics.discriminative (few iterations, small data)."""

from __future__ import annotations

import pytest
import torch

from tsgen.data import make_sines
from tsgen.metrics.discriminative import (
    _balanced_accuracy,
    _run_discriminative,
    discriminative_score,
)


def _sines(n: int, features: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(make_sines(n, 24, features, seed=seed)).float()


def _noise(n: int, features: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 24, features, generator=torch.Generator().manual_seed(seed))


def test_real_vs_real_is_small() -> None:
    # Two disjoint halves of one set: nothing to learn, the test accuracy stays near chance
    # (120 + 120 test windows: one standard deviation of the accuracy is about 0.03).
    real = _sines(1200)
    scores = discriminative_score(real[:600], real[600:], repeats=3, iterations=300, device="cpu")
    assert scores.shape == (3,) and scores.dtype == torch.float64 and scores.device.type == "cpu"
    assert float(scores.max()) < 0.12
    assert float(scores.mean()) < 0.08


def test_real_vs_noise_is_near_one_half() -> None:
    # Smooth sines against i.i.d. uniform noise are separated perfectly once the classifier has
    # trained (about 500 iterations for H = 2); 800 leaves a margin.
    scores = discriminative_score(_sines(600), _noise(600), repeats=3, iterations=800, device="cpu")
    assert float(scores.min()) > 0.45


def test_repeats_do_not_depend_on_how_many_run() -> None:
    real, fake = _sines(300), _sines(250, seed=1)
    kwargs = dict(seed=3, iterations=15, batch_size=32, train_fraction=0.8, device="cpu")
    two = _run_discriminative(real, fake, repeats=2, progress=False, **kwargs)
    four = _run_discriminative(real, fake, repeats=4, progress=False, **kwargs)
    assert four.scores.shape == (4,) and four.losses.shape == (15, 4)
    assert four.real_logits.shape == (4, 60) and four.fake_logits.shape == (4, 50)
    torch.testing.assert_close(two.losses, four.losses[:, :2], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(two.real_logits, four.real_logits[:2], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(two.fake_logits, four.fake_logits[:2], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(two.scores, four.scores[:2])
    # Different repeats really are different (own splits, batches and weights).
    assert not torch.allclose(four.losses[:, 0], four.losses[:, 1])


def test_seed_reproducibility_and_input_dtype() -> None:
    real, fake = _sines(100), _noise(100)
    a = _run_discriminative(
        real, fake, repeats=2, seed=1, iterations=5, batch_size=16, train_fraction=0.8,
        device="cpu", progress=False,
    )  # fmt: skip
    b = _run_discriminative(
        real.double(), fake.double(), repeats=2, seed=1, iterations=5, batch_size=16,
        train_fraction=0.8, device="cpu", progress=False,
    )  # fmt: skip
    torch.testing.assert_close(a.losses, b.losses, rtol=0, atol=0)
    torch.testing.assert_close(a.real_logits, b.real_logits, rtol=0, atol=0)


def test_small_sets_warn_and_tiny_sets_fail() -> None:
    real, fake = _sines(40), _noise(30)
    with pytest.warns(UserWarning, match=r"32 real and 24 generated windows, fewer than batch"):
        scores = discriminative_score(real, fake, repeats=1, iterations=2, device="cpu")
    assert scores.shape == (1,)
    with pytest.raises(ValueError, match=r"fake has N = 1 windows.*training part of 0"):
        discriminative_score(real, fake[:1], iterations=2, device="cpu")
    with pytest.raises(ValueError, match=r"real has N = 5 windows.*training part of 0"):
        discriminative_score(real[:5], fake, train_fraction=0.1, iterations=2, device="cpu")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"repeats": 0}, ValueError, "repeats must be a positive integer; got 0"),
        ({"iterations": 1.5}, ValueError, "iterations must be a positive integer; got 1.5"),
        ({"batch_size": True}, ValueError, "batch_size must be a positive integer; got True"),
        ({"seed": -1}, ValueError, "seed must be an integer >= 0; got -1"),
        ({"train_fraction": 1.0}, ValueError, "train_fraction must be a number strictly"),
        ({"train_fraction": "0.8"}, ValueError, "train_fraction must be a number strictly"),
        ({"device": "nonsense"}, ValueError, "device must be a torch.device"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        discriminative_score(_sines(20), _sines(20), **kwargs)


def test_bad_windows() -> None:
    with pytest.raises(ValueError, match="same window length L and number of features C"):
        discriminative_score(_sines(20), _sines(20, features=4))
    with pytest.raises(TypeError, match="real must be a floating-point tensor"):
        discriminative_score(torch.zeros(20, 24, 5, dtype=torch.long), _sines(20))
    with pytest.raises(ValueError, match="fake must be 3-D"):
        discriminative_score(_sines(20), torch.zeros(20, 24))


@pytest.mark.gpu
def test_cuda_agrees_with_cpu() -> None:
    # CUDA and CPU generators differ (Philox vs Mersenne Twister), so the two runs draw
    # different weights and batches: they must agree on the outcome, not bit for bit.
    real = _sines(1200)
    for device in ("cpu", "cuda"):
        same = discriminative_score(
            real[:600], real[600:], repeats=3, iterations=300, device=device
        )
        apart = discriminative_score(
            real[:600], _noise(600), repeats=3, iterations=800, device=device
        )
        assert float(same.mean()) < 0.08 and float(apart.min()) > 0.45


@pytest.mark.slow
def test_stocks_random_halves_full_protocol() -> None:
    # metrics.md: two random disjoint halves of the real windows score below 0.03 (the full
    # protocol, 2000 iterations, 5 repeats); chronological halves of Stocks would be separable.
    from tsgen.data import WindowsDataModule

    windows = (WindowsDataModule(dataset="stocks", window=24).train_split.values + 1) / 2
    order = torch.randperm(len(windows), generator=torch.Generator().manual_seed(0))
    half = len(windows) // 2
    scores = discriminative_score(
        windows[order[:half]], windows[order[half : 2 * half]], repeats=5, device="cpu"
    )
    assert float(scores.mean()) < 0.03


def test_unequal_set_sizes_weigh_both_classes_equally() -> None:
    # A classifier that calls every window real: right on all 300 real and wrong on all 100
    # generated windows. Plain accuracy would be 0.75 (score 0.25); balanced it is chance.
    real_logits, fake_logits = torch.ones(2, 300), torch.ones(2, 100)
    torch.testing.assert_close(
        _balanced_accuracy(real_logits, fake_logits), torch.full((2,), 0.5, dtype=torch.float64)
    )
    # With equal sizes it is the plain accuracy: 3 of 4 real and 1 of 4 generated right.
    real_logits = torch.tensor([[1.0, 1.0, 1.0, -1.0]])
    fake_logits = torch.tensor([[-1.0, 1.0, 1.0, 1.0]])
    torch.testing.assert_close(
        _balanced_accuracy(real_logits, fake_logits), torch.tensor([0.5], dtype=torch.float64)
    )
    real_logits = torch.tensor([[1.0, 1.0, 1.0, -1.0]])
    fake_logits = torch.tensor([[-1.0, -1.0, 1.0, 1.0]])
    torch.testing.assert_close(
        _balanced_accuracy(real_logits, fake_logits), torch.tensor([5 / 8], dtype=torch.float64)
    )
