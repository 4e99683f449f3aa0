"""Evaluation of generated and completed series (metrics.md).

This first part holds the metrics that need no trained encoder or classifier:

- :mod:`.distances`: real vs generated windows: per-feature marginal Wasserstein-1,
  autocorrelation and power-spectrum distances, RBF-kernel MMD;
- :mod:`.conditional`: imputation and forecasting: masked MSE / MAE, the sample CRPS and CSDI's
  normalised quantile CRPS;
- :mod:`.frechet`: Gaussian fits and the Frechet distance (the last step of Context-FID);
- :mod:`.correlational`: the papers' correlational score, all repeats at once;
- :mod:`.intervals`: the papers' mean +- 95% t-interval over repeats.

Context-FID (TS2Vec), the discriminative and predictive scores and ``evaluate`` come next
(issue 4).
"""

from tsgen.metrics.conditional import (
    DEFAULT_QUANTILES,
    crps_samples,
    masked_mae,
    masked_mse,
    normalized_quantile_crps,
)
from tsgen.metrics.correlational import correlational_score, mean_cross_correlation
from tsgen.metrics.distances import (
    acf_distance,
    autocorrelation,
    marginal_wasserstein,
    mmd_rbf,
    power_spectrum,
    spectrum_distance,
)
from tsgen.metrics.frechet import frechet_distance, frechet_distance_from_samples, gaussian_fit
from tsgen.metrics.intervals import format_interval, t_interval

__all__ = [
    "DEFAULT_QUANTILES",
    "acf_distance",
    "autocorrelation",
    "correlational_score",
    "crps_samples",
    "format_interval",
    "frechet_distance",
    "frechet_distance_from_samples",
    "gaussian_fit",
    "marginal_wasserstein",
    "masked_mae",
    "masked_mse",
    "mean_cross_correlation",
    "mmd_rbf",
    "normalized_quantile_crps",
    "power_spectrum",
    "spectrum_distance",
    "t_interval",
]
