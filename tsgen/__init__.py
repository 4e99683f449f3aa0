"""tsgen: generative modelling of time series on one shared SDE layer.

The subpackages are imported lazily on first attribute access (``tsgen.sde``, ``tsgen.data``,
...), so ``import tsgen`` stays cheap and does not pull in Lightning.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("tsgen")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

_LAZY_SUBMODULES = ("api", "cli", "data", "metrics", "models", "nn", "priors", "sde")
# Public functions re-exported from submodules, imported on first use: name -> module.
_LAZY_FUNCTIONS = {"evaluate": "metrics", "load": "api"}

__all__ = ["__version__", *_LAZY_SUBMODULES, *_LAZY_FUNCTIONS]


def __getattr__(name: str) -> Any:
    if name in _LAZY_FUNCTIONS:
        function = getattr(importlib.import_module(f"{__name__}.{_LAZY_FUNCTIONS[name]}"), name)
        globals()[name] = function
        return function
    if name in _LAZY_SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
