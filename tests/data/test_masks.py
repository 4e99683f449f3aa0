"""tsgen/data/masks.py: observation masks for imputation and forecasting (True where observed),
their statistics, reproducibility from a generator, and argument errors."""

from __future__ import annotations

import math

import pytest
import torch

from tsgen.data import (
    forecast_mask,
    geometric_runs_mask,
    random_missing_mask,
    sample_missing_ratios,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def missing_runs(mask: torch.Tensor) -> tuple[int, int]:
    """``(missing entries, missing runs)`` of a ``(B, L, C)`` mask, runs counted along time."""
    missing = ~mask
    previous = torch.cat([torch.zeros_like(missing[:, :1]), missing[:, :-1]], dim=1)
    return int(missing.sum()), int((missing & ~previous).sum())


@pytest.mark.parametrize("make", [random_missing_mask, geometric_runs_mask])
def test_shape_dtype_and_reproducibility(make) -> None:
    mask = make((3, 17, 2), 0.4, generator=gen(5))
    assert mask.shape == (3, 17, 2) and mask.dtype == torch.bool and mask.device.type == "cpu"
    assert torch.equal(make((3, 17, 2), 0.4, generator=gen(5)), mask)
    assert not torch.equal(make((3, 17, 2), 0.4, generator=gen(6)), mask)
    assert make(torch.Size([3, 17, 2]), 0.0, generator=gen()).all()


@pytest.mark.parametrize("ratio", [0.05, 0.3, 0.7])
def test_random_missing_fraction(ratio: float) -> None:
    n = 200 * 50 * 10
    mask = random_missing_mask((200, 50, 10), ratio, generator=gen(1))
    standard_error = math.sqrt(ratio * (1 - ratio) / n)
    assert abs((~mask).float().mean().item() - ratio) < 3 * standard_error


def test_random_missing_per_window_ratios() -> None:
    ratios = torch.tensor([0.0, 0.1, 0.5, 0.9])
    mask = random_missing_mask((4, 500, 20), ratios, generator=gen(2))
    n = 500 * 20
    fractions = (~mask).float().mean(dim=(1, 2))
    standard_errors = (ratios * (1 - ratios) / n).sqrt()
    assert fractions[0] == 0
    assert ((fractions - ratios).abs() <= 3 * standard_errors).all()


def test_sample_missing_ratios() -> None:
    ratios = sample_missing_ratios(10000, 0.2, 0.6, generator=gen(3))
    assert ratios.shape == (10000,) and ratios.dtype == torch.float32
    assert ratios.min() >= 0.2 and ratios.max() <= 0.6
    assert abs(ratios.mean().item() - 0.4) < 3 * 0.4 / math.sqrt(12 * 10000)
    assert torch.equal(sample_missing_ratios(10000, 0.2, 0.6, generator=gen(3)), ratios)
    assert sample_missing_ratios(3, 0.3, 0.3).eq(0.3).all()
    default = torch.get_default_dtype()
    try:  # float32 whatever torch's default dtype
        torch.set_default_dtype(torch.float64)
        assert sample_missing_ratios(3, 0.2, 0.6).dtype == torch.float32
    finally:
        torch.set_default_dtype(default)


@pytest.mark.parametrize(("ratio", "mean_run"), [(0.2, 3.0), (0.5, 3.0), (0.3, 8.0)])
def test_geometric_runs_statistics(ratio: float, mean_run: float) -> None:
    # Long windows: runs cut at a window's edges shorten the mean by O(mean_run / L) only.
    mask = geometric_runs_mask((32, 4096, 8), ratio, mean_run, generator=gen(4))
    entries, runs = missing_runs(mask)
    assert abs(entries / runs / mean_run - 1) < 0.03
    assert abs(entries / mask.numel() / ratio - 1) < 0.03
    # Started in the stationary distribution: the first step is missing as often as any.
    assert abs((~mask[:, 0]).float().mean().item() - ratio) < 4 * math.sqrt(ratio / (32 * 8))


def test_geometric_runs_per_window_ratios_and_bound() -> None:
    ratios = torch.tensor([0.0, 0.25, 0.75])  # 0.75 = mean_run / (mean_run + 1) for mean_run=3
    mask = geometric_runs_mask((3, 20000, 8), ratios, generator=gen(7))
    fractions = (~mask).float().mean(dim=(1, 2))
    assert fractions[0] == 0
    torch.testing.assert_close(fractions[1:], ratios[1:], atol=0.01, rtol=0)
    # At the bound every observed run is one step long.
    observed = mask[2]
    after = torch.cat([observed[1:], torch.zeros_like(observed[:1])])
    assert not (observed & after).any()


def test_geometric_runs_of_mean_one_are_single_steps() -> None:
    entries, runs = missing_runs(geometric_runs_mask((8, 1000, 4), 0.3, 1.0, generator=gen(8)))
    assert entries == runs


def test_forecast_mask() -> None:
    mask = forecast_mask((2, 6, 3), 2)
    expected = torch.tensor([True] * 4 + [False] * 2)[None, :, None].expand(2, 6, 3)
    assert mask.dtype == torch.bool and torch.equal(mask, expected)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: random_missing_mask((2, 3), 0.1),
            ValueError,
            r"shape must be \(B, L, C\), three positive integers; got \(2, 3\)",
        ),
        (lambda: random_missing_mask((2, 0, 3), 0.1), ValueError, "shape L must be a positive"),
        (
            lambda: random_missing_mask((2, 3, 4), 1.0),
            ValueError,
            r"missing_ratio must lie in \[0, 1\); got 1.0",
        ),
        (
            lambda: random_missing_mask((2, 3, 4), "half"),
            TypeError,
            r"missing_ratio must be a real number in \[0, 1\); got 'half'",
        ),
        (
            lambda: random_missing_mask((2, 3, 4), torch.tensor([0.1, 0.2, 0.3])),
            ValueError,
            r"tensor of shape \(B,\) = \(2,\); got shape \(3,\)",
        ),
        (
            lambda: random_missing_mask((2, 3, 4), torch.tensor([0, 1])),
            TypeError,
            "floating tensor",
        ),
        (
            lambda: random_missing_mask((2, 3, 4), torch.tensor([0.1, -0.2])),
            ValueError,
            r"missing_ratio must lie in \[0, 1\); got -0.2\d* for window 1",
        ),
        (
            lambda: sample_missing_ratios(0, 0.1, 0.2),
            ValueError,
            "n must be a positive integer; got 0",
        ),
        (
            lambda: sample_missing_ratios(4, 0.5, 0.2),
            ValueError,
            "low must not exceed high; got low=0.5, high=0.2",
        ),
        (
            lambda: sample_missing_ratios(4, 0.1, 1.0),
            ValueError,
            r"high must lie in \[0, 1\); got 1.0",
        ),
        (
            lambda: sample_missing_ratios(4, -0.1, 0.5),
            ValueError,
            r"low must lie in \[0, 1\); got -0.1",
        ),
        (
            lambda: geometric_runs_mask((2, 3, 4), 0.8),
            ValueError,
            r"missing_ratio must lie in \[0, 0.75\] \(mean_run / \(mean_run \+ 1\) for "
            r"mean_run=3.0\); got 0.8",
        ),
        (
            lambda: geometric_runs_mask((2, 3, 4), 0.2, mean_run=0.5),
            ValueError,
            "mean_run must be a finite number >= 1; got 0.5",
        ),
        (
            lambda: geometric_runs_mask((2, 3, 4), 0.2, mean_run="3"),
            TypeError,
            "mean_run must be a real number >= 1; got '3'",
        ),
        (
            lambda: forecast_mask((2, 6, 3), 6),
            ValueError,
            r"horizon must be an integer in \[1, L=6\); got 6",
        ),
        (
            lambda: forecast_mask((2, 6, 3), 0),
            ValueError,
            "horizon must be a positive integer; got 0",
        ),
    ],
)
def test_bad_arguments(call, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        call()


@pytest.mark.gpu
def test_drawn_on_the_device_without_host_sync() -> None:
    generator = torch.Generator("cuda").manual_seed(0)
    torch.cuda.set_sync_debug_mode("error")
    try:
        ratios = sample_missing_ratios(16, 0.1, 0.9, generator=generator)
        masks = [
            random_missing_mask((16, 24, 5), ratios, generator=generator),
            geometric_runs_mask((16, 24, 5), ratios, generator=generator),
            random_missing_mask((16, 24, 5), 0.3, generator=generator),
            forecast_mask((16, 24, 5), 4, device="cuda"),
        ]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert ratios.is_cuda and all(mask.is_cuda and mask.shape == (16, 24, 5) for mask in masks)
