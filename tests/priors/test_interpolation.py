"""Interpolation prior: observed values kept exactly, linear and quadratic gap filling exact on
data of their degree, ends by the nearest observation, the all-missing fallback and the noise."""

import numpy as np
import pytest
import torch

from tsgen.priors import InterpolationPrior, PriorCondition, interpolate_missing
from tsgen.sde import GaussianNoise

LENGTH = 20


def random_mask(n: int, features: int, p: float, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, LENGTH, features, generator=generator) < p


def polynomial_windows(n: int, features: int, degree: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    t = np.arange(LENGTH) / LENGTH
    coefficients = rng.uniform(-1, 1, (n, features, degree + 1))
    return torch.from_numpy(
        np.einsum("nck,lk->nlc", coefficients, t[:, None] ** np.arange(3)[: degree + 1])
    )


def fitted(**kwargs) -> InterpolationPrior:
    return InterpolationPrior(**kwargs).fit(torch.zeros(2, LENGTH, 3, dtype=torch.float64))


def interior(mask: torch.Tensor) -> torch.Tensor:
    """Entries with an observation before and after them in their series."""
    seen_before = mask.cumsum(dim=1) > 0
    seen_after = mask.flip(1).cumsum(dim=1).flip(1) > 0
    return seen_before & seen_after


@pytest.mark.parametrize("method", ["linear", "quadratic"])
def test_observed_values_are_kept_exactly(method):
    values = torch.randn(64, LENGTH, 3, dtype=torch.float64)
    mask = random_mask(64, 3, 0.4)
    prior = fitted(method=method, noise_std=0.3)
    out = prior.sample(64, condition=PriorCondition(torch.where(mask, values, torch.nan), mask))
    assert torch.equal(out[mask], values[mask])
    assert bool(torch.isfinite(out).all())


@pytest.mark.parametrize(("method", "degree"), [("linear", 1), ("quadratic", 2)])
def test_interpolation_is_exact_on_data_of_its_degree(method, degree):
    values = polynomial_windows(200, 3, degree)
    mask = random_mask(200, 3, 0.3)
    out = fitted(method=method).sample(200, condition=PriorCondition(values, mask))
    inside = interior(mask) & (mask.sum(dim=1, keepdim=True) >= degree + 1)
    assert int(inside.sum()) > 1000
    torch.testing.assert_close(out[inside], values[inside], rtol=0, atol=1e-12)


def test_linear_is_not_exact_on_quadratic_data():
    values = polynomial_windows(50, 3, 2)
    mask = random_mask(50, 3, 0.3)
    out = fitted(method="linear").sample(50, condition=PriorCondition(values, mask))
    assert float((out - values)[interior(mask) & ~mask].abs().max()) > 1e-3


def test_known_values():
    values = torch.tensor(
        [np.nan, 1.0, np.nan, np.nan, 4.0, np.nan, 9.0, np.nan], dtype=torch.float64
    )
    mask = ~values.isnan()
    linear = interpolate_missing(values[None, :, None], mask[None, :, None], torch.zeros(1))
    assert linear.flatten().tolist() == [1.0, 1.0, 2.0, 3.0, 4.0, 6.5, 9.0, 9.0]
    # Quadratic through (1, 1), (4, 4), (6, 9)... i.e. the parabola of the nodes around each gap.
    quadratic = interpolate_missing(
        values[None, :, None], mask[None, :, None], torch.zeros(1), method="quadratic"
    ).flatten()
    nodes = np.polyfit([1, 4, 6], [1, 4, 9], 2)
    np.testing.assert_allclose(quadratic[[2, 3, 5]].numpy(), np.polyval(nodes, [2, 3, 5]))
    assert quadratic[[0, 7]].tolist() == [1.0, 9.0]


def test_ends_take_the_nearest_observation():
    values = torch.randn(64, LENGTH, 3, dtype=torch.float64)
    mask = random_mask(64, 3, 0.3)
    out = fitted(method="quadratic").sample(64, condition=PriorCondition(values, mask))
    for n, c in zip(*np.nonzero(mask.any(dim=1).numpy()), strict=True):
        observed = np.nonzero(mask[n, :, c].numpy())[0]
        first, last = observed[0], observed[-1]
        assert bool((out[n, :first, c] == values[n, first, c]).all())
        assert bool((out[n, last + 1 :, c] == values[n, last, c]).all())


def test_all_missing_series_take_the_fallback():
    training = torch.randn(100, LENGTH, 3, dtype=torch.float64) + torch.tensor([0.5, -0.2, 0.0])
    mask = torch.zeros(4, LENGTH, 3, dtype=torch.bool)
    mask[:, :, 2] = True
    condition = PriorCondition(torch.ones(4, LENGTH, 3, dtype=torch.float64), mask)
    prior = InterpolationPrior().fit(training)
    out = prior.sample(4, condition=condition)
    expected = training.mean(dim=(0, 1))
    assert torch.equal(out[..., 0], expected[0].expand(4, LENGTH))
    assert torch.equal(out[..., 1], expected[1].expand(4, LENGTH))
    assert bool((out[..., 2] == 1).all())
    constant = InterpolationPrior(fill_value=0.0).fit(training).sample(4, condition=condition)
    assert bool((constant[..., :2] == 0).all())


def test_noise_is_added_on_unobserved_entries_only():
    values = torch.zeros(4000, LENGTH, 1, dtype=torch.float64)
    mask = random_mask(4000, 1, 0.5)
    prior = InterpolationPrior(noise_std=0.2).fit(values[:2])
    out = prior.sample(
        4000, GaussianNoise(torch.Generator().manual_seed(0)), PriorCondition(values, mask)
    )
    assert bool((out[mask] == 0).all())
    assert float(out[~mask].std()) == pytest.approx(0.2, rel=0.02)


def test_errors():
    with pytest.raises(ValueError, match=r"method must be one of \('linear', 'quadratic'\)"):
        InterpolationPrior(method="cubic")
    with pytest.raises(ValueError, match="noise_std must be finite and non-negative"):
        InterpolationPrior(noise_std=-1.0)
    with pytest.raises(ValueError, match="fill_value must be finite"):
        InterpolationPrior(fill_value=float("inf"))
    prior = fitted()
    with pytest.raises(ValueError, match="InterpolationPrior needs a condition"):
        prior.sample(3)
    values = torch.full((3, LENGTH, 3), torch.nan, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"condition\.values must be finite wherever"):
        prior.sample(
            3, condition=PriorCondition(values, torch.ones(3, LENGTH, 3, dtype=torch.bool))
        )
