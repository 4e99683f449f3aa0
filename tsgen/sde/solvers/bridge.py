"""``bridge_sample``: reverse-time sampling of a linear-SDE bridge with a learned endpoint
predictor (sde.md, "Solvers"; TimeBridge's sampler, but nothing in it is TimeBridge-specific).

On every interval of a decreasing grid: an Euler-Maruyama move of the reverse bridge SDE over a
fraction ``churn`` of the interval, then a Heun step of the probability-flow ODE over the rest;
on the last interval a plain Euler step, since the bridge variance ``c_t`` vanishes at ``t = 0``.
With ``n`` intervals that is ``n + n + (n - 1)`` predictor evaluations (``3n - 1``).

The ``"ode"`` mode moves the first interval by Euler-Maruyama too: at ``T`` the bridge is a point
mass at ``x_T``, and a probability-flow ODE started there is deterministic, so it would map each
``x_T`` to a single ``X_0`` and collapse the data's spread (as in DDBM's sampler, which also
starts with a stochastic step).

The ``"ancestral"`` mode (method ``bridge_ancestral``, :mod:`.ancestral`) takes one predictor
call per interval ``t -> s`` and draws ``x_s`` from the bridge posterior
``q(x_s | X_0 = D(x_t, t), X_t = x_t)``, returning ``D`` itself on a last interval that ends at
``0``: ``n`` intervals cost ``n`` evaluations.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from tsgen.sde.base import LinearSDE
from tsgen.sde.bridges import EndpointPredictor, ReverseBridge
from tsgen.sde.grids import validate_grid
from tsgen.sde.noise import NoiseSource
from tsgen.sde.solvers.base import Callback, SolverOutput

__all__ = ["bridge_sample"]

SamplerMode = Literal["hybrid", "sde", "ode", "ancestral"]


def bridge_sample(
    process: LinearSDE,
    predictor: EndpointPredictor,
    x_T: Tensor,
    grid: Tensor,
    *,
    T: float = 1.0,
    mode: SamplerMode = "hybrid",
    churn: float = 0.33,
    posterior_variance: Literal["none", "diagonal"] = "none",
    noise: NoiseSource | None = None,
    return_path: bool = False,
    callback: Callback | None = None,
    progress: bool = False,
) -> SolverOutput:
    """Sample ``X_0`` from the bridge of ``process`` that ends at ``x_T``.

    Args:
        process: the linear SDE of the bridge (e.g. :class:`~tsgen.sde.VPSDE`).
        predictor: ``D(x_t, t) ~ E[X_0 | X_t = x_t, X_T = x_T]``.
        x_T: the bridge's end states, ``(B, *event)``.
        grid: decreasing times from just below ``T`` to ``0`` (e.g. :func:`karras_grid`).
        T: the bridge's end time.
        mode: ``"hybrid"`` (churn sampler), ``"sde"`` (Euler-Maruyama of the reverse SDE),
            ``"ode"`` (Heun of the probability-flow ODE after a first Euler-Maruyama interval)
            or ``"ancestral"`` (a draw from the bridge posterior given ``X_0 = D(x_t, t)`` on
            each interval; one evaluation per interval).
        churn: the SDE fraction of each interval in ``"hybrid"`` mode (ignored by the others).
        posterior_variance: in ``"ancestral"`` mode, ``"diagonal"`` adds the Tweedie estimate of
            the posterior variance of ``X_0`` to each draw (two evaluations per interval; see
            :class:`~tsgen.sde.solvers.ancestral.BridgeAncestral`); ignored by the others.
        noise, return_path, callback, progress: as for :func:`~tsgen.sde.solve`.

    Returns:
        The :class:`SolverOutput`; ``x`` approximates a draw of ``X_0``.
    """
    from tsgen.sde.solvers import solve

    validate_grid(grid)
    n_steps = grid.shape[0] - 1
    fractions = {"hybrid": churn, "sde": 1.0, "ode": [1.0] + [0.0] * (n_steps - 1)}
    if mode not in (*fractions, "ancestral"):
        raise ValueError(f"mode must be one of {sorted([*fractions, 'ancestral'])}; got '{mode}'")
    # The grid's range (inside [0, T], decreasing, starting below T) is checked by ReverseBridge.
    reverse = ReverseBridge(process, predictor, x_T, T)
    if mode == "ancestral":
        return solve(
            reverse,
            x_T,
            grid,
            "bridge_ancestral",
            posterior_variance=posterior_variance,
            noise=noise,
            return_path=return_path,
            callback=callback,
            progress=progress,
        )
    return solve(
        reverse,
        x_T,
        grid,
        "heun",
        churn=fractions[mode],
        final_euler=True,
        noise=noise,
        return_path=return_path,
        callback=callback,
        progress=progress,
    )
