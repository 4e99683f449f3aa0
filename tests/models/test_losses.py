"""Tests for tsgen/models/losses.py."""

from __future__ import annotations

import math
import re

import pytest
import torch

from tsgen.models.losses import default_fourier_weight, fourier_regression_loss, training_times


def test_default_fourier_weight_is_sqrt_length_over_five():
    assert default_fourier_weight(24) == math.sqrt(24) / 5


def test_constant_error_has_the_closed_form_loss():
    """D - x0 = e everywhere: |e| in time; F(e) with norm="forward" is e at frequency 0 and 0
    elsewhere, so the Fourier term averages |e| over L frequencies: |e| / L."""
    length, e, weight = 8, 0.3, 0.7
    target = torch.randn(2, length, 3, dtype=torch.float64)
    loss = fourier_regression_loss(target + e, target, weight)
    expected = e + weight * e / length
    torch.testing.assert_close(loss, torch.full((2,), expected, dtype=torch.float64))


def test_single_frequency_error_matches_its_fourier_coefficients():
    length = 16
    steps = torch.arange(length, dtype=torch.float64)
    error = torch.cos(2 * math.pi * 3 * steps / length)[None, :, None]
    loss = fourier_regression_loss(error, torch.zeros_like(error), 1.0)
    # cos at bin 3 has real coefficients 1/2 at bins 3 and L-3: mean |Re| = 1 / L.
    expected = error.abs().mean() + 1.0 / length
    torch.testing.assert_close(loss, expected.reshape(1))


def test_mask_restricts_the_time_term_but_not_the_fourier_term():
    target = torch.zeros(1, 4, 1, dtype=torch.float64)
    prediction = torch.tensor([[[1.0], [0.0], [0.0], [0.0]]], dtype=torch.float64)
    mask = torch.tensor([[[False], [True], [True], [True]]])
    masked = fourier_regression_loss(prediction, target, 0.0, mask)
    assert float(masked) == 0.0
    unmasked = fourier_regression_loss(prediction, target, 0.0)
    assert float(unmasked) == 0.25
    with_fourier = fourier_regression_loss(prediction, target, 1.0, mask)
    assert float(with_fourier) > 0


def test_squared_error_constant_error_has_the_closed_form_loss():
    """As the L1 case with e^2: e^2 in time, and the Fourier term e^2 / L (one nonzero bin)."""
    length, e, weight = 8, 0.3, 0.7
    target = torch.randn(2, length, 3, dtype=torch.float64)
    loss = fourier_regression_loss(target + e, target, weight, norm="l2")
    expected = e**2 + weight * e**2 / length
    torch.testing.assert_close(loss, torch.full((2,), expected, dtype=torch.float64))


def test_squared_error_fourier_term_is_the_time_term_over_length_by_parseval():
    length = 24
    prediction = torch.randn(5, length, 3, dtype=torch.float64)
    target = torch.randn(5, length, 3, dtype=torch.float64)
    time_term = fourier_regression_loss(prediction, target, 0.0, norm="l2")
    torch.testing.assert_close(time_term, (prediction - target).square().mean(dim=(1, 2)))
    total = fourier_regression_loss(prediction, target, 2.0, norm="l2")
    torch.testing.assert_close(total, time_term * (1 + 2.0 / length))


def test_squared_error_is_minimised_by_the_mean_and_absolute_error_by_the_median():
    """Over draws of a skewed target, the constant prediction minimising the average loss is the
    mean for "l2" and the median for "l1" (time term only)."""
    generator = torch.Generator().manual_seed(0)
    # Exponential(1) draws by inversion: mean 1, median log 2.
    draws = -torch.log(torch.rand(4001, generator=generator, dtype=torch.float64))
    target = draws.reshape(-1, 1, 1)
    candidates = torch.linspace(0.3, 1.4, 221, dtype=torch.float64)

    def best(norm: str) -> float:
        losses = torch.stack(
            [
                fourier_regression_loss(
                    torch.full_like(target, float(c)), target, 0.0, norm=norm
                ).mean()
                for c in candidates
            ]
        )
        return float(candidates[losses.argmin()])

    assert abs(best("l2") - float(draws.mean())) <= 0.005
    assert abs(best("l1") - float(draws.median())) <= 0.005


def test_unknown_loss_norm_names_the_argument():
    x = torch.zeros(1, 4, 1)
    with pytest.raises(ValueError, match="norm must be one of"):
        fourier_regression_loss(x, x, 1.0, norm="huber")


def test_uniform_training_times_are_the_references():
    generator = torch.Generator().manual_seed(0)
    t = training_times(200_000, 1e-4, 1.0, "uniform", generator=generator)
    assert t.shape == (200_000,)
    assert float(t.min()) >= 1e-4 and float(t.max()) <= 1.0
    assert abs(float(t.mean()) - (1 + 1e-4) / 2) < 5e-3


def test_log_uniform_training_times_cover_every_decade_equally():
    generator = torch.Generator().manual_seed(0)
    t = training_times(200_000, 1e-4, 1.0, "log_uniform", generator=generator, dtype=torch.float64)
    assert float(t.min()) >= 1e-4 and float(t.max()) <= 1.0
    decades = torch.histc(t.log10(), bins=4, min=-4.0, max=0.0) / t.numel()
    torch.testing.assert_close(
        decades, torch.full((4,), 0.25, dtype=torch.float64), atol=5e-3, rtol=0
    )


def test_unknown_time_distribution_is_named():
    with pytest.raises(
        ValueError,
        match=r"distribution must be one of \('uniform', 'log_uniform', 'mixed'\); got 'log'",
    ):
        training_times(3, 1e-4, 1.0, "log")


def test_mixed_training_times_are_half_uniform_half_log_uniform():
    generator = torch.Generator().manual_seed(0)
    t = training_times(200_000, 1e-4, 1.0, "mixed", generator=generator, dtype=torch.float64)
    # P(t < 1e-2) = (0.0099 + 0.5) / 2 and P(t > 0.1) = (0.9 + 0.25) / 2.
    assert abs(float((t < 1e-2).double().mean()) - 0.25495) < 5e-3
    assert abs(float((t > 0.1).double().mean()) - 0.575) < 5e-3


def test_mixed_training_times_draw_log_uniformly_with_the_log_fraction():
    generator = torch.Generator().manual_seed(0)
    t = training_times(
        200_000, 1e-4, 1.0, "mixed", log_fraction=0.2, generator=generator, dtype=torch.float64
    )
    # P(t < 1e-2) = 0.8 * 0.0099 + 0.2 * 0.5 and P(t > 0.1) = 0.8 * 0.9 + 0.2 * 0.25.
    assert abs(float((t < 1e-2).double().mean()) - 0.10792) < 5e-3
    assert abs(float((t > 0.1).double().mean()) - 0.77) < 5e-3


@pytest.mark.parametrize("log_fraction", [0.0, 1.0, -0.1, True, "0.2"])
def test_a_bad_log_fraction_is_named_with_what_came(log_fraction):
    expected = f"log_fraction must be a number strictly between 0 and 1; got {log_fraction!r}"
    with pytest.raises(ValueError, match=re.escape(expected)):
        training_times(3, 1e-4, 1.0, "mixed", log_fraction=log_fraction)
