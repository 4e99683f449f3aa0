"""The trend + season transformer: shapes, sizes, the exact decomposition (polynomial trend,
top-k seasonal spectrum), time conditioning, gradients, errors, batch independence, overfitting
and construction from a ``class_path`` config."""

import math

import pytest
import torch
from jsonargparse import ArgumentParser
from torch import nn

from tsgen.nn import (
    SinusoidalTimeEmbedding,
    TrendSeasonComponents,
    TrendSeasonTransformer,
    default_season_top_k,
    legendre_basis,
)

F64 = torch.float64
SMALL = {"d_model": 32, "n_heads": 4, "encoder_layers": 1, "decoder_layers": 2}
# Reference sizes at L = 24 (timebridge.md): encoder / decoder layers, d_model, features.
REFERENCE = {
    "sines": (1, 2, 64, 5),
    "stocks": (2, 2, 64, 6),
    "etth": (3, 2, 64, 7),
}


def _net(window: int = 24, n_features: int = 3, dtype: torch.dtype = torch.float32, **kwargs):
    torch.manual_seed(0)
    return TrendSeasonTransformer(window, n_features, **{**SMALL, **kwargs}).to(dtype).eval()


@pytest.mark.parametrize(("window", "n_features", "batch"), [(24, 5, 3), (7, 1, 1), (32, 3, 4)])
def test_output_shape_for_scalar_and_per_sample_time(window, n_features, batch):
    net = _net(window, n_features)
    x = torch.randn(batch, window, n_features)
    per_sample = net(x, torch.rand(batch))
    assert per_sample.shape == (batch, window, n_features)
    scalar = net(x, 0.3)
    assert torch.equal(scalar, net(x, torch.tensor(0.3)))
    assert torch.equal(scalar, net(x, torch.full((batch,), 0.3)))


@pytest.mark.parametrize("dataset", sorted(REFERENCE))
def test_parameter_count_at_reference_sizes(dataset):
    enc, dec, d_model, n_features = REFERENCE[dataset]
    net = TrendSeasonTransformer(
        24, n_features, d_model=d_model, encoder_layers=enc, decoder_layers=dec
    )
    count = sum(p.numel() for p in net.parameters())
    print(f"{dataset}: {count} parameters")
    assert 250_000 <= count <= 1_200_000


def test_output_is_exactly_trend_plus_season_plus_residual():
    net = _net()
    x, t = torch.randn(4, 24, 3), torch.rand(4)
    parts = net(x, t, return_components=True)
    assert isinstance(parts, TrendSeasonComponents)
    assert torch.equal(parts.output, parts.trend + parts.season + parts.residual)
    assert torch.equal(parts.output, net(x, t))
    for part in (parts.trend, parts.season, parts.residual):
        assert part.abs().max() > 0


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_trend_is_a_polynomial_of_at_most_the_trend_degree(degree):
    window = 24
    net = _net(window, dtype=F64, trend_degree=degree)
    trend = net(torch.randn(3, window, 3, dtype=F64), torch.rand(3, dtype=F64), True).trend
    # Least-squares fit by monomials of normalised time: the fit is exact for a polynomial.
    tau = torch.linspace(0.0, 1.0, window, dtype=F64)
    vander = torch.stack([tau**p for p in range(degree + 1)], dim=1)
    targets = trend.permute(1, 0, 2).reshape(window, -1)
    coef = torch.linalg.lstsq(vander, targets).solution
    residual = targets - vander @ coef
    assert residual.abs().max() <= 1e-10 * targets.abs().max()
    if degree > 0:
        # ... and not of a lower degree: the top coefficient is used.
        low = torch.linalg.lstsq(vander[:, :-1], targets).solution
        assert (targets - vander[:, :-1] @ low).abs().max() > 1e-6 * targets.abs().max()


def test_legendre_basis_is_the_classical_one():
    tau = torch.linspace(-1.0, 1.0, 9, dtype=F64)
    expected = torch.stack(
        [torch.ones_like(tau), tau, (3 * tau**2 - 1) / 2, (5 * tau**3 - 3 * tau) / 2]
    )
    torch.testing.assert_close(legendre_basis(9, 3, F64), expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize(
    ("window", "top_k"), [(24, None), (24, 4), (25, None), (10, None), (24, 0)]
)
def test_season_keeps_at_most_k_frequencies_and_no_mean(window, top_k):
    net = _net(window, dtype=F64, season_top_k=top_k)
    k = default_season_top_k(window) if top_k is None else top_k
    assert net.season_top_k == k
    with torch.no_grad():
        season = net(torch.randn(5, window, 3, dtype=F64), torch.rand(5, dtype=F64), True).season
    spectrum = torch.fft.rfft(season, dim=1).abs()
    nonzero = (spectrum > 1e-9 * max(float(spectrum.max()), 1.0)).sum(dim=1)
    assert int(nonzero.max()) == k
    assert spectrum[:, 0].max() < 1e-10  # zero mean: the level belongs to the trend
    if window % 2 == 0:
        assert spectrum[:, -1].max() < 1e-10  # no Nyquist term


def test_default_top_k_follows_log_of_frequency_count():
    # floor(ln 11) = 2 at L = 24 (Diffusion-TS); at least one for short windows; none below 3.
    assert default_season_top_k(24) == 2
    assert default_season_top_k(200) == math.floor(math.log(99))
    assert default_season_top_k(4) == 1
    assert default_season_top_k(2) == 0


def test_time_input_changes_the_output():
    net = _net()
    x = torch.randn(2, 24, 3)
    assert (net(x, 0.1) - net(x, 0.9)).abs().max() > 1e-4
    # The raw bridge time's small values are still told apart.
    assert (net(x, 1e-4) - net(x, 1e-2)).abs().max() > 1e-6


def test_gradients_reach_every_parameter():
    net = _net().train()
    x, t = torch.randn(4, 24, 3), torch.rand(4)
    net(x, t).square().mean().backward()
    for name, param in net.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().max() > 0, name


def test_sample_alone_matches_sample_in_batch():
    net = _net()
    x, t = torch.randn(6, 24, 3), torch.rand(6)
    batched = net(x, t)
    for i in range(6):
        alone = net(x[i : i + 1], t[i : i + 1])
        torch.testing.assert_close(alone, batched[i : i + 1], rtol=0, atol=1e-5)


def test_float64_and_deterministic_in_eval_mode():
    net = _net(dtype=F64, dropout=0.1)
    x, t = torch.randn(3, 24, 3, dtype=F64), torch.rand(3, dtype=F64)
    first = net(x, t)
    assert first.dtype == F64
    assert torch.equal(first, net(x, t))  # dropout off in eval: bitwise repeatable
    # A float32 time is cast to the input's dtype.
    assert net(x, t.float()).dtype == F64


def test_dropout_is_active_only_in_training():
    net = _net(dropout=0.5)
    x, t = torch.randn(2, 24, 3), torch.rand(2)
    assert torch.equal(net(x, t), net(x, t))
    net.train()
    assert not torch.equal(net(x, t), net(x, t))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"d_model": 30, "n_heads": 4}, "divisible by n_heads"),
        ({"window": 0}, "window must be a positive integer"),
        ({"n_features": -1}, "n_features must be a positive integer"),
        ({"encoder_layers": 0}, "encoder_layers"),
        ({"decoder_layers": 0}, "decoder_layers"),
        ({"n_heads": 0}, "n_heads"),
        ({"mlp_ratio": 0}, "mlp_ratio"),
        ({"dropout": 1.0}, "dropout"),
        ({"trend_degree": -1}, "trend_degree"),
        ({"trend_degree": 24}, r"trend_degree must be an integer in \[0, window = 24\), got 24"),
        ({"trend_degree": 2.5}, r"trend_degree must be an integer in \[0, window = 24\)"),
        ({"season_top_k": -1}, "season_top_k"),
        ({"time_scale": 0.0}, "time_scale"),
        ({"kernel_size": 2}, "kernel_size"),
    ],
)
def test_bad_constructor_arguments_raise(kwargs, match):
    arguments = {"window": 24, "n_features": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        TrendSeasonTransformer(**arguments)


def test_bad_inputs_raise_clear_errors():
    net = _net(24, 3)
    with pytest.raises(ValueError, match=r"\(B, 24, 3\), got \(2, 24, 4\)"):
        net(torch.randn(2, 24, 4), 0.5)
    with pytest.raises(ValueError, match=r"\(B, 24, 3\), got \(24, 3\)"):
        net(torch.randn(24, 3), 0.5)
    with pytest.raises(ValueError, match=r"t must be a scalar or have shape \(B,\) = \(2,\)"):
        net(torch.randn(2, 24, 3), torch.rand(3))
    with pytest.raises(ValueError, match=r"got \(2, 1\)"):
        net(torch.randn(2, 24, 3), torch.rand(2, 1))
    with pytest.raises(TypeError, match="floating point"):
        net(torch.ones(2, 24, 3, dtype=torch.long), 0.5)


def test_time_embedding_shape_and_odd_width():
    emb = SinusoidalTimeEmbedding(7)(torch.rand(5))
    assert emb.shape == (5, 7)
    assert torch.equal(emb[:, -1], torch.zeros(5))


def test_overfits_a_tiny_batch():
    torch.manual_seed(0)
    net = TrendSeasonTransformer(24, 2, d_model=32, encoder_layers=1, decoder_layers=1)
    x, t = torch.randn(4, 24, 2), torch.rand(4)
    target = torch.randn(4, 24, 2)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    losses = []
    for _ in range(300):
        optimizer.zero_grad()
        loss = (net(x, t) - target).square().mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10


def test_constructible_from_a_class_path_config():
    parser = ArgumentParser()
    parser.add_argument("--net", type=nn.Module)
    config = parser.parse_object(
        {
            "net": {
                "class_path": "tsgen.nn.TrendSeasonTransformer",
                "init_args": {"window": 24, "n_features": 6, "encoder_layers": 2},
            }
        }
    )
    net = parser.instantiate(config).net
    assert isinstance(net, TrendSeasonTransformer)
    assert net(torch.randn(2, 24, 6), 0.5).shape == (2, 24, 6)


@pytest.mark.gpu
def test_cuda_matches_cpu():
    net = _net()
    x, t = torch.randn(3, 24, 3), torch.rand(3)
    expected = net(x, t)
    # cuDNN's convolutions may run in TF32 by default (differences of 7e-4): compared in float32.
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        on_gpu = net.cuda()(x.cuda(), t.cuda())
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), expected, rtol=1e-4, atol=1e-4)


def test_runs_under_bf16_autocast():
    net = _net()
    x = torch.randn(2, 24, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        parts = net(x, 0.5, return_components=True)
    assert parts.output.shape == (2, 24, 3)
    assert torch.isfinite(parts.output).all()
    torch.testing.assert_close(parts.output.float(), net(x, 0.5), rtol=0.1, atol=0.1)
