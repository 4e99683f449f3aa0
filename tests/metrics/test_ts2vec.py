"""The stacked TS2Vec encoder: equivalence with plain per-repeat networks on cropped sequences,
the masked hierarchical loss against a direct single-repeat implementation, stacked training
equal to separate training, and chunk-independent encoding."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.functional import gelu, log_softmax, max_pool1d

from tsgen.data import make_sines
from tsgen.metrics._repeats import repeat_generators
from tsgen.metrics.ts2vec import (
    StackedTS2Vec,
    _common_segments,
    _crop_views,
    _draw_schedule,
    _train,
    encode,
    hierarchical_contrastive_loss,
    train_ts2vec,
)

CPU = torch.device("cpu")


def _generators(seed: int, repeats: int) -> list[torch.Generator]:
    return repeat_generators(seed, repeats, CPU)


class _PlainEncoder(nn.Module):
    """One TS2Vec encoder written with plain torch layers (symmetric same-padded Conv1d), loaded
    with repeat ``r`` of a stacked module."""

    def __init__(self, stacked: StackedTS2Vec, r: int) -> None:
        super().__init__()
        w = stacked.input_weight[r].detach()
        self.input_fc = nn.Linear(w.shape[0], w.shape[1])
        self.input_fc.weight.data = w.T.clone()
        self.input_fc.bias.data = stacked.input_bias[r].detach().clone()
        self.blocks = []
        for block in stacked.blocks:
            d = block.dilation
            convs = []
            for weight, bias in (
                (block.conv1_weight, block.conv1_bias),
                (block.conv2_weight, block.conv2_bias),
            ):
                k, c_in, c_out = weight.shape[1:]
                conv = nn.Conv1d(c_in, c_out, k, padding=d, dilation=d)
                conv.weight.data = weight[r].detach().permute(2, 1, 0).clone()
                conv.bias.data = bias[r].detach().clone()
                convs.append(conv)
            projector = None
            if block.projector_weight is not None:
                c_in, c_out = block.projector_weight.shape[1:]
                projector = nn.Conv1d(c_in, c_out, 1)
                projector.weight.data = block.projector_weight[r].detach().T[..., None].clone()
                projector.bias.data = block.projector_bias[r].detach().clone()
            self.blocks.append((convs, projector))

    def forward(self, x: torch.Tensor, keep: torch.Tensor, dropout_keep: torch.Tensor):
        """x: (B, T, C); keep: (B, T) bool; dropout_keep: (B, T, D) bool -> (B, T, D)."""
        h = self.input_fc(x) * keep[..., None]
        h = h.transpose(1, 2)
        for (conv1, conv2), projector in self.blocks:
            residual = h if projector is None else projector(h)
            h = conv2(gelu(conv1(gelu(h)))) + residual
        return h.transpose(1, 2) * dropout_keep / 0.9


def test_default_init_is_per_repeat_and_torch_like():
    stacked = StackedTS2Vec(3, _generators(0, 3), depth=2)
    again = StackedTS2Vec(3, _generators(0, 3)[1:], depth=2)  # repeats 1, 2 alone
    for a, b in zip(stacked.parameters(), again.parameters(), strict=True):
        torch.testing.assert_close(a[1:], b, rtol=0, atol=0)
    # Conv1d(64, 64, 3): U(-1/sqrt(192), 1/sqrt(192)).
    weight = stacked.blocks[0].conv1_weight
    assert weight.abs().max() <= 1 / 192**0.5
    assert weight.abs().max() > 0.9 / 192**0.5


def test_left_aligned_masked_buffer_equals_plain_encoder_on_the_crop():
    torch.manual_seed(0)
    repeats, batch, length, channels = 2, 3, 12, 3
    stacked = StackedTS2Vec(channels, _generators(1, repeats))
    x = torch.randn(repeats, batch, length, channels)
    lengths = torch.tensor([[2, 7, 12], [5, 12, 9]])
    keep = torch.rand(repeats, batch, length) < 0.5
    dropout_keep = torch.rand(repeats, batch, length, 320) >= 0.1
    out = stacked(x, lengths, keep, dropout_keep)
    assert out.shape == (repeats, batch, length, 320)
    for r in range(repeats):
        plain = _PlainEncoder(stacked, r)
        for b in range(batch):
            n = int(lengths[r, b])
            expected = plain(x[r, b : b + 1, :n], keep[r, b : b + 1, :n], dropout_keep[r, b, :n])
            torch.testing.assert_close(out[r, b, :n], expected[0], rtol=1e-5, atol=1e-5)
    # Full length, no mask, no dropout: the shared-input path.
    shared = stacked(x[0])
    plain = _PlainEncoder(stacked, 1)
    no_dropout = torch.full((1, 1, 320), 0.9)  # cancels the plain encoder's 1 / 0.9
    expected = plain(x[0], torch.ones(batch, length, dtype=torch.bool), no_dropout)
    torch.testing.assert_close(shared[1], expected, rtol=1e-5, atol=1e-5)


def _reference_loss(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Hierarchical contrastive loss of one repeat, written directly: z1, z2 (B, T, D)."""

    def instance(a, b):
        n = a.shape[0]
        if n == 1:
            return a.new_zeros(())
        total = a.new_zeros(())
        for t in range(a.shape[1]):
            z = torch.cat([a[:, t], b[:, t]])  # (2B, D)
            for i in range(2 * n):
                others = [j for j in range(2 * n) if j != i]
                logits = torch.stack([z[i] @ z[j] for j in others])
                target = others.index((i + n) % (2 * n))
                total = total - log_softmax(logits, 0)[target]
        return total / (2 * n * a.shape[1])

    def temporal(a, b):
        t_len = a.shape[1]
        if t_len == 1:
            return a.new_zeros(())
        total = a.new_zeros(())
        for s in range(a.shape[0]):
            z = torch.cat([a[s], b[s]])  # (2T, D)
            for i in range(2 * t_len):
                others = [j for j in range(2 * t_len) if j != i]
                logits = z[i] @ z[others].T
                total = total - log_softmax(logits, 0)[others.index((i + t_len) % (2 * t_len))]
        return total / (2 * t_len * a.shape[0])

    loss, levels = z1.new_zeros(()), 0
    while z1.shape[1] > 1:
        loss = loss + 0.5 * instance(z1, z2) + 0.5 * temporal(z1, z2)
        levels += 1
        z1 = max_pool1d(z1.transpose(1, 2), 2).transpose(1, 2)
        z2 = max_pool1d(z2.transpose(1, 2), 2).transpose(1, 2)
    loss = loss + 0.5 * instance(z1, z2)
    return loss / (levels + 1)


