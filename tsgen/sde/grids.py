"""Time grids for the solvers: uniform, Karras, uniform-then-Karras (for bridges), log-SNR
uniform, and their validation.

Every grid is a 1-D tensor of strictly monotone times, increasing (forward in time) or decreasing
(reverse-time sampling), that :func:`tsgen.sde.solve` takes as it is.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tsgen.sde.base import LinearSDE

__all__ = [
    "karras_grid",
    "log_snr_grid",
    "uniform_grid",
    "uniform_then_karras_grid",
    "validate_grid",
]


def validate_grid(grid: Tensor, name: str = "grid") -> int:
    """Check that ``grid`` is a usable time grid and return its direction.

    Raises:
        ValueError: naming ``name``, if the grid is not a 1-D floating tensor of at least two
            finite, strictly increasing or strictly decreasing times.

    Returns:
        ``+1`` for an increasing grid, ``-1`` for a decreasing one.
    """
    if not isinstance(grid, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of times; got {type(grid).__name__}")
    if grid.ndim != 1 or grid.shape[0] < 2:
        raise ValueError(
            f"{name} must be a 1-D tensor of at least 2 times; got shape {tuple(grid.shape)}"
        )
    if not grid.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor; got dtype {grid.dtype}")
    host = grid.detach().cpu()
    if not bool(torch.isfinite(host).all()):
        raise ValueError(f"{name} must be finite; got {host.tolist()}")
    steps = host.diff()
    direction = 1 if bool(steps[0] > 0) else -1
    bad = torch.nonzero(steps * direction <= 0).flatten()
    if bad.numel():
        k = int(bad[0])
        order = "increasing" if direction > 0 else "decreasing"
        raise ValueError(
            f"{name} must be strictly monotone; it starts {order} but goes from "
            f"{float(host[k]):.6g} to {float(host[k + 1]):.6g} at index {k}"
        )
    return direction


def uniform_grid(
    start: float,
    end: float,
    n_steps: int,
    *,
    final_step: float | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """``n_steps + 1`` evenly spaced times from ``start`` to ``end`` (either order).

    With ``final_step``, the first ``n_steps - 1`` steps evenly cover ``start`` to
    ``end -+ final_step`` and one last step of length ``final_step`` reaches ``end`` (used where
    the dynamics are singular at ``end``).
    """
    _check_steps(n_steps, minimum=2 if final_step is not None else 1)
    if final_step is None:
        return torch.linspace(start, end, n_steps + 1, dtype=dtype, device=device)
    if not 0 < final_step < abs(end - start):
        raise ValueError(
            f"final_step must lie in (0, |end - start|) = (0, {abs(end - start)}); got {final_step}"
        )
    before_end = end - final_step if end > start else end + final_step
    head = torch.linspace(start, before_end, n_steps, dtype=dtype, device=device)
    return torch.cat([head, torch.tensor([end], dtype=head.dtype, device=device)])


def karras_grid(
    t_max: float,
    t_min: float,
    n_points: int,
    *,
    rho: float = 7.0,
    append_zero: bool = True,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Decreasing grid of Karras et al. (EDM, eq. 5): ``n_points`` times from ``t_max`` to ``t_min``
    evenly spaced in ``t^(1/rho)``, then 0 if ``append_zero`` (``n_points`` intervals in all).
    """
    if not 0 < t_min < t_max:
        raise ValueError(f"karras_grid needs 0 < t_min < t_max; got t_min={t_min}, t_max={t_max}")
    if n_points < 2:
        raise ValueError(f"n_points must be at least 2; got {n_points}")
    if rho <= 0:
        raise ValueError(f"rho must be positive; got {rho}")
    ramp = torch.linspace(0, 1, n_points, dtype=torch.float64)
    inv_rho = 1.0 / rho
    times = (t_max**inv_rho + ramp * (t_min**inv_rho - t_max**inv_rho)) ** rho
    times[0], times[-1] = t_max, t_min
    if append_zero:
        times = torch.cat([times, times.new_zeros(1)])
    return times.to(dtype=dtype or torch.get_default_dtype(), device=device)


def uniform_then_karras_grid(
    t_max: float,
    t_split: float,
    t_min: float,
    n_upper: int,
    n_lower: int,
    *,
    rho: float = 7.0,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Decreasing grid for a bridge sampler: ``n_upper`` intervals evenly spaced in ``t`` from
    ``t_max`` down to ``t_split``, then :func:`karras_grid` from ``t_split`` to ``t_min`` and a
    last interval to 0 (``n_lower`` intervals): ``n_upper + n_lower`` in all.

    A bridge's noise vanishes at both ends, and its reverse dynamics change fastest next to the
    pinned end ``T`` as well as next to 0. A Karras grid refines only the end near 0: with
    ``rho = 14`` and 100 intervals, only 8 of them start above ``t = 0.5`` (docs/timebridge.md
    measures what that costs a squared-error TimeBridge model on Stocks).
    """
    _check_steps(n_upper, minimum=1, name="n_upper")
    _check_steps(n_lower, minimum=2, name="n_lower")
    if not 0 < t_min < t_split < t_max:
        raise ValueError(
            "uniform_then_karras_grid needs 0 < t_min < t_split < t_max; got "
            f"t_min={t_min}, t_split={t_split}, t_max={t_max}"
        )
    upper = torch.linspace(t_max, t_split, n_upper + 1, dtype=torch.float64)
    lower = karras_grid(t_split, t_min, n_lower, rho=rho, dtype=torch.float64)
    # The split time ends the upper part and starts the lower one: keep it once.
    grid = torch.cat([upper[:-1], lower])
    return grid.to(dtype=dtype or torch.get_default_dtype(), device=device)


def log_snr_grid(
    process: LinearSDE,
    start: float,
    end: float,
    n_steps: int,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """``n_steps + 1`` times from ``start`` to ``end`` evenly spaced in the process's log-SNR.

    The log-SNR ``log(alpha(0,t)^2 / sigma2(0,t))`` of a linear process decreases in ``t``; it is
    inverted by bisection in float64 (60 halvings: exact to double precision), so any
    :class:`LinearSDE` works. The end points are returned exactly.
    """
    _check_steps(n_steps, minimum=1)
    lo, hi = min(start, end), max(start, end)
    if lo <= 0:
        raise ValueError(f"log_snr_grid needs times > 0 (log-SNR is infinite at 0); got {lo}")
    bounds = torch.tensor([start, end], dtype=torch.float64)
    if process.log_snr(bounds[0]).ndim != 0:
        raise ValueError(
            f"log_snr_grid needs a process with scalar coefficients (one log-SNR per time); "
            f"{type(process).__name__} has per-coordinate coefficients"
        )
    levels = torch.linspace(0, 1, n_steps + 1, dtype=torch.float64)
    snr_start, snr_end = process.log_snr(bounds).unbind()
    targets = snr_start + levels * (snr_end - snr_start)
    left = torch.full_like(targets, lo)
    right = torch.full_like(targets, hi)
    for _ in range(60):
        mid = 0.5 * (left + right)
        above = process.log_snr(mid) > targets  # log-SNR decreases: the root lies to the right.
        left = torch.where(above, mid, left)
        right = torch.where(above, right, mid)
    times = 0.5 * (left + right)
    times[0], times[-1] = start, end
    validate_grid(times, "log_snr_grid (is the process's log-SNR strictly monotone?)")
    return times.to(dtype=dtype or torch.get_default_dtype(), device=device)


def _check_steps(n_steps: int, minimum: int, name: str = "n_steps") -> None:
    if not isinstance(n_steps, int) or n_steps < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {n_steps!r}")
