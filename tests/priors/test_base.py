"""The prior contract shared by every prior: per-sample seeding, fitted state in the state dict,
dtype and device, conditions and input errors."""

import pytest
import torch

from tsgen.priors import (
    GaussianProcessPrior,
    InterpolationPrior,
    NormalPrior,
    NotFittedError,
    PerStepPrior,
    PriorCondition,
    TrendPrior,
    UniformPrior,
)
from tsgen.sde import GaussianNoise, PerSampleNoise

LENGTH, FEATURES = 24, 3


def smooth_windows(n: int, dtype: torch.dtype = torch.float64, seed: int = 0) -> torch.Tensor:
    """Random-walk windows ``(n, L, C)`` scaled into roughly [-1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    steps = torch.randn(n, LENGTH, FEATURES, generator=generator, dtype=dtype)
    return (0.1 * steps.cumsum(dim=1)).clamp(-1, 1)


def interpolation_condition(n: int) -> PriorCondition:
    values = smooth_windows(n, seed=1)
    mask = torch.rand(n, LENGTH, FEATURES, generator=torch.Generator().manual_seed(2)) < 0.5
    return PriorCondition(values=torch.where(mask, values, torch.nan), mask=mask)


# (factory, condition for n samples or None)
PRIORS = {
    "normal": (NormalPrior, None),
    "uniform": (UniformPrior, None),
    "per_step": (PerStepPrior, None),
    "gp": (lambda: GaussianProcessPrior(n_starts=1), None),
    "gp_reference": (lambda: GaussianProcessPrior(mode="reference", variance=0.5), None),
    "gp_empirical": (lambda: GaussianProcessPrior(kernel="empirical"), None),
    "trend_butterworth": (TrendPrior, None),
    "trend_given": (
        lambda: TrendPrior(method="polynomial", degree=2),
        lambda n: PriorCondition(trends=smooth_windows(n, seed=3)),
    ),
    "interpolation": (lambda: InterpolationPrior(noise_std=0.1), interpolation_condition),
    "interpolation_quadratic": (
        lambda: InterpolationPrior(method="quadratic", noise_std=0.1),
        interpolation_condition,
    ),
}


def fitted(name: str, dtype: torch.dtype = torch.float64):
    factory, _ = PRIORS[name]
    return factory().fit(smooth_windows(200, dtype))


def condition_for(name: str, n: int) -> PriorCondition | None:
    make = PRIORS[name][1]
    return None if make is None else make(n)


@pytest.mark.parametrize("name", PRIORS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sample_i_does_not_depend_on_the_batch(name, dtype):
    prior = fitted(name, dtype)
    big_condition = condition_for(name, 64)
    small_condition = None
    if big_condition is not None:
        small_condition = PriorCondition(
            **{f: getattr(big_condition, f)[:8] for f in big_condition.given}
        )
    small = prior.sample(8, PerSampleNoise(range(8)), small_condition)
    big = prior.sample(64, PerSampleNoise(range(64)), big_condition)
    assert small.shape == (8, LENGTH, FEATURES) and small.dtype == dtype
    assert torch.equal(small, big[:8])
    assert not torch.equal(big[0], big[1])


@pytest.mark.parametrize("name", PRIORS)
def test_state_dict_restores_a_fresh_prior(name):
    prior = fitted(name)
    fresh = PRIORS[name][0]().double()
    fresh.load_state_dict(prior.state_dict())
    assert (fresh.length, fresh.n_features) == (LENGTH, FEATURES)
    condition = condition_for(name, 16)
    expected = prior.sample(16, PerSampleNoise(range(16)), condition)
    assert torch.equal(fresh.sample(16, PerSampleNoise(range(16)), condition), expected)


@pytest.mark.parametrize("name", PRIORS)
def test_sampling_before_fit_names_the_prior(name):
    prior = PRIORS[name][0]()
    with pytest.raises(NotFittedError, match=f"{type(prior).__name__} is not fitted"):
        prior.sample(4, condition=condition_for(name, 4))


@pytest.mark.parametrize("name", PRIORS)
def test_fit_rejects_bad_windows(name):
    prior = PRIORS[name][0]()
    with pytest.raises(ValueError, match=r"windows must have shape \(N, L, C\).*got \(10, 24\)"):
        prior.fit(torch.zeros(10, 24))
    with pytest.raises(TypeError, match="windows must be a float tensor"):
        prior.fit(torch.zeros(10, 24, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="windows must be a float tensor"):
        prior.fit([[[0.0]]])
    bad = smooth_windows(10)
    bad[3, 5, 1] = torch.nan
    with pytest.raises(ValueError, match="windows must be finite; got 1 NaN or infinite"):
        prior.fit(bad)


@pytest.mark.parametrize("name", ["normal", "per_step", "gp"])
def test_priors_without_condition_refuse_one(name):
    prior = fitted(name)
    with pytest.raises(ValueError, match=f"{type(prior).__name__} takes no condition"):
        prior.sample(4, condition=PriorCondition(trends=torch.zeros(4, LENGTH, FEATURES)))


def test_condition_checks():
    prior = fitted("interpolation")
    with pytest.raises(ValueError, match="InterpolationPrior needs a condition"):
        prior.sample(4)
    with pytest.raises(ValueError, match=r"reads the condition fields \('values', 'mask'\)"):
        prior.sample(4, condition=PriorCondition(trends=torch.zeros(4, LENGTH, FEATURES)))
    with pytest.raises(ValueError, match=r"must have shape \(n, L, C\) = \(4, 24, 3\); got \(5,"):
        prior.sample(4, condition=interpolation_condition(5))
    with pytest.raises(TypeError, match="condition must be a PriorCondition"):
        prior.sample(4, condition={"values": torch.zeros(4, LENGTH, FEATURES)})
    with pytest.raises(ValueError, match=r"values and PriorCondition\.mask must be given together"):
        PriorCondition(values=torch.zeros(4, LENGTH, FEATURES))
    with pytest.raises(TypeError, match="mask must be a bool tensor"):
        PriorCondition(values=torch.zeros(2, 3, 1), mask=torch.ones(2, 3, 1))
    with pytest.raises(ValueError, match="must share one shape"):
        PriorCondition(values=torch.zeros(2, 3, 1), mask=torch.ones(2, 4, 1, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"trends must be a tensor of shape \(n, L, C\)"):
        PriorCondition(trends=torch.zeros(2, 3))


def test_sample_checks_n_and_noise():
    prior = fitted("normal")
    for n in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="n must be a positive integer"):
            prior.sample(n)
    with pytest.raises(ValueError, match=r"noise given as a tensor must have shape \(4, 24, 3\)"):
        prior.sample(4, noise=torch.zeros(4, 24))
    with pytest.raises(ValueError, match="PerSampleNoise has 3 seeds"):
        prior.sample(4, noise=PerSampleNoise(range(3)))


def test_noise_tensor_is_the_draw_and_samples_follow_the_module_dtype():
    prior = fitted("per_step")
    z = torch.randn(5, LENGTH, FEATURES, dtype=torch.float64)
    torch.testing.assert_close(prior.sample(5, noise=z), prior.mean + prior.std * z)
    prior.float()
    out = prior.sample(5, noise=GaussianNoise(torch.Generator().manual_seed(0)))
    assert out.dtype == torch.float32 and prior.mean.dtype == torch.float32
