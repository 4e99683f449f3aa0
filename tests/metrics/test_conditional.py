"""Tests for tsgen.metrics.conditional: masked point errors, sample CRPS (against the brute-force
O(S^2) formula and the Gaussian closed form, empirical and fair), the predictive mean's MSE and
CSDI's normalised quantile CRPS."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from tsgen.metrics.conditional import (
    DEFAULT_QUANTILES,
    crps_samples,
    masked_mae,
    masked_mse,
    normalized_quantile_crps,
    per_step_accuracy,
    predictive_mean_mse,
)


def _brute_force_crps(samples: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-entry V-statistic CRPS with the explicit S x S pairwise tensor, (B, L, C)."""
    abs_err = (samples - target.unsqueeze(1)).abs().mean(dim=1)
    pair = (samples.unsqueeze(1) - samples.unsqueeze(2)).abs().mean(dim=(1, 2))
    return abs_err - 0.5 * pair


def _csdi_reference(samples, target, mask, quantiles) -> float:
    """Loop-based transcription of CSDI's calc_quantile_CRPS (Tashiro et al. 2021)."""
    eval_points = mask.double()
    denom = (target * eval_points).abs().sum()
    total = 0.0
    for q in quantiles:
        forecast = torch.quantile(samples, q, dim=1)
        loss = 2 * torch.sum(
            torch.abs((forecast - target) * eval_points * ((target <= forecast).double() - q))
        )  # CSDI writes ``(target <= forecast) * 1.0``, which is float32; .double() keeps 1e-10
        total += float(loss / denom)
    return total / len(quantiles)


# ------------------------------------------------------------------------------------------
# masked_mse / masked_mae
# ------------------------------------------------------------------------------------------


def test_point_metrics_hand_values_and_nan_outside_mask_ignored() -> None:
    target = torch.tensor([[[1.0, float("nan")], [3.0, 4.0]]])  # (1, 2, 2)
    prediction = torch.tensor([[[2.0, 100.0], [1.0, float("nan")]]])
    mask = torch.tensor([[[True, False], [True, False]]])
    # Scored errors: 1 and -2.
    assert masked_mse(prediction, target, mask).item() == pytest.approx((1 + 4) / 2)
    assert masked_mae(prediction, target, mask).item() == pytest.approx((1 + 2) / 2)
    assert masked_mse(prediction, target, mask).shape == ()


def test_valid_mask_restricts_scored_entries() -> None:
    gen = torch.Generator().manual_seed(0)
    prediction = torch.randn(3, 5, 2, generator=gen)
    target = torch.randn(3, 5, 2, generator=gen)
    mask = torch.rand(3, 5, 2, generator=gen) < 0.6
    mask[:, 0] = True
    valid = torch.ones(3, 5, dtype=torch.bool)
    valid[1, 3:] = False
    target[1, 3:] = float("nan")  # padding may hold anything
    expected_scored = mask & valid.unsqueeze(-1)
    err = (prediction - torch.nan_to_num(target)).square()
    expected = err[expected_scored].mean()
    assert torch.allclose(masked_mse(prediction, target, mask, valid=valid), expected)
    full_valid = valid.unsqueeze(-1).expand(-1, -1, 2)
    assert torch.allclose(masked_mse(prediction, target, mask, valid=full_valid), expected)


def test_point_metric_errors() -> None:
    x = torch.zeros(2, 3, 4)
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="no entry is scored"):
        masked_mse(x, x, torch.zeros_like(mask))
    with pytest.raises(ValueError, match="no entry is scored"):
        masked_mae(x, x, mask, valid=torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"prediction shape \(2, 3, 5\).*target shape \(2, 3, 4\)"):
        masked_mse(torch.zeros(2, 3, 5), x, mask)
    with pytest.raises(ValueError, match=r"mask shape \(2, 3\)"):
        masked_mse(x, x, mask[..., 0])
    with pytest.raises(ValueError, match="valid shape"):
        masked_mse(x, x, mask, valid=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="mask must be a bool tensor"):
        masked_mse(x, x, mask.float())
    bad = x.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="target has non-finite values at scored entries"):
        masked_mae(x, bad, mask)
    with pytest.raises(ValueError, match="prediction has non-finite"):
        masked_mae(bad, x, mask)


