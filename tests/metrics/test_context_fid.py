"""Context-FID: repeat prefix consistency, chunk independence, zero for identical sets,
monotone in added noise, argument errors, CPU vs CUDA."""

from __future__ import annotations

import pytest
import torch

from tsgen.data import make_sines
from tsgen.metrics.context_fid import context_fid
from tsgen.metrics.frechet import frechet_distance_from_samples
from tsgen.metrics.ts2vec import encode, train_ts2vec


@pytest.fixture(scope="module")
def sines() -> torch.Tensor:
    return torch.from_numpy(make_sines(96, 16, 3, seed=0)).float()


@pytest.fixture(scope="module")
def other_sines() -> torch.Tensor:
    return torch.from_numpy(make_sines(80, 16, 3, seed=1)).float()


def test_shape_dtype_and_repeat_prefix(sines, other_sines):
    five = context_fid(sines, other_sines, repeats=5, seed=3, iterations=4, device="cpu")
    assert five.shape == (5,) and five.dtype == torch.float64 and five.device.type == "cpu"
    assert bool((five > 0).all())
    three = context_fid(sines, other_sines, repeats=3, seed=3, iterations=4, device="cpu")
    torch.testing.assert_close(three, five[:3], rtol=1e-4, atol=0)
    assert len(set(five.tolist())) == 5  # the repeats are different encoders
    other_seed = context_fid(sines, other_sines, repeats=1, seed=4, iterations=4, device="cpu")
    assert other_seed[0] != five[0]


def test_encode_chunk_size_does_not_change_the_score(sines, other_sines):
    kwargs = {"repeats": 2, "seed": 0, "iterations": 3, "device": "cpu"}
    whole = context_fid(sines, other_sines, encode_batch_size=1024, **kwargs)
    chunked = context_fid(sines, other_sines, encode_batch_size=7, **kwargs)
    torch.testing.assert_close(chunked, whole, rtol=1e-4, atol=1e-8)


def test_identical_sets_score_zero(sines):
    scores = context_fid(sines, sines.clone(), repeats=2, seed=1, iterations=3, device="cpu")
    assert float(scores.abs().max()) < 1e-6


def test_rises_monotonically_with_added_noise():
    real = torch.from_numpy(make_sines(256, 24, 2, seed=5)).float()
    model = train_ts2vec(real, repeats=2, seed=0, iterations=30, device="cpu")
    real_embeddings = encode(model, real)
    noise = torch.randn(real.shape, generator=torch.Generator().manual_seed(0))
    stds = [0.0, 0.05, 0.1, 0.2, 0.4]
    scores = torch.tensor(
        [
            [
                frechet_distance_from_samples(real_embeddings[r], fake_embeddings[r])
                for r in range(2)
            ]
            for fake_embeddings in (encode(model, real + std * noise) for std in stds)
        ]
    )  # (levels, repeats)
    assert float(scores[0].abs().max()) < 1e-6
    assert bool((scores[1:] > 2 * scores[:-1]).all()), scores
    # context_fid runs the same protocol: its first repeat trains the same encoder.
    direct = context_fid(real, real + 0.2 * noise, repeats=1, seed=0, iterations=30, device="cpu")
    torch.testing.assert_close(direct[0], scores[3, 0].double(), rtol=1e-4, atol=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"repeats": 0}, ValueError, "repeats must be a positive integer; got 0"),
        ({"repeats": 2.0}, ValueError, "repeats must be a positive integer; got 2.0"),
        ({"seed": -1}, ValueError, "seed must be an integer >= 0; got -1"),
        ({"iterations": 0}, ValueError, "iterations must be a positive integer; got 0"),
        ({"batch_size": True}, ValueError, "batch_size must be a positive integer; got True"),
        ({"encode_batch_size": 0}, ValueError, "encode_batch_size must be a positive integer"),
        ({"device": "nonsense"}, ValueError, "device must be"),
        ({"progress": "yes"}, TypeError, "progress must be a bool"),
    ],
)
def test_rejects_bad_arguments(sines, kwargs, error, match):
    with pytest.raises(error, match=match):
        context_fid(sines, sines, **({"iterations": 1} | kwargs))


def test_rejects_bad_windows(sines):
    with pytest.raises(ValueError, match="same window length L"):
        context_fid(sines, sines[:, :8])
    with pytest.raises(TypeError, match="same dtype"):
        context_fid(sines, sines.double())
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        context_fid(sines.numpy(), sines)
    with pytest.raises(ValueError, match="fake needs at least 2 windows"):
        context_fid(sines, sines[:1])
    with pytest.raises(ValueError, match="L >= 2"):
        context_fid(sines[:, :1], sines[:, :1])
    with pytest.raises(ValueError, match="finite"):
        context_fid(sines, torch.full_like(sines, float("nan")))


@pytest.mark.gpu
def test_cuda_matches_cpu(sines, other_sines):
    kwargs = {"repeats": 2, "seed": 0, "iterations": 20}
    on_cpu = context_fid(sines, other_sines, device="cpu", **kwargs)
    on_cuda = context_fid(sines.cuda(), other_sines.cuda(), device="cuda", **kwargs)
    assert on_cuda.device.type == "cpu"
    torch.testing.assert_close(on_cuda, on_cpu, rtol=1e-2, atol=1e-6)
