"""The discriminative score of Yoon et al. 2019 (TimeGAN), as used unchanged by Diffusion-TS and
TimeBridge: how well a small post-hoc classifier tells generated windows from real ones.

Protocol, per repeat (inputs are windows scaled to ``[0, 1]``, shape ``(N, L, C)``):

1. split the real set and, independently, the generated set 80/20 at random (the training part
   is the first ``floor(0.8 n)`` windows of a random permutation);
2. train a one-layer tanh GRU with ``H = max(C // 2, 1)`` hidden units whose last hidden state
   feeds ``Linear(H, 1)``, a logit for "real": binary cross-entropy with logits, the loss being
   the mean over a batch of real training windows (label 1) plus the mean over a batch of
   generated training windows (label 0); Adam (lr ``1e-3``, betas ``0.9 / 0.999``, eps ``1e-8``),
   2000 iterations, each with 128 real and 128 generated windows drawn without replacement
   within the batch;
3. the score is ``|accuracy - 0.5|`` on the held-out real and generated windows (predicting
   "real" where the logit is positive), the accuracy being the mean of the accuracies on the
   real and on the generated windows: the plain accuracy on both together when the sets are
   equal, as in the protocol, and not weighted by their sizes when they are not. 0 means
   indistinguishable, 0.5 means perfectly separated.

All repeats train at once as one :class:`~tsgen.metrics._stacked_gru.StackedGRU` (block-diagonal
weights, summed losses): repeat ``r`` draws its initial weights, splits and batches from its own
generator (:func:`~tsgen.metrics._repeats.repeat_generators`), so its score does not depend on how
many repeats run. The model trains in float32 like the reference, whatever the input dtype.

Deviations from the TF1 reference: torch's GRU cell applies the reset gate after the hidden
matmul (see :mod:`tsgen.metrics._stacked_gru`), and torch's Adam adds ``eps`` to the
bias-corrected ``sqrt(v)`` while TF1 adds it before the correction (a difference of order
``1e-8`` in the denominator). Windows all have length ``L``, so the reference's variable
sequence lengths do not arise.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn.functional import softplus

from tsgen._validation import check_int, check_open_fraction
from tsgen.metrics._repeats import (
    cuda_precision,
    repeat_generators,
    resolve_device,
    single_cpu_thread,
)
from tsgen.metrics._repeats import progress as progress_bar
from tsgen.metrics._stacked_gru import StackedGRU, draw_batch_indices, make_adam
from tsgen.metrics.distances import _check_pair

__all__ = ["discriminative_score"]

# Input elements (windows x steps x repeats x features) evaluated per forward pass at test time.
_EVAL_ELEMENTS = 2**24
# The protocol's Adam steps per classifier.
ITERATIONS = 2000


@dataclass(frozen=True)
class _DiscriminativeRun:
    """Everything one run produced (for tests and diagnostics).

    Attributes:
        scores: ``(R,)`` float64 CPU, ``|test accuracy - 0.5|`` per repeat.
        losses: ``(iterations, R)`` float32 CPU, each repeat's training loss per iteration.
        real_logits: ``(R, n_real_test)`` float32 CPU, the logits of each repeat's real test set.
        fake_logits: ``(R, n_fake_test)`` float32 CPU, likewise for the generated test set.
    """

    scores: Tensor
    losses: Tensor
    real_logits: Tensor
    fake_logits: Tensor


def _split_sizes(name: str, n: int, train_fraction: float) -> int:
    """The training size ``floor(train_fraction * n)``, checked to leave both parts non-empty."""
    n_train = math.floor(train_fraction * n)
    if not 1 <= n_train <= n - 1:
        raise ValueError(
            f"{name} has N = {n} windows: train_fraction = {train_fraction} gives a training "
            f"part of {n_train} and a test part of {n - n_train}; both must be non-empty "
            "(pass more windows)"
        )
    return n_train


def _balanced_accuracy(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Mean of the accuracies on real (logit > 0) and on generated windows: ``(R,)`` from
    ``(R, n_real)`` and ``(R, n_fake)`` logits.

    With as many generated as real windows (the published protocol) this is the plain test
    accuracy. With unequal counts the plain accuracy would weight the classes by their sizes:
    a classifier that calls every window real would score ``|n_real / n - 0.5|`` instead of 0.
    """
    real_accuracy = (real_logits > 0).double().mean(1)
    fake_accuracy = (fake_logits <= 0).double().mean(1)
    return (real_accuracy + fake_accuracy) / 2