# ------------------------------------------------------------------------------------------
# crps_samples
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_samples", [1, 2, 7, 64])
def test_crps_sort_formula_matches_brute_force(num_samples: int) -> None:
    gen = torch.Generator().manual_seed(num_samples)
    samples = torch.randn(3, num_samples, 6, 2, generator=gen, dtype=torch.float64)
    samples[0, :, 0, 0] = 0.5  # ties
    target = torch.randn(3, 6, 2, generator=gen, dtype=torch.float64)
    mask = torch.rand(3, 6, 2, generator=gen) < 0.5
    mask[0, 0, 0] = True
    expected = _brute_force_crps(samples, target)[mask].mean()
    got = crps_samples(samples, target, mask)
    assert got.shape == ()
    assert torch.allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_crps_one_sample_is_absolute_error_and_nan_outside_mask_ignored() -> None:
    gen = torch.Generator().manual_seed(1)
    samples = torch.randn(2, 1, 4, 3, generator=gen)
    target = torch.randn(2, 4, 3, generator=gen)
    mask = torch.rand(2, 4, 3, generator=gen) < 0.5
    mask[0, 0, 0] = True
    target[~mask] = float("nan")
    for b in range(2):  # unscored samples may be anything, too
        samples[b, :, ~mask[b]] = float("inf")
    expected = masked_mae(torch.nan_to_num(samples[:, 0], posinf=0.0), target, mask)
    assert torch.allclose(crps_samples(samples, target, mask), expected)


