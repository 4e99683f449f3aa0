"""Evaluation of generated and completed series (metrics.md).

This first part holds the metrics that need no trained encoder or classifier:

- :mod:`.distances`: real vs generated windows: per-feature marginal Wasserstein-1,
  autocorrelation and power-spectrum distances, RBF-kernel MMD;
- :mod:`.conditional`: imputation and forecasting: masked MSE / MAE, the sample CRPS and CSDI's
  normalised quantile CRPS;
- :mod:`.frechet`: Gaussian fits and the Frechet distance (the last step of Context-FID).

The papers' protocol (Context-FID with TS2Vec, correlational, discriminative, predictive scores)
and ``evaluate`` come next (issue 4).
"""

from tsgen.metrics.conditional import (
    DEFAULT_QUANTILES,
    crps_samples,
    masked_mae,
    masked_mse,
    normalized_quantile_crps,
)
from tsgen.metrics.distances import (
    acf_distance,
    autocorrelation,
    marginal_wasserstein,
    mmd_rbf,
    power_spectrum,
    spectrum_distance,
)
from tsgen.metrics.frechet import frechet_distance, frechet_distance_from_samples, gaussian_fit

__all__ = [
    "DEFAULT_QUANTILES",
    "acf_distance",
    "autocorrelation",
    "crps_samples",
    "frechet_distance",
    "frechet_distance_from_samples",
    "gaussian_fit",
    "marginal_wasserstein",
    "masked_mae",
    "masked_mse",
    "mmd_rbf",
    "normalized_quantile_crps",
    "power_spectrum",
    "spectrum_distance",
]