def _logits(model: StackedGRU, data: Tensor, index: Tensor) -> Tensor:
    """``(R, n)`` logits of ``data[index[r]]`` under model ``r``; ``data`` ``(N, L, C)``,
    ``index`` ``(R, n)``, evaluated in chunks of windows to bound memory."""
    repeats, n = index.shape
    chunk = max(1, _EVAL_ELEMENTS // (data.shape[1] * data.shape[2] * repeats))
    parts = []
    for start in range(0, n, chunk):
        x = data[index[:, start : start + chunk]].permute(1, 2, 0, 3)  # (b, L, R, C)
        _, last = model(x)
        parts.append(model.head(last)[..., 0].T)  # (R, b)
    return torch.cat(parts, dim=1)


def _run_discriminative(
    real: Tensor,
    fake: Tensor,
    *,
    repeats: int,
    seed: int,
    iterations: int,
    batch_size: int,
    train_fraction: float,
    device: str | torch.device | None,
    progress: bool,
) -> _DiscriminativeRun:
    """:func:`discriminative_score` with its by-products (see :class:`_DiscriminativeRun`)."""
    real, fake = _check_pair(real, fake)
    check_int("repeats", repeats)
    check_int("seed", seed, minimum=0)
    check_int("iterations", iterations)
    check_int("batch_size", batch_size)
    train_fraction = check_open_fraction("train_fraction", train_fraction)
    device = resolve_device(device)
    n_real, n_fake = real.shape[0], fake.shape[0]
    n_real_train = _split_sizes("real", n_real, train_fraction)
    n_fake_train = _split_sizes("fake", n_fake, train_fraction)
    batch_real, batch_fake = min(batch_size, n_real_train), min(batch_size, n_fake_train)
    if batch_real < batch_size or batch_fake < batch_size:
        warnings.warn(
            f"discriminative_score: the training parts hold {n_real_train} real and "
            f"{n_fake_train} generated windows, fewer than batch_size = {batch_size}; each "
            f"batch takes all of a part smaller than a batch ({batch_real} real, {batch_fake} "
            "generated), so the score is not comparable with the published protocol",
            stacklevel=3,
        )
    features = real.shape[2]
    real = real.to(device=device, dtype=torch.float32)
    fake = fake.to(device=device, dtype=torch.float32)

    generators = repeat_generators(seed, repeats, device)
    model = StackedGRU(
        repeats, features, max(features // 2, 1), 1, generators=generators, device=device
    )
    # Per repeat, after its initial weights: both splits, then all batches (indices into the
    # full sets, so a batch is one gather).
    real_test: list[Tensor] = []
    fake_test: list[Tensor] = []
    real_batches: list[Tensor] = []
    fake_batches: list[Tensor] = []
    for g in generators:
        real_perm = torch.randperm(n_real, generator=g, device=device)
        fake_perm = torch.randperm(n_fake, generator=g, device=device)
        real_test.append(real_perm[n_real_train:])
        fake_test.append(fake_perm[n_fake_train:])
        real_draw = draw_batch_indices(g, iterations, n_real_train, batch_real, device)
        fake_draw = draw_batch_indices(g, iterations, n_fake_train, batch_fake, device)
        real_batches.append(real_perm[:n_real_train][real_draw])
        fake_batches.append(fake_perm[:n_fake_train][fake_draw])
    real_index = torch.stack(real_batches, dim=1)  # (iterations, R, batch_real)
    fake_index = torch.stack(fake_batches, dim=1)  # (iterations, R, batch_fake)

    optimizer = make_adam(model)
    losses = torch.empty(iterations, repeats, device=device)
    for step in progress_bar(range(iterations), "discriminative score", progress):
        # One pass over real and generated windows together: (B_real + B_fake, L, R, C).
        x = torch.cat([real[real_index[step]], fake[fake_index[step]]], dim=1)
        _, last = model(x.permute(1, 2, 0, 3))
        logits = model.head(last)[..., 0]  # (B, R)
        # BCE with logits: -log sigmoid(z) = softplus(-z) for label 1, softplus(z) for label 0.
        per_repeat = softplus(-logits[:batch_real]).mean(0) + softplus(logits[batch_real:]).mean(0)
        optimizer.zero_grad(set_to_none=True)
        # The sum keeps each repeat's gradient equal to that of its own mean loss.
        per_repeat.sum().backward()
        optimizer.step()
        losses[step] = per_repeat.detach()

    with torch.no_grad():
        real_logits = _logits(model, real, torch.stack(real_test))
        fake_logits = _logits(model, fake, torch.stack(fake_test))
    return _DiscriminativeRun(
        scores=(_balanced_accuracy(real_logits, fake_logits) - 0.5).abs().cpu(),
        losses=losses.cpu(),
        real_logits=real_logits.cpu(),
        fake_logits=fake_logits.cpu(),
    )


def discriminative_score(
    real: Tensor,
    fake: Tensor,
    *,
    repeats: int = 5,
    seed: int = 0,
    iterations: int = ITERATIONS,
    batch_size: int = 128,
    train_fraction: float = 0.8,
    device: str | torch.device | None = None,
    progress: bool = False,
    tf32: bool = False,
) -> Tensor:
    """The TimeGAN discriminative score ``|accuracy - 0.5|`` of a post-hoc GRU classifier, one
    value per repeat (protocol in the module docstring; the accuracy is balanced between the
    real and the generated test windows, the plain one for sets of equal size).

    Args:
        real: ``(N_real, L, C)`` real windows scaled to ``[0, 1]``.
        fake: ``(N_fake, L, C)`` generated windows, same scaling, ``L``, ``C``, dtype, device.
        repeats: independent classifiers (splits, batches, initial weights), trained at once.
        seed: repeat ``r`` draws all its randomness from a generator seeded by ``(seed, r)``.
        iterations: Adam steps per classifier.
        batch_size: real and generated windows per step (each; fewer if a training part is
            smaller, with a warning).
        train_fraction: the fraction of each set used for training; the rest is the test set.
        device: where to train; ``None`` picks CUDA when available.
        progress: show a progress bar over iterations.
        tf32: allow TF32 in CUDA matmuls and cuDNN (faster; not the reference's float32).

    Returns:
        ``(repeats,)`` float64 CPU tensor of scores in ``[0, 0.5]``; lower is better. Summarise
        with :func:`tsgen.metrics.t_interval`.

    Raises:
        TypeError, ValueError: for malformed windows or arguments, or a set too small to split.
    """
    with single_cpu_thread(resolve_device(device)), cuda_precision(tf32):
        return _run_discriminative(
            real,
            fake,
            repeats=repeats,
            seed=seed,
            iterations=iterations,
            batch_size=batch_size,
            train_fraction=train_fraction,
            device=device,
            progress=progress,
        ).scores
