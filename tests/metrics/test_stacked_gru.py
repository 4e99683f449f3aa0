"""Tests for tsgen.metrics._stacked_gru: the block-diagonal stack of independent GRUs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tsgen.metrics._repeats import repeat_generators
from tsgen.metrics._stacked_gru import StackedGRU, draw_batch_indices

CPU = torch.device("cpu")


def _separate(model: StackedGRU, r: int) -> tuple[nn.GRU, nn.Linear]:
    """Repeat ``r`` of ``model`` as a stand-alone ``nn.GRU`` and ``nn.Linear`` (float64)."""
    block = model.block(r)
    gru = nn.GRU(model.input_size, model.hidden_size, batch_first=True, dtype=torch.float64)
    linear = nn.Linear(model.hidden_size, model.output_size, dtype=torch.float64)
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(gru, name).copy_(block[name])
        linear.weight.copy_(block["head_weight"])
        linear.bias.copy_(block["head_bias"])
    return gru, linear


def _perturbed_model(repeats: int = 3) -> StackedGRU:
    """A float64 stack whose every trainable entry (off-block ones included) is random, so that
    a leak through an off-block entry or a mixed-up block would show."""
    gens = repeat_generators(7, repeats, CPU)
    model = StackedGRU(repeats, 4, 3, 2, generators=gens, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


def test_stack_equals_separate_grus_outputs_and_gradients() -> None:
    model = _perturbed_model()
    repeats = model.repeats
    x = torch.randn(
        5, 7, repeats, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    states, last = model(x)
    out = model.head(states)
    assert states.shape == (5, 7, repeats, 3)
    assert last.shape == (5, repeats, 3)
    assert out.shape == (5, 7, repeats, 2)
    torch.testing.assert_close(last, states[:, -1])
    # Distinct per-repeat losses, summed: each block's gradient is its own loss's gradient.
    weights = torch.arange(1, repeats + 1, dtype=torch.float64)
    (out.pow(2).mean(dim=(0, 1, 3)) * weights).sum().backward()

    for r in range(repeats):
        gru, linear = _separate(model, r)
        ref_states, ref_last = gru(x[:, :, r])
        ref_out = linear(ref_states)
        torch.testing.assert_close(states[:, :, r], ref_states, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(last[:, r], ref_last[0], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(out[:, :, r], ref_out, rtol=1e-12, atol=1e-12)
        (ref_out.pow(2).mean() * weights[r]).backward()
        h, i = model.hidden_size, model.input_size
        grad_ih = model.gru.weight_ih_l0.grad.view(3, repeats, h, repeats, i)[:, r, :, r]
        grad_hh = model.gru.weight_hh_l0.grad.view(3, repeats, h, repeats, h)[:, r, :, r]
        grad_b = model.gru.bias_ih_l0.grad.view(3, repeats, h)[:, r]
        torch.testing.assert_close(grad_ih.reshape(3 * h, i), gru.weight_ih_l0.grad)
        torch.testing.assert_close(grad_hh.reshape(3 * h, h), gru.weight_hh_l0.grad)
        torch.testing.assert_close(grad_b.reshape(-1), gru.bias_ih_l0.grad)
        torch.testing.assert_close(model.head_weight.grad[r], linear.weight.grad.T)
        torch.testing.assert_close(model.head_bias.grad[r], linear.bias.grad)


def test_off_block_weights_get_zero_gradient_and_do_not_matter() -> None:
    model = _perturbed_model()
    x = torch.randn(4, 6, model.repeats, 4, dtype=torch.float64)
    states, _ = model(x)
    model.head(states).sum().backward()
    off_ih = model.gru.weight_ih_l0.grad[model.mask_ih == 0]
    off_hh = model.gru.weight_hh_l0.grad[model.mask_hh == 0]
    assert off_ih.numel() > 0 and off_hh.numel() > 0
    assert bool((off_ih == 0).all()) and bool((off_hh == 0).all())
    # The hidden-side biases are frozen (TF's cell has one bias per gate).
    assert not model.gru.bias_hh_l0.requires_grad
    # Changing off-block entries changes nothing.
    with torch.no_grad():
        before = model(x)[0].clone()
        model.gru.weight_ih_l0.add_(100.0 * (1 - model.mask_ih))
        model.gru.weight_hh_l0.add_(100.0 * (1 - model.mask_hh))
        torch.testing.assert_close(model(x)[0], before, rtol=0, atol=0)


def test_initialisation_matches_tf_glorot_and_gate_biases() -> None:
    repeats, i, h, o = 400, 3, 2, 1
    model = StackedGRU(repeats, i, h, o, generators=repeat_generators(0, repeats, CPU))
    gate_limit = math.sqrt(6.0 / (i + 3 * h))
    cand_limit = math.sqrt(6.0 / (i + 2 * h))
    head_limit = math.sqrt(6.0 / (h + o))
    w_ih = model.gru.weight_ih_l0.detach().view(3, repeats, h, repeats, i)
    w_hh = model.gru.weight_hh_l0.detach().view(3, repeats, h, repeats, h)
    idx = torch.arange(repeats)
    ih_blocks, hh_blocks = w_ih[:, idx, :, idx], w_hh[:, idx, :, idx]  # (R, 3, H, .)
    for gate, limit in ((0, gate_limit), (1, gate_limit), (2, cand_limit)):
        values = torch.cat([ih_blocks[:, gate].flatten(), hh_blocks[:, gate].flatten()])
        assert values.abs().max() <= limit
        assert values.abs().max() > 0.99 * limit
        # U(-a, a) has mean 0 and variance a^2 / 3 (thousands of draws: loose tolerances).
        assert abs(values.mean().item()) < 0.05 * limit
        assert values.var().item() == pytest.approx(limit**2 / 3, rel=0.08)
    head = model.head_weight.detach()
    assert head.abs().max() <= head_limit and head.abs().max() > 0.98 * head_limit
    assert head.var().item() == pytest.approx(head_limit**2 / 3, rel=0.15)
    # Off-block entries start at zero (irrelevant, but keeps the stored weights tidy).
    assert int((model.gru.weight_ih_l0[model.mask_ih == 0] != 0).sum()) == 0
    bias_ih = model.gru.bias_ih_l0.detach().view(3, repeats, h)
    assert bool((bias_ih[:2] == 1.0).all()) and bool((bias_ih[2] == 0.0).all())
    assert bool((model.gru.bias_hh_l0 == 0).all()) and bool((model.head_bias == 0).all())


def test_repeat_weights_do_not_depend_on_the_number_of_repeats() -> None:
    small = StackedGRU(2, 3, 2, generators=repeat_generators(5, 2, CPU))
    large = StackedGRU(4, 3, 2, generators=repeat_generators(5, 4, CPU))
    for r in range(2):
        for name, value in small.block(r).items():
            torch.testing.assert_close(value, large.block(r)[name], rtol=0, atol=0)


def test_draw_batch_indices_are_distinct_within_a_batch() -> None:
    g = torch.Generator().manual_seed(0)
    idx = draw_batch_indices(g, 50, 40, 16, CPU)
    assert idx.shape == (50, 16) and idx.dtype == torch.int64
    assert int(idx.min()) >= 0 and int(idx.max()) < 40
    assert bool((idx.sort(dim=1).values.diff(dim=1) > 0).all())
    # Every index is used, roughly uniformly (50 * 16 / 40 = 20 each on average).
    counts = torch.bincount(idx.flatten(), minlength=40)
    assert int(counts.min()) > 5
    # A batch as large as the set is a permutation of it.
    full = draw_batch_indices(g, 3, 10, 10, CPU)
    assert bool((full.sort(dim=1).values == torch.arange(10)).all())


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="repeats must be a positive integer; got 0"):
        StackedGRU(0, 3, 2)
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        StackedGRU(2, 3, 0)
    with pytest.raises(ValueError, match=r"one generator per repeat \(3\); got 2"):
        StackedGRU(3, 3, 2, generators=repeat_generators(0, 2, CPU))
    model = StackedGRU(2, 3, 2)
    with pytest.raises(ValueError, match=r"x must have shape \(B, L, R=2, in=3\); got \(4, 5, 6\)"):
        model(torch.zeros(4, 5, 6))
    with pytest.raises(ValueError, match="repeat must be < repeats = 2; got 2"):
        model.block(2)


@pytest.mark.gpu
def test_cuda_matches_cpu() -> None:
    model = _perturbed_model().float()
    cuda = StackedGRU(model.repeats, 4, 3, 2, device="cuda")
    cuda.load_state_dict(model.state_dict())
    x = torch.randn(8, 6, model.repeats, 4)
    # cuDNN's GRU runs in TF32 by default (differences of 1e-3): compared in float32.
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        for m, inp in ((model, x), (cuda, x.cuda())):
            states, _ = m(inp)
            m.head(states).pow(2).sum().backward()
        on_gpu = cuda(x.cuda())[0].cpu()
    torch.testing.assert_close(on_gpu, model(x)[0], rtol=1e-4, atol=1e-5)
    for (name, p), q in zip(model.named_parameters(), cuda.parameters(), strict=True):
        if p.requires_grad:
            torch.testing.assert_close(q.grad.cpu(), p.grad, rtol=1e-4, atol=1e-5, msg=name)
