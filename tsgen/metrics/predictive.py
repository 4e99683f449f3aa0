"""The predictive score of Yoon et al. 2019 (TimeGAN), as used unchanged by Diffusion-TS and
TimeBridge: train on synthetic, test on real (TSTR).

Protocol, per repeat (inputs are windows scaled to ``[0, 1]``, shape ``(N, L, C)``, ``C >= 2``):

1. train a one-layer tanh GRU with ``H = max(C // 2, 1)`` hidden units on the *generated*
   windows: from features ``0 .. C-2`` at steps ``0 .. L-2`` it predicts feature ``C-1`` at steps
   ``1 .. L-1`` through ``Linear(H, 1)`` and a sigmoid at every step; L1 loss (mean absolute
   error); Adam (lr ``1e-3``, TF1 defaults otherwise), 5000 iterations of 128 generated windows
   drawn without replacement within the batch;
2. the score is the mean absolute error of that model on *all real* windows (every step). Lower
   is better; real data scored against itself gives the floor the papers compare with.

Labelled variant (not in the papers): with ``C = 1`` the protocol has no input feature and is
undefined. ``univariate=True`` then predicts the next value of the single feature from its past
values (input feature 0 at steps ``0 .. L-2``, target feature 0 at ``1 .. L-1``); report it as
"predictive score (univariate variant)", not next to published numbers.

All repeats train at once as one :class:`~tsgen.metrics._stacked_gru.StackedGRU`; repeat ``r``
draws its initial weights and batches from its own generator, so its score does not depend on
how many repeats run. The model trains in float32 like the reference, whatever the input dtype.
Deviations from the TF1 reference: the GRU cell's reset-gate placement (see
:mod:`tsgen.metrics._stacked_gru`) and where Adam adds ``eps`` (of order ``1e-8``).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from tsgen._validation import check_int
from tsgen.metrics._repeats import (
    cuda_precision,
    repeat_generators,
    resolve_device,
    single_cpu_thread,
)
from tsgen.metrics._repeats import progress as progress_bar
from tsgen.metrics._stacked_gru import StackedGRU, draw_batch_indices, make_adam
from tsgen.metrics.distances import _check_pair

__all__ = ["predictive_score"]

# Input elements (windows x steps x repeats x features) evaluated per forward pass at test time.
_EVAL_ELEMENTS = 2**24
# The protocol's Adam steps per predictor.
ITERATIONS = 5000


def _inputs_targets(windows: Tensor, univariate: bool) -> tuple[Tensor, Tensor]:
    """``(N, L, C)`` windows -> inputs ``(N, L-1, in)`` and next-step targets ``(N, L-1)``."""
    if univariate:
        return windows[:, :-1, :1], windows[:, 1:, 0]
    return windows[:, :-1, :-1], windows[:, 1:, -1]


def _predict(model: StackedGRU, x: Tensor) -> Tensor:
    """``(B, L-1, R, in)`` -> per-step predictions in ``(0, 1)``, ``(B, L-1, R)``."""
    states, _ = model(x)
    return torch.sigmoid(model.head(states)[..., 0])


def _run_predictive(
    real: Tensor,
    fake: Tensor,
    *,
    repeats: int,
    seed: int,
    iterations: int,
    batch_size: int,
    univariate: bool,
    device: str | torch.device | None,
    progress: bool,
) -> tuple[Tensor, Tensor]:
    """:func:`predictive_score` plus the training losses ``(iterations, R)`` float32 CPU."""
    real, fake = _check_pair(real, fake)
    check_int("repeats", repeats)
    check_int("seed", seed, minimum=0)
    check_int("iterations", iterations)
    check_int("batch_size", batch_size)
    if not isinstance(univariate, bool):
        raise TypeError(f"univariate must be a bool; got {type(univariate).__name__}")
    length, features = real.shape[1], real.shape[2]
    if length < 2:
        raise ValueError(
            f"predictive_score needs windows of length L >= 2 (it predicts the next step); "
            f"got shape {tuple(real.shape)}"
        )
    if features == 1 and not univariate:
        raise ValueError(
            "predictive_score is undefined for C = 1 feature: the protocol predicts the last "
            "feature from the other C - 1; got windows of shape "
            f"{tuple(real.shape)}. Pass univariate=True for the labelled variant that predicts "
            "the next value of the single feature from its past"
        )
    if univariate and features != 1:
        raise ValueError(
            f"univariate=True is the variant for C = 1 feature; got C = {features} (shape "
            f"{tuple(real.shape)}). Leave univariate=False for the published protocol"
        )
    device = resolve_device(device)
    n_fake = fake.shape[0]
    batch = min(batch_size, n_fake)
    if batch < batch_size:
        warnings.warn(
            f"predictive_score: fake holds {n_fake} windows, fewer than batch_size = "
            f"{batch_size}; every batch is the whole generated set, so the score is not "
            "comparable with the published protocol",
            stacklevel=3,
        )
    fake_x, fake_y = _inputs_targets(fake.to(device=device, dtype=torch.float32), univariate)
    real_x, real_y = _inputs_targets(real.to(device=device, dtype=torch.float32), univariate)
    inputs = fake_x.shape[2]

    generators = repeat_generators(seed, repeats, device)
    model = StackedGRU(
        repeats, inputs, max(features // 2, 1), 1, generators=generators, device=device
    )
    # Per repeat, after its initial weights: all its batches, (iterations, R, batch).
    index = torch.stack(
        [draw_batch_indices(g, iterations, n_fake, batch, device) for g in generators], dim=1
    )

    optimizer = make_adam(model)
    losses = torch.empty(iterations, repeats, device=device)
    for step in progress_bar(range(iterations), "predictive score", progress):
        rows = index[step]  # (R, B)
        pred = _predict(model, fake_x[rows].permute(1, 2, 0, 3))  # (B, L-1, R)
        target = fake_y[rows].permute(1, 2, 0)  # (B, L-1, R)
        per_repeat = (pred - target).abs().mean(dim=(0, 1))
        optimizer.zero_grad(set_to_none=True)
        # The sum keeps each repeat's gradient equal to that of its own mean loss.
        per_repeat.sum().backward()
        optimizer.step()
        losses[step] = per_repeat.detach()

    # Test on every real window with every repeat's model, in chunks to bound memory.
    n_real = real_x.shape[0]
    chunk = max(1, _EVAL_ELEMENTS // ((length - 1) * inputs * repeats))
    total = torch.zeros(repeats, dtype=torch.float64, device=device)
    with torch.no_grad():
        for start in range(0, n_real, chunk):
            x = real_x[start : start + chunk]
            x = x.unsqueeze(2).expand(-1, -1, repeats, -1)  # (b, L-1, R, in)
            error = (_predict(model, x) - real_y[start : start + chunk, :, None]).abs()
            total += error.double().sum(dim=(0, 1))
    scores = total / (n_real * (length - 1))
    return scores.cpu(), losses.cpu()


def predictive_score(
    real: Tensor,
    fake: Tensor,
    *,
    repeats: int = 5,
    seed: int = 0,
    iterations: int = ITERATIONS,
    batch_size: int = 128,
    univariate: bool = False,
    device: str | torch.device | None = None,
    progress: bool = False,
    tf32: bool = False,
) -> Tensor:
    """The TimeGAN predictive score (train on synthetic, test on real): the mean absolute error
    on the real windows of a GRU trained on the generated ones, one value per repeat (protocol
    in the module docstring).

    Args:
        real: ``(N_real, L, C)`` real windows scaled to ``[0, 1]``, ``L >= 2``.
        fake: ``(N_fake, L, C)`` generated windows, same scaling, ``L``, ``C``, dtype, device.
        repeats: independent predictors (batches, initial weights), trained at once.
        seed: repeat ``r`` draws all its randomness from a generator seeded by ``(seed, r)``.
        iterations: Adam steps per predictor.
        batch_size: generated windows per step (fewer, with a warning, if ``N_fake`` is
            smaller).
        univariate: the labelled variant for ``C = 1`` (next value of the single feature from
            its past); required for, and only allowed with, ``C = 1``.
        device: where to train; ``None`` picks CUDA when available.
        progress: show a progress bar over iterations.
        tf32: allow TF32 in CUDA matmuls and cuDNN (faster; not the reference's float32).

    Returns:
        ``(repeats,)`` float64 CPU tensor of mean absolute errors; lower is better. Summarise
        with :func:`tsgen.metrics.t_interval`.

    Raises:
        TypeError, ValueError: for malformed windows or arguments; ``C = 1`` without
        ``univariate=True``.
    """
    with single_cpu_thread(resolve_device(device)), cuda_precision(tf32):
        return _run_predictive(
            real,
            fake,
            repeats=repeats,
            seed=seed,
            iterations=iterations,
            batch_size=batch_size,
            univariate=univariate,
            device=device,
            progress=progress,
        )[0]
