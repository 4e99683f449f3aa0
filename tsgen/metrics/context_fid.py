"""Context-FID (Jeha et al. 2022, PSA-GAN), as computed by Diffusion-TS and TimeBridge.

For each repeat: a TS2Vec encoder (:mod:`tsgen.metrics.ts2vec`) is trained on the real windows
(200 or 600 iterations by the reference rule), both window sets are embedded by max-pooling the
weight-averaged encoder's representations over all time steps, and the score is the squared
Frechet distance between Gaussians fitted to the real and generated embeddings
(:func:`~tsgen.metrics.frechet.frechet_distance_from_samples`, float64). All repeats train at
once as one stacked network; repeat ``r`` depends only on ``(seed, r)``, so ``repeats=3`` gives
the first three values of ``repeats=5``.

Differences from Diffusion-TS's ``Context_FID`` that do not change what is measured: all
generated windows are used (the reference keeps as many as there are real ones, after a random
permutation), and the Frechet distance takes the trace of the matrix square root from a symmetric
eigendecomposition instead of ``scipy.linalg.sqrtm``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tsgen._validation import check_int
from tsgen.metrics._repeats import cuda_precision, repeat_generators, resolve_device
from tsgen.metrics.distances import _check_pair
from tsgen.metrics.frechet import frechet_distance_from_samples
from tsgen.metrics.ts2vec import _train, protocol_iterations

__all__ = ["context_fid"]


def context_fid(
    real: Tensor,
    fake: Tensor,
    *,
    repeats: int = 5,
    seed: int = 0,
    iterations: int | None = None,
    batch_size: int = 8,
    encode_batch_size: int = 1024,
    device: str | torch.device | None = None,
    progress: bool = False,
    tf32: bool = False,
) -> Tensor:
    """Context-FID of generated windows against real ones, one value per repeat.

    Args:
        real: ``(N_real, L, C)`` finite float real windows, in ``[0, 1]`` as in the papers;
            ``N_real >= 2``, ``L >= 2``. The encoder is trained on these.
        fake: ``(N_fake, L, C)`` generated windows (same ``L``, ``C``, dtype and device),
            ``N_fake >= 2``.
        repeats: independent encoders (each trained from its own random stream); 5 in the
            papers.
        seed: the metric seed; repeat ``r`` depends only on ``(seed, r)``.
        iterations: TS2Vec optimizer steps; ``None``: 200 if ``N_real * L * C <= 100000`` else
            600 (the reference default).
        batch_size: TS2Vec training batch size (``min(batch_size, N_real)`` is used).
        encode_batch_size: windows embedded per chunk; bounds memory, does not change the result
            beyond floating-point error.
        device: where to train and encode; ``None``: CUDA when available, else the CPU.
        progress: show a progress bar over training iterations.
        tf32: allow TF32 in CUDA matmuls and cuDNN (faster; not the reference's float32).

    Returns:
        ``(repeats,)`` float64 CPU tensor of squared Frechet distances (0 for identical sets,
        larger is worse).

    Raises:
        TypeError / ValueError: for invalid windows (see ``_check_pair``) or arguments, naming
            the argument, what was expected and what came.
    """
    real, fake = _check_pair(real, fake)
    check_int("repeats", repeats)
    check_int("seed", seed, minimum=0)
    if iterations is not None:
        check_int("iterations", iterations)
    check_int("batch_size", batch_size)
    check_int("encode_batch_size", encode_batch_size)
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be a bool; got {type(progress).__name__}")
    for name, x in (("real", real), ("fake", fake)):
        if x.shape[0] < 2:
            raise ValueError(
                f"{name} needs at least 2 windows for a covariance; got {x.shape[0]} "
                f"(shape {tuple(x.shape)})"
            )
    n, length, channels = real.shape
    if length < 2:
        raise ValueError(
            f"Context-FID needs windows of length L >= 2 (TS2Vec crops at least 2 steps); got "
            f"L={length}"
        )
    device = resolve_device(device)
    if iterations is None:
        iterations = protocol_iterations(n, length, channels)
    generators = repeat_generators(seed, repeats, torch.device("cpu"))
    with cuda_precision(tf32):
        model = _train(real, generators, iterations, batch_size, 1e-3, device, progress)
        real_embeddings = model.encode(real, encode_batch_size)  # (R, N_real, 320)
        fake_embeddings = model.encode(fake, encode_batch_size)  # (R, N_fake, 320)
    scores = [
        frechet_distance_from_samples(real_embeddings[r], fake_embeddings[r])
        for r in range(repeats)
    ]
    return torch.tensor(scores, dtype=torch.float64)
