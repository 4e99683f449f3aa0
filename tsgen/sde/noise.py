"""Noise sources: one protocol for the solvers (Brownian increments on a grid) and the priors
(plain standard-normal draws).

- :class:`GaussianNoise`: the fast default; draws increments for many steps in one call.
- :class:`PerSampleNoise`: one generator per sample, seeded, so sample ``i`` gets the same noise
  whatever the batch size or its position in the batch.
- :class:`ExplicitIncrements`: given increments, so that several solvers share one Brownian path.
- :class:`BrownianIntervalNoise`: a torchsde ``BrownianInterval``, queryable at any times (for
  adaptive steps and the adjoint).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import torch
import torchsde
from einops import rearrange
from torch import Tensor

__all__ = [
    "BrownianIntervalNoise",
    "ExplicitIncrements",
    "GaussianNoise",
    "Increments",
    "NoiseSource",
    "PerSampleNoise",
    "coarsen_increments",
    "standard_normal",
]


def _step_shape(values: Tensor, state_ndim: int) -> Tensor:
    """``(n,)`` per-step values reshaped to ``(n, 1, ..., 1)`` to scale ``(n, *shape)`` blocks."""
    return rearrange(values, "n -> n" + " 1" * state_ndim)


class Increments(ABC):
    """Brownian increments ``dW_k`` over the intervals ``[grid[k], grid[k+1]]`` of one grid.

    ``increments[k]`` has the state's shape and variance ``|grid[k+1] - grid[k]|``. Solvers read
    them in order ``k = 0, 1, ...``.
    """

    def __init__(self, n_steps: int) -> None:
        self.n_steps = n_steps

    def __len__(self) -> int:
        return self.n_steps

    @abstractmethod
    def __getitem__(self, k: int) -> Tensor: ...


class _BlockIncrements(Increments):
    """Increments held as one ``(n_steps, *shape)`` tensor."""

    def __init__(self, block: Tensor) -> None:
        super().__init__(block.shape[0])
        self.block = block

    def __getitem__(self, k: int) -> Tensor:
        return self.block[k]


class NoiseSource(ABC):
    """Where the randomness of solvers and priors comes from."""

    @abstractmethod
    def increments(
        self, grid: Tensor, shape: torch.Size, dtype: torch.dtype, device: torch.device
    ) -> Increments:
        """Brownian increments for every interval of ``grid`` (states of ``shape``)."""

    def normal(self, shape: torch.Size, dtype: torch.dtype, device: torch.device) -> Tensor:
        """One standard-normal draw of ``shape`` (batch first)."""
        raise TypeError(
            f"{type(self).__name__} only provides Brownian increments on a grid; draw plain "
            "normals from GaussianNoise or PerSampleNoise"
        )


class GaussianNoise(NoiseSource):
    """Independent Gaussian increments from one generator, drawn ``chunk`` steps per call.

    Args:
        generator: a ``torch.Generator`` on the device the states live on; ``None`` uses the
            global generator of that device.
        chunk: steps drawn per call, bounded so that a block holds at most ``2**15`` numbers on
            the CPU and ``2**22`` on an accelerator. (On the CPU, larger blocks are returned to
            the operating system when freed and page-faulted in again, and get split across
            threads: both cost more than the per-call overhead they save; measured in
            docs/benchmarks.md.)
    """

    def __init__(self, generator: torch.Generator | None = None, chunk: int = 64) -> None:
        if not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"chunk must be a positive integer; got {chunk!r}")
        self.generator = generator
        self.chunk = chunk

    def normal(self, shape: torch.Size, dtype: torch.dtype, device: torch.device) -> Tensor:
        return torch.randn(shape, generator=self.generator, dtype=dtype, device=device)

    def increments(
        self, grid: Tensor, shape: torch.Size, dtype: torch.dtype, device: torch.device
    ) -> Increments:
        sqrt_dt = grid.diff().abs().sqrt().to(dtype=dtype, device=device)
        numel = max(1, math.prod(shape))
        budget = 1 << (15 if torch.device(device).type == "cpu" else 22)
        chunk = max(1, min(self.chunk, budget // numel))
        return _ChunkedIncrements(self, sqrt_dt, torch.Size(shape), chunk)


class _ChunkedIncrements(Increments):
    """Draws ``chunk`` steps of increments at once, in order."""

    def __init__(self, source: GaussianNoise, sqrt_dt: Tensor, shape: torch.Size, chunk: int):
        super().__init__(sqrt_dt.shape[0])
        self.source, self.sqrt_dt, self.shape, self.chunk = source, sqrt_dt, shape, chunk
        self.start = 0
        self.block: Tensor | None = None

    def __getitem__(self, k: int) -> Tensor:
        if not 0 <= k < self.n_steps:
            raise IndexError(f"step {k} is outside the grid's {self.n_steps} intervals")
        if self.block is None or not self.start <= k < self.start + self.block.shape[0]:
            if self.block is not None and k < self.start:
                raise IndexError(
                    f"GaussianNoise increments are drawn in order; step {k} was already passed"
                )
            self.start = k
            n = min(self.chunk, self.n_steps - k)
            scale = _step_shape(self.sqrt_dt[k : k + n], len(self.shape))
            z = self.source.normal((n, *self.shape), self.sqrt_dt.dtype, self.sqrt_dt.device)
            self.block = z.mul_(scale)
        return self.block[k - self.start]


def _seed_from(seed: int, stream: int) -> int:
    """A 63-bit generator seed for ``(seed, stream)``; distinct streams give unrelated seeds."""
    return int(
        np.random.SeedSequence([int(seed), int(stream)]).generate_state(1, np.uint64)[0] >> 1
    )


class PerSampleNoise(NoiseSource):
    """One seeded generator per sample: sample ``i`` draws the same numbers whatever the batch.

    Each call draws every sample's whole block at once from that sample's generator (not one
    generator call per step) and advances it, so a sequence of calls (a prior draw, then a
    solver's increments) is reproducible sample by sample.

    Args:
        seeds: one non-negative integer per sample (the batch dimension of every draw).
        stream: separates independent uses of the same seeds (e.g. training vs. sampling).
    """

    def __init__(self, seeds: Sequence[int] | Tensor, stream: int = 0) -> None:
        seeds = [int(s) for s in (seeds.tolist() if isinstance(seeds, Tensor) else seeds)]
        if not seeds or min(seeds) < 0:
            raise ValueError(f"seeds must be a non-empty sequence of integers >= 0; got {seeds}")
        self.seeds = seeds
        self.stream = int(stream)
        self._generators: dict[torch.device, list[torch.Generator]] = {}

    def generators(self, device: torch.device) -> list[torch.Generator]:
        device = torch.device(device)
        if device not in self._generators:
            self._generators[device] = [
                torch.Generator(device).manual_seed(_seed_from(s, self.stream)) for s in self.seeds
            ]
        return self._generators[device]

    def _per_sample(self, shape: torch.Size, dtype: torch.dtype, device: torch.device) -> Tensor:
        """``(B, *shape)``: one draw of ``shape`` per sample from its own generator, written
        straight into one preallocated block (no per-sample temporaries, no stacking copy)."""
        generators = self.generators(device)
        block = torch.empty((len(generators), *shape), dtype=dtype, device=device)
        for row, generator in zip(block, generators, strict=True):
            torch.randn(shape, generator=generator, dtype=dtype, device=device, out=row)
        return block

    def _check_batch(self, shape: torch.Size) -> None:
        if len(shape) == 0 or shape[0] != len(self.seeds):
            raise ValueError(
                f"PerSampleNoise has {len(self.seeds)} seeds but the states have shape "
                f"{tuple(shape)}; the batch dimension must equal the number of seeds"
            )

    def normal(self, shape: torch.Size, dtype: torch.dtype, device: torch.device) -> Tensor:
        self._check_batch(shape)
        return self._per_sample(torch.Size(shape[1:]), dtype, device)

    def increments(
        self, grid: Tensor, shape: torch.Size, dtype: torch.dtype, device: torch.device
    ) -> Increments:
        self._check_batch(shape)
        n_steps = grid.shape[0] - 1
        z = self._per_sample(torch.Size((n_steps, *shape[1:])), dtype, device)
        sqrt_dt = grid.diff().abs().sqrt().to(dtype=dtype, device=device)
        # Scale in place, then view as (n_steps, B, ...): step k reads a strided slice.
        z.mul_(rearrange(sqrt_dt, "n -> 1 n" + " 1" * (len(shape) - 1)))
        return _BlockIncrements(rearrange(z, "b n ... -> n b ..."))


class ExplicitIncrements(NoiseSource):
    """Given Brownian increments ``(n_steps, *shape)``, reused by every solver that takes them."""

    def __init__(self, increments: Tensor) -> None:
        if not isinstance(increments, Tensor) or increments.ndim < 2:
            raise ValueError(
                "increments must be a tensor of shape (n_steps, batch, ...); got "
                f"{getattr(increments, 'shape', type(increments).__name__)}"
            )
        self.block = increments

    def increments(
        self, grid: Tensor, shape: torch.Size, dtype: torch.dtype, device: torch.device
    ) -> Increments:
        expected = (grid.shape[0] - 1, *shape)
        if tuple(self.block.shape) != expected:
            raise ValueError(
                f"ExplicitIncrements hold shape {tuple(self.block.shape)} but this grid and state "
                f"need (n_steps, *state shape) = {expected}"
            )
        return _BlockIncrements(self.block.to(dtype=dtype, device=device))


def standard_normal(
    shape: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device,
    noise: NoiseSource | Tensor | None = None,
) -> Tensor:
    """A standard-normal draw of ``shape`` (batch first) for a prior or a marginal.

    Args:
        noise: a :class:`NoiseSource` (e.g. :class:`PerSampleNoise`, so the draw follows the
            samples' seeds), the draw itself as a tensor of ``shape`` (checked), or ``None`` for
            the global generator.
    """
    if isinstance(noise, Tensor):
        if tuple(noise.shape) != tuple(shape):
            raise ValueError(
                f"noise given as a tensor must have shape {tuple(shape)}; got {tuple(noise.shape)}"
            )
        return noise
    if noise is None:
        return torch.randn(shape, dtype=dtype, device=device)
    return noise.normal(torch.Size(shape), dtype, device)


def coarsen_increments(increments: Tensor, factor: int) -> Tensor:
    """Sum ``factor`` consecutive increments: the same Brownian path on a grid ``factor`` times
    coarser. ``(n_steps, ...) -> (n_steps / factor, ...)``."""
    if factor < 1 or increments.shape[0] % factor:
        raise ValueError(
            f"factor must be a positive divisor of the {increments.shape[0]} steps; got {factor}"
        )
    return rearrange(increments, "(n f) ... -> n f ...", f=factor).sum(dim=1)


class BrownianIntervalNoise(NoiseSource):
    """A torchsde ``BrownianInterval``: the same path can be queried on any times.

    One instance is one Brownian path: every solve that uses it (over the same span, state
    shape, dtype and device) sees the same path, also with ``entropy=None`` (random once); use
    a new instance for independent noise.

    A grid going backwards in time is read through ``s = -t`` (as the torchsde adapter does), so
    the native solvers and ``torchsde:<method>`` see the same increments.

    Args:
        entropy: the seed of the Brownian path (``None``: random).
        tol: the interval's time tolerance (torchsde's ``tol``).
    """

    def __init__(self, entropy: int | None = None, tol: float = 0.0) -> None:
        self.entropy = entropy
        self.tol = tol
        self.brownian: torchsde.BrownianInterval | None = None
        self._key: tuple | None = None

    def brownian_for(
        self, lo: float, hi: float, size: tuple[int, ...], dtype: torch.dtype, device: torch.device
    ) -> torchsde.BrownianInterval:
        """The underlying interval on ``[lo, hi]`` for states of ``size``: made once and reused
        while the same span, shape, dtype and device are asked for (so it is one path)."""
        key = (lo, hi, size, dtype, torch.device(device))
        if self.brownian is None or self._key != key:
            self.brownian = torchsde.BrownianInterval(
                t0=lo,
                t1=hi,
                size=size,
                dtype=dtype,
                device=device,
                entropy=self.entropy,
                tol=self.tol,
                levy_area_approximation="space-time",
                cache_size=None,
            )
            self._key = key
        return self.brownian

    def increments(
        self, grid: Tensor, shape: torch.Size, dtype: torch.dtype, device: torch.device
    ) -> Increments:
        times = grid.detach().cpu().double()
        if float(times[1]) < float(times[0]):
            times = -times
        bm = self.brownian_for(float(times[0]), float(times[-1]), tuple(shape), dtype, device)
        steps = zip(times[:-1].tolist(), times[1:].tolist(), strict=True)
        return _BlockIncrements(torch.stack([bm(a, b) for a, b in steps]))