@pytest.mark.parametrize("batch", [1, 3])
def test_masked_hierarchical_loss_equals_direct_single_repeat(batch):
    torch.manual_seed(1)
    length = 13
    lengths = torch.tensor([2, 7, 13, 1])
    z1 = torch.randn(4, batch, length, 5, dtype=torch.float64)
    z2 = torch.randn(4, batch, length, 5, dtype=torch.float64)
    # Entries past each repeat's length must not matter.
    garbage = torch.arange(length)[None, None, :, None] >= lengths[:, None, None, None]
    z1 = torch.where(garbage, 1e3, z1)
    z2 = torch.where(garbage, -1e3, z2)
    losses = hierarchical_contrastive_loss(z1, z2, lengths)
    assert losses.shape == (4,)
    for r, n in enumerate(lengths.tolist()):
        expected = _reference_loss(z1[r, :, :n], z2[r, :, :n])
        torch.testing.assert_close(losses[r], expected, rtol=1e-10, atol=1e-12)


def test_stacked_loss_gradients_equal_separate_repeats():
    torch.manual_seed(2)
    repeats, batch, length = 3, 4, 10
    stacked = StackedTS2Vec(2, _generators(3, repeats), depth=3)
    x = torch.rand(repeats, 2 * batch, length, 2)
    lengths = torch.randint(2, length + 1, (repeats, 2 * batch))
    crop = lengths.min(dim=1).values
    keep = torch.rand(repeats, 2 * batch, length) < 0.5

    def loss_of(model, sl):
        out = model(x[sl], lengths[sl], keep[sl])
        return hierarchical_contrastive_loss(out[:, :batch], out[:, batch:], crop[sl])

    losses = loss_of(stacked, slice(None))
    losses.sum().backward()
    for r in range(repeats):
        single = stacked.select([r])
        single.zero_grad()
        loss = loss_of(single, slice(r, r + 1))
        torch.testing.assert_close(loss[0], losses[r], rtol=1e-5, atol=1e-6)
        loss.sum().backward()
        for p_stacked, p_single in zip(stacked.parameters(), single.parameters(), strict=True):
            torch.testing.assert_close(p_single.grad[0], p_stacked.grad[r], rtol=1e-4, atol=1e-6)


def test_schedule_crops_views_and_common_segments_follow_the_reference():
    repeats, n, length, batch, iterations = 3, 11, 9, 4, 40
    batches, crops = _draw_schedule(_generators(6, repeats), n, length, iterations, batch)
    assert batches.shape == (repeats, iterations, batch)
    assert crops.shape == (repeats, iterations, 4 + batch)
    # Epoch-wise permutations with drop_last: 2 batches of 4 per epoch, distinct within a batch.
    epoch = batches[:, :2].reshape(repeats, -1)
    assert all(len(set(row.tolist())) == 2 * batch for row in epoch)
    x = torch.randn(repeats, batch, length, 2)
    seen_lengths = set()
    for it in range(iterations):
        crop = crops[:, it]
        views, lengths = _crop_views(x, crop)
        fake_out = views * 2.0 + 1.0  # any per-position map lets us follow positions
        out1, out2 = _common_segments(fake_out, crop)
        for r in range(repeats):
            crop_l, left, eleft, eright = crop[r, :4].tolist()
            right = left + crop_l
            seen_lengths.add(crop_l)
            assert 2 <= crop_l <= length and 0 <= eleft <= left and right <= eright <= length
            for b in range(batch):
                offset = int(crop[r, 4 + b])
                assert -eleft <= offset <= length - eright
                view1 = x[r, b, offset + eleft : offset + right]
                view2 = x[r, b, offset + left : offset + eright]
                assert lengths[r, b] == len(view1) and lengths[r, batch + b] == len(view2)
                torch.testing.assert_close(views[r, b, : len(view1)], view1, rtol=0, atol=0)
                torch.testing.assert_close(views[r, batch + b, : len(view2)], view2, rtol=0, atol=0)
                torch.testing.assert_close(out1[r, b, :crop_l], view1[-crop_l:] * 2.0 + 1.0)
                torch.testing.assert_close(out2[r, b, :crop_l], view2[:crop_l] * 2.0 + 1.0)
    assert {2, length} <= seen_lengths  # both ends of randint(2, T + 1) occur


def test_stacked_training_equals_separate_training():
    windows = torch.from_numpy(make_sines(20, 10, 2, seed=0)).float()
    stacked = _train(windows, _generators(4, 3), 3, 8, 1e-3, CPU, False)
    for r in (0, 2):
        alone = _train(windows, _generators(4, 3)[r : r + 1], 3, 8, 1e-3, CPU, False)
        for p_stacked, p_alone in zip(stacked.parameters(), alone.parameters(), strict=True):
            torch.testing.assert_close(p_alone[0], p_stacked[r], rtol=1e-4, atol=1e-6)
    assert not stacked.training


def test_training_moves_and_averages_the_weights():
    windows = torch.from_numpy(make_sines(16, 8, 1, seed=1)).float()
    init = StackedTS2Vec(1, _generators(0, 2))
    one = train_ts2vec(windows, repeats=2, seed=0, iterations=1, device="cpu")
    two = train_ts2vec(windows, repeats=2, seed=0, iterations=2, device="cpu")
    pairs = list(zip(init.parameters(), one.parameters(), two.parameters(), strict=True))
    for p0, p1, p2 in pairs:
        assert not torch.equal(p0, p1)
        assert not torch.equal(p1, p2)
    # As in the reference (AveragedModel updated once at construction), the initial weights are
    # averaged in: after one AdamW step (|w1 - w0| <= lr, plus weight decay) the average
    # (w0 + w1) / 2 lies about lr / 2 from the initial weights, not lr.
    diff = max((p1 - p0).abs().max().item() for p0, p1, _ in pairs)
    assert 0.45e-3 <= diff <= 0.5e-3 * 1.05


def test_encode_is_chunk_independent_and_shaped():
    windows = torch.from_numpy(make_sines(23, 12, 3, seed=2)).float()
    model = StackedTS2Vec(3, _generators(5, 2), depth=4)
    full = encode(model, windows, batch_size=1000)
    assert full.shape == (2, 23, 320)
    chunked = encode(model, windows, batch_size=5)
    torch.testing.assert_close(chunked, full, rtol=1e-5, atol=1e-6)
    assert model.training  # encode restores the mode
    per_window = model.eval()(windows).amax(dim=2)
    torch.testing.assert_close(full, per_window, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"repeats": 0}, "repeats must be a positive integer"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"iterations": 0}, "iterations must be a positive integer"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"lr": 0.0}, "lr must be a positive number"),
        ({"device": "nonsense"}, "device must be"),
    ],
)
def test_train_ts2vec_rejects_bad_arguments(kwargs, match):
    windows = torch.rand(4, 6, 1)
    arguments = {"repeats": 1, "seed": 0, "iterations": 1} | kwargs
    with pytest.raises(ValueError, match=match):
        train_ts2vec(windows, **arguments)


def test_train_ts2vec_rejects_bad_windows():
    with pytest.raises(ValueError, match="T >= 2"):
        train_ts2vec(torch.rand(4, 1, 2), repeats=1, seed=0)
    with pytest.raises(ValueError, match=r"shape \(N, T, C\)"):
        train_ts2vec(torch.rand(4, 6), repeats=1, seed=0)
    with pytest.raises(ValueError, match="finite"):
        train_ts2vec(torch.full((4, 6, 1), float("nan")), repeats=1, seed=0)