def _gaussian_crps(mu: torch.Tensor, sigma: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Closed-form CRPS of N(mu, sigma^2) at y (Gneiting & Raftery 2007, eq. 5)."""
    z = (y - mu) / sigma
    normal = torch.distributions.Normal(0.0, 1.0)
    pdf = normal.log_prob(z).exp()
    return sigma * (z * (2 * normal.cdf(z) - 1) + 2 * pdf - 1 / math.sqrt(math.pi))


def test_crps_matches_gaussian_closed_form() -> None:
    gen = torch.Generator().manual_seed(2)
    S, L, C = 4000, 20, 3
    mu = 3 * torch.randn(1, L, C, generator=gen, dtype=torch.float64)
    sigma = 0.2 + 2 * torch.rand(1, L, C, generator=gen, dtype=torch.float64)
    y = mu + sigma * 2 * torch.randn(1, L, C, generator=gen, dtype=torch.float64)
    samples = mu.unsqueeze(1) + sigma.unsqueeze(1) * torch.randn(
        1, S, L, C, generator=gen, dtype=torch.float64
    )
    closed = _gaussian_crps(mu, sigma, y)
    # The V-statistic (i = j pairs included) overestimates the CRPS of the predictive by
    # 0.5 E|X - X'| / S = sigma / (S sqrt(pi)).
    bias = sigma / (S * math.sqrt(math.pi))
    ones = torch.ones(1, L, C, dtype=torch.bool)
    for index in range(L * C):  # entry by entry, against the per-entry Monte Carlo error
        entry = torch.zeros(L * C, dtype=torch.bool)
        entry[index] = True
        entry = entry.view(1, L, C) & ones
        got = crps_samples(samples, y, entry)
        # The estimator's standard deviation is at most sigma / sqrt(S) (|X - y| and the pair
        # term are both 1-Lipschitz in each sample); allow 5 of them.
        tol = 5 * sigma[entry].item() / math.sqrt(S)
        assert abs(got.item() - (closed + bias)[entry].item()) < tol
    mean_closed = (closed + bias).mean()
    # Averaged over 60 independent entries the error shrinks by ~sqrt(60).
    tol = 5 * sigma.max().item() / math.sqrt(S * L * C)
    assert abs(crps_samples(samples, y, ones).item() - mean_closed.item()) < tol


def test_crps_is_the_v_statistic_bias_visible_at_small_s() -> None:
    # With S = 10 the V-statistic bias sigma / (S sqrt(pi)) = 0.0564 is far above the Monte Carlo
    # error of the mean over 200 000 entries (~0.001), so this distinguishes it from the unbiased
    # U-statistic (which would agree with the closed form).
    gen = torch.Generator().manual_seed(3)
    S, L = 10, 200_000
    y = torch.randn(1, L, 1, generator=gen, dtype=torch.float64)
    samples = torch.randn(1, S, L, 1, generator=gen, dtype=torch.float64)
    mask = torch.ones(1, L, 1, dtype=torch.bool)
    closed = _gaussian_crps(torch.zeros(()), torch.ones(()), y).mean().item()
    bias = 1 / (S * math.sqrt(math.pi))
    assert abs(crps_samples(samples, y, mask).item() - (closed + bias)) < 0.01


@pytest.mark.parametrize("num_samples", [2, 3, 9])
def test_fair_crps_is_the_u_statistic(num_samples: int) -> None:
    gen = torch.Generator().manual_seed(10 + num_samples)
    samples = torch.randn(3, num_samples, 5, 2, generator=gen, dtype=torch.float64)
    samples[1, :, 2, 1] = -0.25  # ties
    target = torch.randn(3, 5, 2, generator=gen, dtype=torch.float64)
    mask = torch.rand(3, 5, 2, generator=gen) < 0.6
    mask[1, 2, 1] = True
    abs_err = (samples - target.unsqueeze(1)).abs().mean(dim=1)
    pair_sum = (samples.unsqueeze(1) - samples.unsqueeze(2)).abs().sum(dim=(1, 2))
    expected = (abs_err - 0.5 * pair_sum / (num_samples * (num_samples - 1)))[mask].mean()
    assert torch.allclose(crps_samples(samples, target, mask, fair=True), expected, rtol=1e-12)


@pytest.mark.parametrize("num_samples", [2, 10])
def test_fair_crps_matches_gaussian_closed_form_at_any_sample_count(num_samples: int) -> None:
    # The empirical CRPS is off by sigma / (S sqrt(pi)) (0.28 at S = 2, 0.056 at S = 10); the
    # fair one has no such term: over 200 000 entries its Monte Carlo error is ~0.002.
    gen = torch.Generator().manual_seed(4)
    L = 200_000
    y = torch.randn(1, L, 1, generator=gen, dtype=torch.float64)
    samples = torch.randn(1, num_samples, L, 1, generator=gen, dtype=torch.float64)
    mask = torch.ones(1, L, 1, dtype=torch.bool)
    closed = _gaussian_crps(torch.zeros(()), torch.ones(()), y).mean().item()
    assert abs(crps_samples(samples, y, mask, fair=True).item() - closed) < 0.01
    bias = 1 / (num_samples * math.sqrt(math.pi))
    assert abs(crps_samples(samples, y, mask).item() - (closed + bias)) < 0.01


def test_crps_validation() -> None:
    target = torch.zeros(2, 3, 4)
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"samples shape \(2, 5, 3, 3\).*target shape \(2, 3, 4\)"):
        crps_samples(torch.zeros(2, 5, 3, 3), target, mask)
    with pytest.raises(ValueError, match=r"samples shape \(2, 3, 4\)"):
        crps_samples(torch.zeros(2, 3, 4), target, mask)
    bad = torch.zeros(2, 5, 3, 4)
    bad[1, 2, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="samples has non-finite"):
        crps_samples(bad, target, mask)
    with pytest.raises(ValueError, match="no entry is scored"):
        crps_samples(torch.zeros(2, 5, 3, 4), target, torch.zeros_like(mask))
    with pytest.raises(ValueError, match=r"fair=True needs at least 2 samples .* got S = 1"):
        crps_samples(torch.zeros(2, 1, 3, 4), target, mask, fair=True)


# ------------------------------------------------------------------------------------------
# predictive_mean_mse
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_samples", [2, 10])
def test_predictive_mean_mse_is_unbiased_for_the_mean_at_any_sample_count(
    num_samples: int,
) -> None:
    # Samples N(mu, sigma^2) around a target y: the MSE of the sample mean has expectation
    # (mu - y)^2 + sigma^2 / S, the estimate (mu - y)^2 whatever S.
    gen = torch.Generator().manual_seed(5)
    L = 200_000
    mu = torch.randn(1, L, 1, generator=gen, dtype=torch.float64)
    sigma = 0.5 + torch.rand(1, L, 1, generator=gen, dtype=torch.float64)
    y = torch.randn(1, L, 1, generator=gen, dtype=torch.float64)
    noise = torch.randn(1, num_samples, L, 1, generator=gen, dtype=torch.float64)
    samples = mu.unsqueeze(1) + sigma.unsqueeze(1) * noise
    mask = torch.ones(1, L, 1, dtype=torch.bool)
    truth = (mu - y).square().mean().item()
    naive = masked_mse(samples.mean(dim=1), y, mask).item()
    # Five standard errors of the estimate's mean error over the entries: 0.027 at S = 2,
    # where a variance over S instead of S - 1 would be 0.27 off (0.011 at S = 10).
    estimate = (samples.mean(dim=1) - y).square() - samples.var(dim=1) / num_samples
    tol = 5 * (estimate - (mu - y).square()).std().item() / math.sqrt(L)
    assert abs(naive - (truth + sigma.square().mean().item() / num_samples)) < tol
    assert abs(predictive_mean_mse(samples, y, mask).item() - truth) < tol


def test_predictive_mean_mse_of_identical_samples_is_the_mse_and_ignores_unscored() -> None:
    gen = torch.Generator().manual_seed(6)
    point = torch.randn(2, 4, 3, generator=gen)
    target = torch.randn(2, 4, 3, generator=gen)
    mask = torch.rand(2, 4, 3, generator=gen) < 0.5
    mask[0, 0, 0] = True
    samples = point.unsqueeze(1).repeat(1, 3, 1, 1)
    for b in range(2):
        samples[b, :, ~mask[b]] = float("inf")
    target[~mask] = float("nan")
    expected = masked_mse(point, target, mask)
    assert torch.allclose(predictive_mean_mse(samples, target, mask), expected)
    with pytest.raises(ValueError, match=r"at least 2 samples per series .* got S = 1"):
        predictive_mean_mse(samples[:, :1], target, mask)


# ------------------------------------------------------------------------------------------
# normalized_quantile_crps
# ------------------------------------------------------------------------------------------


def test_quantile_crps_hand_computed() -> None:
    # Entry A: samples [0, 2], y = 3.  q=0.25 -> F=0.5, loss |(0.5-3)(0-0.25)| = 0.625;
    #                                   q=0.75 -> F=1.5, loss |(1.5-3)(0-0.75)| = 1.125.
    # Entry B: samples [-1, 1], y = -2. q=0.25 -> F=-0.5, loss |(1.5)(1-0.25)| = 1.125;
    #                                   q=0.75 -> F=0.5, loss |(2.5)(1-0.75)| = 0.625.
    # Entry C is not scored (NaN target). sum|y| = 5; each level: 2 * 1.75 / 5 = 0.7.
    samples = torch.tensor([[[[0.0, -1.0, 9.0]], [[2.0, 1.0, 9.0]]]])  # (1, 2, 1, 3)
    target = torch.tensor([[[3.0, -2.0, float("nan")]]])
    mask = torch.tensor([[[True, True, False]]])
    got = normalized_quantile_crps(samples, target, mask, quantiles=(0.25, 0.75))
    assert got.item() == pytest.approx(0.7)
    # ``valid`` comes fourth, as in the sibling metrics; padding entry B leaves entry A:
    # 2 * (0.625 + 1.125) / 2 / 3 per level.
    valid = torch.tensor([[[True, False, True]]])
    padded = normalized_quantile_crps(samples, target, mask, valid, quantiles=(0.25, 0.75))
    assert padded.item() == pytest.approx(1.75 / 3)


def test_quantile_crps_matches_csdi_reference() -> None:
    gen = torch.Generator().manual_seed(4)
    samples = torch.randn(3, 50, 8, 2, generator=gen, dtype=torch.float64)
    target = torch.randn(3, 8, 2, generator=gen, dtype=torch.float64)
    mask = torch.rand(3, 8, 2, generator=gen) < 0.4
    mask[0, 0, 0] = True
    got = normalized_quantile_crps(samples, target, mask)
    assert len(DEFAULT_QUANTILES) == 19
    assert DEFAULT_QUANTILES[0] == 0.05 and DEFAULT_QUANTILES[-1] == 0.95
    assert list(DEFAULT_QUANTILES) == pytest.approx([0.05 * i for i in range(1, 20)], abs=1e-12)
    expected = _csdi_reference(samples, target, mask, DEFAULT_QUANTILES)
    assert got.item() == pytest.approx(expected, rel=1e-10)


def test_quantile_crps_validation() -> None:
    samples = torch.ones(1, 4, 2, 2)
    target = torch.zeros(1, 2, 2)
    mask = torch.ones(1, 2, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"sum of \|target\|"):
        normalized_quantile_crps(samples, target, mask)
    with pytest.raises(ValueError, match="quantiles"):
        normalized_quantile_crps(samples, target + 1, mask, quantiles=(0.5, 1.0))


@pytest.mark.gpu
def test_metrics_on_cuda_match_cpu() -> None:
    gen = torch.Generator().manual_seed(5)
    samples = torch.randn(2, 16, 5, 3, generator=gen)
    target = torch.randn(2, 5, 3, generator=gen)
    mask = torch.rand(2, 5, 3, generator=gen) < 0.5
    mask[0, 0, 0] = True
    fair_crps = functools.partial(crps_samples, fair=True)
    for fn in (crps_samples, fair_crps, predictive_mean_mse, normalized_quantile_crps):
        cpu = fn(samples, target, mask)
        gpu = fn(samples.cuda(), target.cuda(), mask.cuda())
        assert gpu.device.type == "cuda"
        assert torch.allclose(gpu.cpu(), cpu, atol=1e-5)
    got = masked_mse(samples[:, 0].cuda(), target.cuda(), mask.cuda())
    assert torch.allclose(got.cpu(), masked_mse(samples[:, 0], target, mask), atol=1e-6)


def test_per_step_accuracy_ignores_padding() -> None:
    labels = torch.tensor([[0, 1, 2, -1], [1, 1, -1, -1]])
    valid = labels >= 0
    # Scores whose arg-max is right at (0, 0), (0, 2), (1, 1) and wrong at (0, 1), (1, 0); the
    # padding steps predict class 0 against label -1 and must not count.
    predicted = torch.tensor([[0, 2, 2, 0], [0, 1, 0, 0]])
    scores = torch.nn.functional.one_hot(predicted, 3).double()
    assert per_step_accuracy(scores, labels, valid).item() == pytest.approx(3 / 5)
    assert per_step_accuracy(predicted, labels, valid).item() == pytest.approx(3 / 5)
    assert per_step_accuracy(predicted[:, :2], labels[:, :2]).item() == pytest.approx(2 / 4)


def test_per_step_accuracy_validation() -> None:
    labels = torch.zeros(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="labels must be an integer tensor"):
        per_step_accuracy(torch.zeros(2, 3, 4), labels.float())
    with pytest.raises(ValueError, match=r"scores must be \(B, L, K\)"):
        per_step_accuracy(torch.zeros(2, 3), labels)
    with pytest.raises(ValueError, match="predictions of shape"):
        per_step_accuracy(torch.zeros(2, 4, 5), labels)
    with pytest.raises(ValueError, match="valid must be a bool tensor"):
        per_step_accuracy(torch.zeros(2, 3, 5), labels, torch.ones(2, 3))
    with pytest.raises(ValueError, match="no time step"):
        per_step_accuracy(torch.zeros(2, 3, 5), labels, torch.zeros(2, 3, dtype=torch.bool))
