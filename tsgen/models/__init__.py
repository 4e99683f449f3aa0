"""The methods as LightningModules; each only wires together parts from the layers below.

- :class:`TimeBridge`: diffusion bridges from a chosen prior to the data (generation,
  imputation, forecasting).
"""

from tsgen.models.ema import EMA
from tsgen.models.losses import default_fourier_weight, fourier_regression_loss
from tsgen.models.schedule import WarmupReduceOnPlateau
from tsgen.models.timebridge import NetworkFactory, TimeBridge

__all__ = [
    "EMA",
    "NetworkFactory",
    "TimeBridge",
    "WarmupReduceOnPlateau",
    "default_fourier_weight",
    "fourier_regression_loss",
]
