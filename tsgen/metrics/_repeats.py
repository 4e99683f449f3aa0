"""Shared plumbing of the trained metrics (Context-FID, discriminative, predictive): the device,
the per-repeat random streams and the progress bar.

Every repeat ``r`` of a metric draws all of its randomness (initial weights, data splits,
batches, crops, masks, dropout) from its own generator seeded from ``(seed, r)`` only. So repeat
``r`` gives the same value whether 5 or 20 repeats are run together (up to floating-point
reduction order), and ``repeats=20`` extends ``repeats=5`` rather than replacing it.

The stream also depends on the device kind: CPU and CUDA generators produce different numbers
from the same seed. Context-FID draws on the CPU and moves its draws to the device (its values
agree across devices up to float error); the GRU scores draw on their device, so their repeat
values on a GPU differ from those on a CPU as two sets of fresh repeats would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from tsgen._validation import check_int

__all__ = [
    "cuda_precision",
    "progress",
    "repeat_generators",
    "repeat_seed",
    "resolve_device",
    "single_cpu_thread",
]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device``; ``None`` picks CUDA when available, else the CPU.

    Raises:
        ValueError: for a device string torch does not understand, or CUDA requested where none
            is available.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"device must be a torch.device, a string such as 'cpu' or 'cuda:0', or None; "
            f"got {device!r}"
        ) from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device is {device!r} but CUDA is not available on this machine")
    return resolved


def repeat_seed(seed: int, repeat: int) -> int:
    """The 63-bit seed of repeat ``repeat`` of a metric run with ``seed`` (NumPy's
    ``SeedSequence`` mixing, so neighbouring seeds and repeats give unrelated streams)."""
    check_int("seed", seed, minimum=0)
    check_int("repeat", repeat, minimum=0)
    state = np.random.SeedSequence([seed, repeat]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31 | int(state[1]) >> 1) & (2**63 - 1)


def repeat_generators(seed: int, repeats: int, device: torch.device) -> list[torch.Generator]:
    """One generator on ``device`` per repeat, seeded with :func:`repeat_seed`."""
    check_int("repeats", repeats, minimum=1)
    return [
        torch.Generator(device=device).manual_seed(repeat_seed(seed, r)) for r in range(repeats)
    ]


def progress(iterable_range: range, description: str, enabled: bool) -> Iterator[int]:
    """``iterable_range`` wrapped in a progress bar on stderr when ``enabled``."""
    return iter(tqdm(iterable_range, desc=description, disable=not enabled, leave=False))


@contextlib.contextmanager
def single_cpu_thread(device: torch.device) -> Iterator[None]:
    """On the CPU, run the block with one intra-op thread, then restore the count.

    The GRU metrics multiply matrices of a few dozen rows per step: splitting such operations
    over threads costs more than it saves (500 predictive iterations on Stocks took 3.9 s with
    one thread and 42.9 s with two on a busy 2-core machine)."""
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def cuda_precision(tf32: bool) -> Iterator[None]:
    """TF32 in CUDA matmuls and cuDNN (the GRUs, TS2Vec's convolutions) allowed or not, the
    previous settings restored afterwards. cuDNN allows TF32 by default: the trained metrics
    run under ``tf32=False`` unless asked, so that they are float32 as the reference's are."""
    matmul = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        with torch.backends.cudnn.flags(
            enabled=torch.backends.cudnn.enabled,
            benchmark=torch.backends.cudnn.benchmark,
            deterministic=torch.backends.cudnn.deterministic,
            allow_tf32=tf32,
        ):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul
