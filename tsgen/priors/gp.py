"""The Gaussian-process ("time-dependent") prior, TimeBridge's best (timebridge.md, "Priors").

Per feature ``f``, a window's column ``x_{.,f}`` (length ``L``) is ``N(mu_{.,f}, K_f)`` with

    K_f[i, j] = v_f k(|i - j|; ell_f) + noise_f [i = j]

over time indices ``i, j = 0 .. L-1`` (the length scale ``ell_f`` is in time steps) and ``k`` a
stationary correlation with ``k(0) = 1``: RBF ``exp(-r^2 / 2)``, Matern 1/2 ``exp(-r)``, Matern
3/2 ``(1 + a) exp(-a)`` with ``a = sqrt(3) r``, Matern 5/2 ``(1 + a + a^2/3) exp(-a)`` with
``a = sqrt(5) r``, where ``r = |i - j| / ell``.

Fitting (``mode="fit"``): ``mu_f`` is the training mean (one constant per feature, or one per
step), and ``(v_f, ell_f, noise_f)`` maximise the Gaussian likelihood of the training windows,
treated as i.i.d. draws of the ``L``-dimensional ``N(mu_{.,f}, K_f)``. With the scatter matrix
``S_f = (1/N) sum_n (x_n - mu)(x_n - mu)^T`` the log-likelihood is exactly

    log p = -N/2 [log det K_f + tr(K_f^{-1} S_f) + L log(2 pi)],

so each evaluation is one ``L x L`` Cholesky in float64 whatever ``N``. Overlapping (stride-1)
windows are not independent: the estimate is then a composite-likelihood one, still consistent
for the window covariance.

``kernel="empirical"`` drops the stationary kernel: ``K_f = S_f + noise_f I`` with ``S_f`` the
scatter about the mean (per step by default), the maximum-likelihood Gaussian of the windows
(``noise_f = 0``) with no constraint along time. A stationary kernel gives every step the same
variance; windows that do not have it are then fitted badly. On Sines (each window ``sin(f j + p)``
with small random ``f`` and ``p``) the per-step variance is 0.003 at the first step and 0.29 from
the middle on, and the RBF fit ends at a variance of 5.3, 13 times the data's 0.41, with a length
scale of 29 steps (docs/timebridge.md).

``mode="reference"`` reproduces the reference implementation's kernel for comparison, defects
included (timebridge.md, "Reference defects to avoid"); see :class:`GaussianProcessPrior`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np
import scipy.linalg
import scipy.optimize
import torch
from torch import Tensor

from tsgen._validation import check_int
from tsgen.priors.base import Prior, PriorCondition, finite_nonnegative, per_feature

logger = logging.getLogger(__name__)

__all__ = ["GaussianProcessPrior", "KernelName", "gp_covariance", "stationary_correlation"]

KernelName = Literal["rbf", "matern12", "matern32", "matern52"]
_KERNELS = (*get_args(KernelName), "empirical")
_PARAMETERS = ("variance", "length_scale", "noise_variance")


def _correlation(
    distance: np.ndarray, length_scale: np.ndarray, kernel: KernelName
) -> tuple[np.ndarray, np.ndarray]:
    """``k(d; ell)`` and its derivative in ``log ell``, both of the broadcast shape.

    With ``r = d / ell`` (so ``dr / dlog ell = -r``):
    RBF ``k = exp(-r^2/2)``, ``dk = r^2 k``; Matern 1/2 ``k = e^{-r}``, ``dk = r e^{-r}``;
    Matern 3/2 (``a = sqrt(3) r``) ``k = (1 + a) e^{-a}``, ``dk = a^2 e^{-a}``;
    Matern 5/2 (``a = sqrt(5) r``) ``k = (1 + a + a^2/3) e^{-a}``, ``dk = a^2 (1 + a) e^{-a} / 3``.
    """
    r = distance / length_scale
    if kernel == "rbf":
        k = np.exp(-0.5 * r**2)
        return k, r**2 * k
    if kernel == "matern12":
        k = np.exp(-r)
        return k, r * k
    if kernel == "matern32":
        a = math.sqrt(3.0) * r
        e = np.exp(-a)
        return (1 + a) * e, a**2 * e
    if kernel == "matern52":
        a = math.sqrt(5.0) * r
        e = np.exp(-a)
        return (1 + a + a**2 / 3) * e, a**2 * (1 + a) * e / 3
    raise ValueError(f"kernel must be one of {get_args(KernelName)}; got {kernel!r}")


def _distances(length: int) -> np.ndarray:
    """``|i - j|`` over time indices, ``(L, L)`` float64."""
    steps = np.arange(length, dtype=np.float64)
    return np.abs(steps[:, None] - steps[None, :])


def stationary_correlation(
    distance: np.ndarray, length_scale: float | np.ndarray, kernel: KernelName
) -> np.ndarray:
    """``k(d; ell)`` with ``k(0) = 1`` (module docstring); arguments broadcast together."""
    return _correlation(np.asarray(distance, dtype=np.float64), np.asarray(length_scale), kernel)[0]


def gp_covariance(
    variance: Tensor, length_scale: Tensor, diagonal: Tensor, kernel: KernelName
) -> Tensor:
    """``K_f = v_f k(|i - j|; ell_f) + diag(diagonal_{.,f})``, shape ``(C, L, L)``, built in
    float64 on the CPU and returned in the dtype and on the device of ``diagonal``.

    Args:
        variance: ``(C,)``.
        length_scale: ``(C,)``, in time steps.
        diagonal: ``(L, C)``, added on the diagonal (the noise variance in ``fit`` mode).
    """
    as_numpy = [t.detach().to("cpu", torch.float64).numpy() for t in (variance, length_scale)]
    v, ell = (a[:, None, None] for a in as_numpy)
    K = torch.from_numpy(v * stationary_correlation(_distances(diagonal.shape[0]), ell, kernel))
    K = K.to(device=diagonal.device, dtype=diagonal.dtype)
    return K + torch.diag_embed(diagonal.T)


def _negative_log_likelihood(
    log_params: np.ndarray, scatter: np.ndarray, kernel: KernelName
) -> tuple[float, np.ndarray] | None:
    """Per-window ``-log p`` of ``N(0, K)`` given the scatter matrix ``S`` ``(L, L)`` (module
    docstring) and its gradient in ``log(v, ell, noise)``; ``None`` where ``K`` is not
    numerically positive definite.

    ``d(-log p) / d theta = tr((K^{-1} - K^{-1} S K^{-1}) dK / d theta) / 2``.
    """
    variance, length_scale, noise = np.exp(log_params)
    length = scatter.shape[0]
    k, dk = _correlation(_distances(length), length_scale, kernel)
    eye = np.eye(length)
    K = variance * k + noise * eye
    try:
        factor = scipy.linalg.cho_factor(K, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return None
    K_inv = scipy.linalg.cho_solve(factor, eye, check_finite=False)
    K_inv_S = K_inv @ scatter
    log_det = 2 * np.log(np.diag(factor[0])).sum()
    value = 0.5 * (log_det + np.trace(K_inv_S) + length * math.log(2 * math.pi))
    W = K_inv - K_inv_S @ K_inv
    # dK / dlog v = v k, dK / dlog ell = v dk, dK / dlog noise = noise I.
    grad = 0.5 * np.array(
        [(W * (variance * k)).sum(), (W * (variance * dk)).sum(), noise * np.trace(W)]
    )
    return float(value), grad


def _fit_feature(
    scatter: np.ndarray,
    kernel: KernelName,
    given: dict[str, float | None],
    n_starts: int,
    max_iter: int,
) -> list[float]:
    """Maximum-likelihood ``(v, ell, noise)`` of one feature by L-BFGS-B on log-parameters.

    Parameters in ``given`` (not ``None``) stay fixed. Starts: ``v = 0.9 s2``,
    ``noise = 0.1 s2`` (``s2`` the mean marginal variance ``tr(S) / L``) and ``n_starts`` length
    scales spaced geometrically from 1 step to ``L / 2``; the best end point wins. Bounds keep
    the problem well posed: ``v`` in ``[1e-6, 1e2] s2``, ``ell`` in ``[0.1, 100 L]`` steps,
    ``noise`` in ``[1e-8, 10] s2``.
    """
    free = [i for i, name in enumerate(_PARAMETERS) if given[name] is None]
    if not free:
        return [float(given[name]) for name in _PARAMETERS]
    length = scatter.shape[0]
    s2 = float(np.trace(scatter)) / length
    bounds = {
        "variance": (math.log(1e-6 * s2), math.log(1e2 * s2)),
        "length_scale": (math.log(0.1), math.log(100.0 * length)),
        "noise_variance": (math.log(1e-8 * s2), math.log(10.0 * s2)),
    }

    def objective(theta_free: np.ndarray, base: np.ndarray) -> tuple[float, np.ndarray]:
        theta = base.copy()
        theta[free] = theta_free
        out = _negative_log_likelihood(theta, scatter, kernel)
        if out is None or not np.isfinite(out[0]):
            # Outside the numerically PD region: a large value sends the line search back.
            return 1e10, np.zeros_like(theta_free)
        return out[0], out[1][free]

    best: tuple[float, np.ndarray] | None = None
    for ell in np.geomspace(1.0, max(1.0, length / 2), n_starts):
        start = {"variance": 0.9 * s2, "length_scale": float(ell), "noise_variance": 0.1 * s2}
        base = np.log([given[n] if given[n] is not None else start[n] for n in _PARAMETERS])
        result = scipy.optimize.minimize(
            objective,
            np.clip(base[free], *zip(*(bounds[_PARAMETERS[i]] for i in free), strict=True)),
            args=(base,),
            jac=True,
            method="L-BFGS-B",
            bounds=[bounds[_PARAMETERS[i]] for i in free],
            options={"maxiter": max_iter},
        )
        if best is None or result.fun < best[0]:
            theta = base.copy()
            theta[free] = result.x
            best = (float(result.fun), theta, result)
    result = best[2]
    on_bound = [
        _PARAMETERS[i]
        for j, i in enumerate(free)
        if np.isclose(result.x[j], bounds[_PARAMETERS[i]][0])
        or np.isclose(result.x[j], bounds[_PARAMETERS[i]][1])
    ]
    problems = [f"{name} ended at its bound" for name in on_bound]
    if not result.success:
        problems.insert(0, f"the optimiser did not converge ({result.message})")
    if problems:
        logger.warning(
            "GaussianProcessPrior fit (%s kernel): %s; the kernel may not describe the data",
            kernel,
            "; ".join(problems),
        )
    fitted = np.exp(best[1]).tolist()
    # Given parameters exactly as given (not through exp(log(.)), which may round).
    return [fitted[i] if given[n] is None else float(given[n]) for i, n in enumerate(_PARAMETERS)]


class GaussianProcessPrior(Prior):
    """Per-feature Gaussian process over time indices (module docstring for the model).

    ``mode="fit"`` (default): each of ``variance`` (``v_f``), ``length_scale`` (``ell_f``, in
    time steps) and ``noise_variance`` (``noise_f``) that is given (one float, or one per
    feature) is held fixed; the others are fitted per feature by maximum likelihood. Give all
    three for a fixed kernel with no optimisation. With ``kernel="empirical"`` nothing is
    optimised (``n_starts`` and ``max_iter`` are unused): ``K_f`` is the windows' scatter
    ``S_f`` plus ``noise_variance`` (default 0) on the diagonal, for windows that are not
    stationary along time (module docstring).

    ``mode="reference"`` reproduces the reference implementation's GP kernel exactly, so that
    runs with its published settings (``variance`` 0.3 / 0.5 / 1 for Stocks / ETTh / Sines) can
    be compared with fitted kernels. It has the defects timebridge.md lists ("Reference defects
    to avoid"), on purpose:

    - mean: the per-step, per-feature training mean ``mu_{l,f}``;
    - length scale: ``s``, the standard deviation (unbiased) of *all* training entries, a value
      in data units used as a distance in time steps: with ``s ~ 0.5`` the RBF correlation at lag
      1 is ``exp(-1 / (2 s^2)) ~ e^-2``, so the kernel is close to white noise;
    - ``K_f = variance * exp(-|i - j|^2 / (2 s^2)) + diag(sd_{.,f})`` with ``sd_{l,f}`` the
      unbiased per-step standard deviation of feature ``f``: a standard deviation added where a
      variance belongs;
    - the reference's bandwidth option, which it ignores, has no counterpart here.

    Only ``kernel="rbf"`` and ``variance`` (one positive float) apply in that mode. The kernel
    is built in float64 (the reference uses float32: differences at rounding level only).

    Args:
        kernel: ``"rbf"``, ``"matern12"``, ``"matern32"``, ``"matern52"`` or ``"empirical"``
            (fit mode only; takes no ``variance`` or ``length_scale``).
        mode: ``"fit"`` or ``"reference"``.
        variance: ``v_f > 0`` (required in reference mode).
        length_scale: ``ell_f > 0``, in time steps.
        noise_variance: ``noise_f >= 0``.
        mean: ``"constant"`` (one mean per feature: a stationary GP; default in fit mode with a
            stationary kernel) or ``"per_step"`` (one per step and feature; the reference's
            choice, and the default with ``kernel="empirical"``, where it completes the
            maximum-likelihood Gaussian).
        n_starts: length-scale starting points of the likelihood maximisation.
        max_iter: L-BFGS-B iterations per start.

    Buffers (after :meth:`fit`):
        mean: ``(L, C)``.
        variance: ``(C,)`` (with ``kernel="empirical"``, the mean marginal variance of the
            windows, ``tr(S_f) / L``, without the noise).
        length_scale: ``(C,)``; empty with ``kernel="empirical"``.
        diagonal: ``(L, C)``, the term added on the kernel's diagonal (``noise_f`` at every step
            in fit mode, ``sd_{l,f}`` in reference mode).
        cholesky: ``(C, L, L)``, lower Cholesky factor of each ``K_f`` (cached for sampling).
        log_likelihood: ``(C,)``, the training windows' Gaussian log-likelihood per feature
            under the fitted mean and kernel.
    """

    min_windows = 2

    def __init__(
        self,
        kernel: KernelName | Literal["empirical"] = "rbf",
        mode: Literal["fit", "reference"] = "fit",
        variance: float | Sequence[float] | None = None,
        length_scale: float | Sequence[float] | None = None,
        noise_variance: float | Sequence[float] | None = None,
        mean: Literal["constant", "per_step"] | None = None,
        n_starts: int = 3,
        max_iter: int = 500,
    ) -> None:
        super().__init__()
        if kernel not in _KERNELS:
            raise ValueError(f"kernel must be one of {_KERNELS}; got {kernel!r}")
        if mode not in ("fit", "reference"):
            raise ValueError(f"mode must be 'fit' or 'reference'; got {mode!r}")
        if mean not in (None, "constant", "per_step"):
            raise ValueError(f"mean must be 'constant', 'per_step' or None; got {mean!r}")
        for name, value in (("n_starts", n_starts), ("max_iter", max_iter)):
            check_int(name, value)
        given = {
            "variance": variance,
            "length_scale": length_scale,
            "noise_variance": noise_variance,
        }
        for name, value in given.items():
            _check_hyperparameter(name, value, allow_zero=name == "noise_variance")
        if mode == "reference":
            if kernel != "rbf":
                raise ValueError(
                    f"mode='reference' uses the reference's RBF kernel; got {kernel!r}"
                )
            if not isinstance(variance, (int, float)) or isinstance(variance, bool):
                raise ValueError(
                    "mode='reference' needs variance as one positive float (the reference's "
                    f"0.3 / 0.5 / 1 for Stocks / ETTh / Sines); got {variance!r}"
                )
            if length_scale is not None or noise_variance is not None:
                raise ValueError(
                    "mode='reference' derives the length scale and diagonal from the data; got "
                    f"length_scale={length_scale!r}, noise_variance={noise_variance!r}"
                )
            if mean == "constant":
                raise ValueError("mode='reference' uses the per-step mean; got mean='constant'")
        if kernel == "empirical" and (variance is not None or length_scale is not None):
            raise ValueError(
                "kernel='empirical' takes its covariance from the data and has no variance or "
                f"length scale; got variance={variance!r}, length_scale={length_scale!r}"
            )
        self.kernel = kernel
        self.mode = mode
        self.mean_kind = mean or (
            "constant" if mode == "fit" and kernel != "empirical" else "per_step"
        )
        self.given = given
        self.n_starts = n_starts
        self.max_iter = max_iter
        for name in ("mean", "variance", "length_scale", "diagonal", "cholesky", "log_likelihood"):
            self.register_buffer(name, torch.empty(0))

    def _fit(self, windows: Tensor) -> None:
        x = windows.to(torch.float64)
        n_windows, length, n_features = x.shape
        if self.mean_kind == "constant":
            mean = x.mean(dim=(0, 1)).expand(length, n_features)
        else:
            mean = x.mean(dim=0)
        residual = x - mean
        scatter = torch.einsum("nlc,nmc->clm", residual, residual) / n_windows  # S_f, (C, L, L)
        if self.kernel == "empirical":
            noise = self.given["noise_variance"]
            noise = (
                torch.zeros(n_features)
                if noise is None
                else per_feature("noise_variance", noise, n_features)
            )
            diagonal = noise.to(x).expand(length, n_features)
            # Reported as the mean marginal variance tr(S_f) / L; there is no length scale.
            variance = scatter.diagonal(dim1=-2, dim2=-1).mean(dim=-1)
            length_scale = torch.empty(0, dtype=x.dtype)
            K = scatter + torch.diag_embed(diagonal.T)
        elif self.mode == "reference":
            spread = x.std(correction=1)
            if not bool(spread > 0):
                # The reference's length scale is that standard deviation: 0 gives 0 / 0.
                raise ValueError(
                    "GaussianProcessPrior(mode='reference') needs training windows that are not "
                    "all one value: its length scale is their standard deviation, here 0"
                )
            variance = torch.full((n_features,), float(self.given["variance"]), dtype=x.dtype)
            length_scale = spread.expand(n_features)
            diagonal = x.std(dim=0, correction=1)  # a standard deviation (the reference's defect)
        else:
            constant = (x.amax(dim=(0, 1)) == x.amin(dim=(0, 1))).tolist()
            params = self._maximum_likelihood(scatter.cpu().numpy(), constant)
            variance, length_scale, noise = params.T
            diagonal = noise.expand(length, n_features)
        variance, length_scale, diagonal = (
            t.to(x.device) for t in (variance, length_scale, diagonal)
        )
        if self.kernel != "empirical":
            K = gp_covariance(variance, length_scale, diagonal, self.kernel)
        chol, info = torch.linalg.cholesky_ex(K)
        if bool((info != 0).any()):
            bad = torch.nonzero(info).flatten().tolist()
            remedy = (
                f"the scatter of {n_windows} windows of length {length} is singular (the "
                "windows span fewer than L directions: at most L windows with the per-step "
                "mean, a constant step, or windows on a family of few parameters); give those "
                "features a (larger) noise_variance"
                if self.kernel == "empirical"
                else "the reference's kernel and diagonal are fixed by the data in mode='reference'"
                if self.mode == "reference"
                else "give noise_variance > 0 or a shorter length_scale"
            )
            raise ValueError(
                f"GaussianProcessPrior: the covariance of feature(s) {bad} is not positive "
                f"definite in float64; {remedy}"
            )
        log_det = 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(dim=-1)
        trace = torch.cholesky_solve(scatter, chol).diagonal(dim1=-2, dim2=-1).sum(dim=-1)
        log_likelihood = -0.5 * n_windows * (log_det + trace + length * math.log(2 * math.pi))
        dtype = windows.dtype
        self.mean = mean.contiguous().to(dtype)
        self.variance = variance.to(dtype)
        self.length_scale = length_scale.contiguous().to(dtype)
        self.diagonal = diagonal.contiguous().to(dtype)
        self.cholesky = chol.to(dtype)
        self.log_likelihood = log_likelihood.to(dtype)

    def _maximum_likelihood(self, scatter: np.ndarray, constant: list[bool]) -> Tensor:
        """``(C, 3)`` float64: ``(v, ell, noise)`` per feature, given ones held fixed.

        Args:
            scatter: ``(C, L, L)`` float64 on the CPU.
            constant: per feature, whether it is constant in the training windows.
        """
        given = {
            name: None if value is None else per_feature(name, value, len(constant))
            for name, value in self.given.items()
        }
        rows = []
        all_given = all(v is not None for v in given.values())
        if not all_given and given["noise_variance"] is not None and 0 in given["noise_variance"]:
            raise ValueError(
                "GaussianProcessPrior: noise_variance=0 with fitted parameters leaves the fit on "
                "the edge of positive definiteness (it stops where the Cholesky first fails); "
                "give a positive noise_variance, or fix all three parameters"
            )
        for f, is_constant in enumerate(constant):
            if is_constant and not all_given:
                raise ValueError(
                    f"GaussianProcessPrior: feature {f} is constant in the training windows; "
                    "its kernel cannot be fitted (give variance, length_scale and "
                    "noise_variance, or drop the feature)"
                )
            fixed = {name: None if v is None else float(v[f]) for name, v in given.items()}
            rows.append(_fit_feature(scatter[f], self.kernel, fixed, self.n_starts, self.max_iter))
        return torch.tensor(rows, dtype=torch.float64)

    def covariance(self) -> Tensor:
        """``K_f`` for every feature, ``(C, L, L)``, from the fitted parameters (with
        ``kernel="empirical"``, from the cached Cholesky factor)."""
        self._fitted_shape()
        if self.kernel == "empirical":
            return self.cholesky @ self.cholesky.mT
        if self.length_scale.numel() != self.n_features:
            # The kernel is not part of the state: an empirical prior's state has no length scale.
            raise ValueError(
                f"GaussianProcessPrior(kernel={self.kernel!r}) holds a state without one length "
                f"scale per feature ({self.n_features}); got {self.length_scale.numel()}: was it "
                "loaded from a prior with kernel='empirical'?"
            )
        return gp_covariance(self.variance, self.length_scale, self.diagonal, self.kernel)

    def _sample(self, z: Tensor, condition: PriorCondition | None) -> Tensor:
        # x_{.,f} = mu_{.,f} + L_f z_{.,f} has covariance L_f L_f^T = K_f.
        return self.mean + torch.einsum("clm,nmc->nlc", self.cholesky, z)

    def extra_repr(self) -> str:
        return (
            f"kernel={self.kernel!r}, mode={self.mode!r}, mean={self.mean_kind!r}, "
            + super().extra_repr()
        )


def _check_hyperparameter(
    name: str, value: float | Sequence[float] | None, *, allow_zero: bool
) -> None:
    """Raise unless ``value`` is ``None``, a float or a non-empty sequence of finite floats that
    are positive (non-negative with ``allow_zero``)."""
    if value is None:
        return
    values = [value] if isinstance(value, (int, float)) else value
    if isinstance(value, (bool, str)) or not isinstance(values, Sequence) or not values:
        raise TypeError(f"{name} must be a float, a sequence of floats or None; got {value!r}")
    for v in values:
        finite_nonnegative(name, v, positive=not allow_zero)
