"""Evaluation of generated and completed series (metrics.md; user guide: docs/metrics.md).

- :func:`evaluate` (re-exported as ``tsgen.evaluate``): the papers' protocol or any list of
  metrics, returning a :class:`Report` (a table, JSON, pictures);
- :mod:`.context_fid` (with the TS2Vec encoder of :mod:`.ts2vec`), :mod:`.discriminative`,
  :mod:`.predictive` and :mod:`.correlational`: the protocol of TimeGAN / Diffusion-TS /
  TimeBridge, every repeat trained at once as one stacked model;
- :mod:`.distances`: per-feature marginal Wasserstein-1, autocorrelation and power-spectrum
  distances, RBF-kernel MMD;
- :mod:`.conditional`: imputation, forecasting and irregular tasks: masked MSE / MAE, the
  sample CRPS (also the fair, sample-count-free one), the predictive mean's MSE estimated
  without the sample count's variance, CSDI's normalised quantile CRPS, per-step accuracy;
- :mod:`.frechet`: Gaussian fits and the Frechet distance;
- :mod:`.intervals`: the papers' mean +- 95% t-interval over repeats;
- :mod:`.plots`: PCA / t-SNE overlays, sample grids, ACF curves (``viz`` extra).
"""

from tsgen.metrics.conditional import (
    DEFAULT_QUANTILES,
    crps_samples,
    masked_mae,
    masked_mse,
    normalized_quantile_crps,
    per_step_accuracy,
    predictive_mean_mse,
)
from tsgen.metrics.context_fid import context_fid
from tsgen.metrics.correlational import correlational_score, mean_cross_correlation
from tsgen.metrics.discriminative import discriminative_score
from tsgen.metrics.distances import (
    acf_distance,
    autocorrelation,
    marginal_wasserstein,
    mmd_rbf,
    power_spectrum,
    spectrum_distance,
)
from tsgen.metrics.evaluate import (
    METRICS,
    PAPER_METRICS,
    TRAINED_METRICS,
    evaluate,
    minmax_scale,
)
from tsgen.metrics.frechet import frechet_distance, frechet_distance_from_samples, gaussian_fit
from tsgen.metrics.intervals import format_interval, t_interval
from tsgen.metrics.predictive import predictive_score
from tsgen.metrics.report import MetricResult, Report

__all__ = [
    "DEFAULT_QUANTILES",
    "METRICS",
    "PAPER_METRICS",
    "TRAINED_METRICS",
    "MetricResult",
    "Report",
    "acf_distance",
    "autocorrelation",
    "context_fid",
    "correlational_score",
    "crps_samples",
    "discriminative_score",
    "evaluate",
    "format_interval",
    "frechet_distance",
    "frechet_distance_from_samples",
    "gaussian_fit",
    "marginal_wasserstein",
    "masked_mae",
    "masked_mse",
    "mean_cross_correlation",
    "minmax_scale",
    "mmd_rbf",
    "normalized_quantile_crps",
    "per_step_accuracy",
    "power_spectrum",
    "predictive_mean_mse",
    "predictive_score",
    "spectrum_distance",
    "t_interval",
]
