"""Metrics for conditional tasks (imputation, forecasting, irregular series): point errors and
probabilistic scores restricted to the entries being predicted.

Mask convention (shared by every function here): ``mask`` is a boolean tensor of the target's
shape ``(B, L, C)`` and ``mask[b, l, c]`` is **True where the entry is scored**, i.e. the
unobserved (held-out) entries the model had to fill in. Observed, conditioning entries must be
False. An optional ``valid`` mask, ``(B, L)`` or ``(B, L, C)``, marks the real (non-padding)
time steps of variable-length series; an entry is scored only where ``mask & valid``. Values of
``target``, ``prediction`` and ``samples`` outside the scored entries are never read into the
result, so they may be NaN (missing ground truth, padding).

All functions are vectorised, keep the inputs' device, and return a 0-d tensor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "DEFAULT_QUANTILES",
    "crps_samples",
    "masked_mae",
    "masked_mse",
    "normalized_quantile_crps",
    "per_step_accuracy",
    "predictive_mean_mse",
]

#: The 19 quantile levels 0.05, 0.10, ..., 0.95 of CSDI's evaluation (Tashiro et al. 2021).
DEFAULT_QUANTILES: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _check_float(name: str, x: object) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got dtype {x.dtype}")
    return x


def _scored_entries(
    target: Tensor, mask: object, valid: Tensor | None, device: torch.device
) -> Tensor:
    """The boolean ``(B, L, C)`` tensor of scored entries, ``mask & valid``, after checking
    shapes and dtypes; raises if no entry is scored."""
    if target.dim() != 3:
        raise ValueError(f"target must have shape (B, L, C); got {tuple(target.shape)}")
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise TypeError(f"mask must be a bool tensor (True = entry is scored); got {got}")
    if mask.shape != target.shape:
        raise ValueError(
            f"mask shape {tuple(mask.shape)} does not match target shape {tuple(target.shape)}"
        )
    scored = mask.to(device)
    if valid is not None:
        if not isinstance(valid, Tensor) or valid.dtype != torch.bool:
            got = valid.dtype if isinstance(valid, Tensor) else type(valid).__name__
            raise TypeError(f"valid must be a bool tensor (True = real time step); got {got}")
        if valid.shape == target.shape[:2]:
            valid = valid.unsqueeze(-1)  # (B, L) -> (B, L, 1): padding covers every channel
        elif valid.shape != target.shape:
            raise ValueError(
                f"valid shape {tuple(valid.shape)} must be (B, L) = {tuple(target.shape[:2])} "
                f"or the target shape {tuple(target.shape)}"
            )
        scored = scored & valid.to(device)
    if not bool(scored.any()):
        raise ValueError("no entry is scored: mask (& valid) is False everywhere")
    return scored


def _check_finite_where_scored(name: str, x: Tensor, scored: Tensor) -> None:
    # ``scored`` broadcasts against ``x``: (B, L, C) for point inputs, (B, 1, L, C) for samples.
    if not bool(torch.isfinite(x).logical_or(~scored).all()):
        raise ValueError(f"{name} has non-finite values at scored entries")


def _point_inputs(
    prediction: object, target: object, mask: object, valid: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    prediction = _check_float("prediction", prediction)
    target = _check_float("target", target)
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction shape {tuple(prediction.shape)} does not match "
            f"target shape {tuple(target.shape)}"
        )
    scored = _scored_entries(target, mask, valid, prediction.device)
    target = target.to(prediction.device)
    _check_finite_where_scored("prediction", prediction, scored)
    _check_finite_where_scored("target", target, scored)
    return prediction, target, scored


def _sample_inputs(
    samples: object, target: object, mask: object, valid: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """``(samples, target, scored)`` checked, with the samples and the target zeroed outside
    the scored entries: non-finite values there (missing ground truth, padding) would poison
    a sort, a quantile or a sum over samples of their entry, and no inf - inf arithmetic
    should happen even where the result is discarded."""
    samples = _check_float("samples", samples)
    target = _check_float("target", target)
    if samples.dim() != 4 or samples.shape[:1] + samples.shape[2:] != target.shape:
        raise ValueError(
            f"samples shape {tuple(samples.shape)} must be (B, S, L, C) with (B, L, C) equal to "
            f"the target shape {tuple(target.shape)}"
        )
    if samples.shape[1] < 1:
        raise ValueError("samples must hold at least one sample per series (S >= 1)")
    scored = _scored_entries(target, mask, valid, samples.device)
    target = target.to(samples.device)
    _check_finite_where_scored("samples", samples, scored.unsqueeze(1))
    _check_finite_where_scored("target", target, scored)
    samples = torch.where(scored.unsqueeze(1), samples, torch.zeros_like(samples))
    target = torch.where(scored, target, torch.zeros_like(target))
    return samples, target, scored


def _masked_mean(values: Tensor, scored: Tensor) -> Tensor:
    # torch.where, not ``values * scored``: NaN * 0 is NaN, so a NaN outside the scored entries
    # (missing ground truth, padding) would otherwise leak into the sum.
    zero = torch.zeros((), dtype=values.dtype, device=values.device)
    return torch.where(scored, values, zero).sum() / scored.sum()


# --------------------------------------------------------------------------------------------
# Point metrics
# --------------------------------------------------------------------------------------------


def masked_mse(
    prediction: Tensor, target: Tensor, mask: Tensor, valid: Tensor | None = None
) -> Tensor:
    """Mean squared error over the scored entries.

    Args:
        prediction: ``(B, L, C)`` point prediction (e.g. the median of the samples).
        target: ``(B, L, C)`` ground truth; may be NaN outside the scored entries.
        mask: ``(B, L, C)`` bool, True where the entry is scored (the unobserved entries).
        valid: optional ``(B, L)`` or ``(B, L, C)`` bool, False on padding; restricts ``mask``.

    Returns:
        0-d tensor: ``sum_{scored} (prediction - target)^2 / #scored``.
    """
    prediction, target, scored = _point_inputs(prediction, target, mask, valid)
    return _masked_mean((prediction - target).square(), scored)


def masked_mae(
    prediction: Tensor, target: Tensor, mask: Tensor, valid: Tensor | None = None
) -> Tensor:
    """Mean absolute error over the scored entries; arguments as in :func:`masked_mse`.

    Returns:
        0-d tensor: ``sum_{scored} |prediction - target| / #scored``.
    """
    prediction, target, scored = _point_inputs(prediction, target, mask, valid)
    return _masked_mean((prediction - target).abs(), scored)


# --------------------------------------------------------------------------------------------
# Probabilistic metrics
# --------------------------------------------------------------------------------------------


def crps_samples(
    samples: Tensor,
    target: Tensor,
    mask: Tensor,
    valid: Tensor | None = None,
    *,
    fair: bool = False,
) -> Tensor:
    """Sample CRPS, averaged over the scored entries.

    Per entry, with samples ``X_1..X_S`` and observation ``y`` (Gneiting & Raftery 2007, eq. 21,
    the energy form of the CRPS)::

        CRPS = mean_s |X_s - y| - 0.5 * mean_{s, s'} |X_s - X_s'|

    where the second mean runs over all ``S^2`` ordered pairs *including* ``s = s'`` (the
    V-statistic). This is exactly the CRPS of the empirical distribution of the samples; as an
    estimate of the CRPS of the model's predictive distribution it is biased upwards by
    ``0.5 E|X - X'| / S`` (= ``sigma / (S sqrt(pi))`` for a Gaussian), which vanishes as S grows.
    Lower is better; with ``S = 1`` it reduces to the absolute error.

    ``fair=True`` takes the pair mean over the ``S (S - 1)`` pairs with ``s != s'`` instead (the
    U-statistic; Ferro 2014, the "fair" CRPS): for independent samples, an unbiased estimate
    of the predictive distribution's CRPS for any ``S >= 2``, so that scores drawn with
    different sample counts compare.

    The pairwise term is computed in ``O(S log S)`` per entry rather than with an ``S^2`` tensor:
    for sorted ``x_(1) <= ... <= x_(S)``, ``sum_{i<j} (x_(j) - x_(i)) = sum_j (2j - S - 1) x_(j)``
    (1-based ``j``), and ``sum_{s, s'} |X_s - X_s'|`` is twice that.

    Args:
        samples: ``(B, S, L, C)``, S draws from the model per series.
        target: ``(B, L, C)`` ground truth; may be NaN outside the scored entries.
        mask: ``(B, L, C)`` bool, True where the entry is scored (the unobserved entries).
        valid: optional ``(B, L)`` or ``(B, L, C)`` bool, False on padding; restricts ``mask``.
        fair: the unbiased U-statistic in place of the empirical distribution's CRPS; needs
            ``S >= 2``.

    Returns:
        0-d tensor, the mean CRPS over scored entries.
    """
    samples, target, scored = _sample_inputs(samples, target, mask, valid)
    S = samples.shape[1]
    if fair and S < 2:
        raise ValueError(f"fair=True needs at least 2 samples per series (S >= 2); got S = {S}")
    abs_err = (samples - target.unsqueeze(1)).abs().mean(dim=1)  # (B, L, C)
    x_sorted = samples.sort(dim=1).values
    j = torch.arange(1, S + 1, dtype=samples.dtype, device=samples.device)
    weights = (2.0 * j - S - 1.0).view(1, S, 1, 1)
    # 0.5 * mean_{s,s'} |X_s - X_s'| = 0.5 * (2 / S^2) * sum_j (2j - S - 1) x_(j); the fair
    # mean leaves out the S zero pairs s = s', so it divides by S (S - 1).
    pairs = S * (S - 1) if fair else S * S
    half_mean_pair = (weights * x_sorted).sum(dim=1) / pairs
    return _masked_mean(abs_err - half_mean_pair, scored)


def predictive_mean_mse(
    samples: Tensor, target: Tensor, mask: Tensor, valid: Tensor | None = None
) -> Tensor:
    """Unbiased estimate of the MSE of the predictive distribution's mean (for a conditional
    generative model, its posterior mean), over the scored entries.

    The MSE of the mean of ``S`` samples, :func:`masked_mse` of ``samples.mean(1)``, has the
    expectation ``(E[X] - y)^2 + Var[X] / S`` per entry: it charges a model with a wide
    predictive for drawing few samples. Subtracting the unbiased sample variance over ``S``
    removes that term::

        mean_{scored} [ (mean_s X_s - y)^2 - v / S ],  v = sum_s (X_s - mean_s X_s)^2 / (S - 1)

    whose expectation, for independent samples, is ``mean_{scored} (E[X] - y)^2`` for any
    ``S >= 2``. An estimate, not a squared norm: it can fall below zero when the predictive
    mean is close to the target and ``S`` is small. Lower is better.

    Args:
        samples: ``(B, S, L, C)``, ``S >= 2`` draws from the model per series.
        target: ``(B, L, C)`` ground truth; may be NaN outside the scored entries.
        mask: ``(B, L, C)`` bool, True where the entry is scored (the unobserved entries).
        valid: optional ``(B, L)`` or ``(B, L, C)`` bool, False on padding; restricts ``mask``.

    Returns:
        0-d tensor.
    """
    samples, target, scored = _sample_inputs(samples, target, mask, valid)
    S = samples.shape[1]
    if S < 2:
        raise ValueError(f"samples must hold at least 2 samples per series (S >= 2); got S = {S}")
    mean = samples.mean(dim=1)
    variance = samples.var(dim=1, correction=1)
    return _masked_mean((mean - target).square() - variance / S, scored)


def normalized_quantile_crps(
    samples: Tensor,
    target: Tensor,
    mask: Tensor,
    valid: Tensor | None = None,
    *,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
) -> Tensor:
    """CSDI's normalised quantile CRPS (Tashiro et al. 2021, ``calc_quantile_CRPS``).

    The CRPS is approximated by the quantile (pinball) loss averaged over ``quantiles``, summed
    (not averaged) over scored entries and normalised by ``sum_{scored} |target|`` so that
    datasets of different scales are comparable::

        mean_q [ 2 * sum_{scored} rho_q(y - F^{-1}(q)) / sum_{scored} |y| ],
        rho_q(u) = u * (q - 1{u < 0})

    where ``F^{-1}(q)`` is the empirical q-quantile of the samples (``torch.quantile``, linear
    interpolation, as in CSDI). Note CSDI's ``(target <= forecast)`` indicator: at ``y = F^{-1}``
    the loss is zero either way, so the ties do not matter. Lower is better.

    Args:
        samples: ``(B, S, L, C)``, S draws from the model per series.
        target: ``(B, L, C)`` ground truth; may be NaN outside the scored entries.
        mask: ``(B, L, C)`` bool, True where the entry is scored (the unobserved entries).
        valid: optional ``(B, L)`` or ``(B, L, C)`` bool, False on padding; restricts ``mask``
            (fourth, as in the other conditional metrics).
        quantiles: levels in ``(0, 1)``, by keyword; default the 19 levels 0.05, ..., 0.95.

    Returns:
        0-d tensor.
    """
    samples, target, scored = _sample_inputs(samples, target, mask, valid)
    levels = [float(q) for q in quantiles]
    if not levels or not all(0.0 < q < 1.0 for q in levels):
        raise ValueError(
            f"quantiles must be a non-empty sequence of levels in (0, 1); got {levels}"
        )
    denominator = target.abs().sum()
    if not bool(denominator > 0):
        raise ValueError("sum of |target| over the scored entries is 0; cannot normalise")

    q = torch.tensor(levels, dtype=samples.dtype, device=samples.device)
    forecast = torch.quantile(samples, q, dim=1)  # (Q, B, L, C)
    indicator = (target <= forecast).to(samples.dtype)
    # |(F^{-1}(q) - y) (1{y <= F^{-1}(q)} - q)| is the pinball loss rho_q(y - F^{-1}(q)).
    loss = ((forecast - target) * (indicator - q.view(-1, 1, 1, 1))).abs()
    per_level = 2.0 * torch.where(scored, loss, 0.0).sum(dim=(1, 2, 3)) / denominator
    return per_level.mean()


# --------------------------------------------------------------------------------------------
# Classification of irregular series
# --------------------------------------------------------------------------------------------


def per_step_accuracy(scores: Tensor, labels: Tensor, valid: Tensor | None = None) -> Tensor:
    """Per-time-step classification accuracy over the real (non-padding) steps.

    Args:
        scores: ``(B, L, K)`` class scores (logits or probabilities; the arg-max is the
            prediction) or ``(B, L)`` integer predicted labels.
        labels: ``(B, L)`` integer true labels; values at padding steps are never read into the
            result (they may be e.g. ``-1``).
        valid: ``(B, L)`` bool, True at real time steps; ``None``: every step is real.

    Returns:
        0-d float tensor: the fraction of valid steps whose predicted label equals the true one.
    """
    if not isinstance(labels, Tensor) or labels.dim() != 2 or labels.is_floating_point():
        got = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"labels must be an integer tensor of shape (B, L); got {got}")
    if not isinstance(scores, Tensor):
        raise TypeError(f"scores must be a torch.Tensor; got {type(scores).__name__}")
    if scores.dim() == 3 and scores.is_floating_point():
        predicted = scores.argmax(dim=-1)
    elif scores.dim() == 2 and not scores.is_floating_point():
        predicted = scores
    else:
        raise ValueError(
            "scores must be (B, L, K) floating class scores or (B, L) integer labels; got "
            f"shape {tuple(scores.shape)} of dtype {scores.dtype}"
        )
    if predicted.shape != labels.shape:
        raise ValueError(
            f"scores give predictions of shape {tuple(predicted.shape)} but labels have shape "
            f"{tuple(labels.shape)}"
        )
    if valid is None:
        valid = torch.ones_like(labels, dtype=torch.bool)
    elif not isinstance(valid, Tensor) or valid.dtype != torch.bool or valid.shape != labels.shape:
        got = (valid.dtype, tuple(valid.shape)) if isinstance(valid, Tensor) else type(valid)
        raise ValueError(f"valid must be a bool tensor of the labels' shape (B, L); got {got}")
    valid = valid.to(predicted.device)
    if not bool(valid.any()):
        raise ValueError("valid is False everywhere: no time step to score")
    correct = (predicted == labels.to(predicted.device)) & valid
    return correct.sum().to(torch.get_default_dtype()) / valid.sum()
