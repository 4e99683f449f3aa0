"""Built-in datasets that work offline: ``stocks`` and ``etth1`` (shipped inside the package,
checksum-verified on every load) and the generated ``sines``.

Provenance and licences of the shipped files: ``tsgen/data/builtin/README.md``.
"""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources

import numpy as np

from tsgen._validation import check_int
from tsgen.data.series import parse_csv

__all__ = ["BUILTIN_DATASETS", "PROTOCOL_UNITS_DATASETS", "load_builtin", "make_sines"]

# name -> (file in tsgen/data/builtin, columns to drop). ETTh1's ``date`` is implied by the row
# order (hourly, no gaps), so it is dropped rather than parsed.
_FILES = {"stocks": ("stocks.csv", ()), "etth1": ("etth1.csv", ("date",))}

BUILTIN_DATASETS = ("sines", *_FILES)
"""Every name accepted as a built-in dataset (``sines`` is generated, see :func:`make_sines`)."""

PROTOCOL_UNITS_DATASETS = frozenset({"sines"})
"""Built-in datasets that the papers' protocol scores in their own units rather than min-max
rescaled by the real windows: TimeGAN's sines lie in ``[0.5, 1]`` and are scored as they are
(rescaling them to ``[0, 1]`` doubles every error). ``tsgen evaluate`` and
``scripts/reproduce_unconditional.py`` read this set."""


def _resource_bytes(filename: str) -> bytes:
    """The raw bytes of one file shipped in ``tsgen/data/builtin``."""
    return resources.files("tsgen.data").joinpath("builtin", filename).read_bytes()


def _expected_sha256(filename: str) -> str:
    """The checksum that ``SHA256SUMS`` records for the uncompressed ``filename``."""
    for line in _resource_bytes("SHA256SUMS").decode("ascii").splitlines():
        digest, _, name = line.strip().partition("  ")
        if name == filename:
            return digest
    raise ValueError(f"tsgen/data/builtin/SHA256SUMS has no checksum for {filename!r}")


def load_builtin(name: str) -> tuple[np.ndarray, list[str]]:
    """One shipped series as a float64 array ``(rows, features)`` and its column names.

    ``stocks``: 3,685 x 6 (GOOG daily prices and volume); ``etth1``: 17,420 x 7 (``date``
    dropped). The decompressed bytes are checked against ``SHA256SUMS`` before parsing.

    Raises:
        ValueError: for an unknown ``name`` (``sines`` is generated: use :func:`make_sines`) or
            when the shipped file's checksum does not match (a corrupted installation).
    """
    if name not in _FILES:
        raise ValueError(
            f"name must be one of the shipped datasets {sorted(_FILES)}; got {name!r}"
            + (" (sines is generated: use make_sines)" if name == "sines" else "")
        )
    filename, drop = _FILES[name]
    raw = gzip.decompress(_resource_bytes(f"{filename}.gz"))
    digest, expected = hashlib.sha256(raw).hexdigest(), _expected_sha256(filename)
    if digest != expected:
        raise ValueError(
            f"built-in dataset {name!r} is corrupted: SHA-256 of the decompressed {filename} is "
            f"{digest}, expected {expected}; reinstall tsgen"
        )
    header = raw.split(b"\n", 1)[0].decode("utf-8").strip().split(",")
    keep = [column for column in header if column not in drop]
    return parse_csv(raw.decode("utf-8"), f"built-in dataset {name!r}", keep)


def make_sines(
    n_windows: int = 10000, length: int = 24, features: int = 5, seed: int = 0
) -> np.ndarray:
    """The Sines benchmark: ``(n_windows, length, features)`` float64 windows in ``[0, 1]``.

    ``x_f(j) = sin(freq_f * j + phase_f)`` for ``j = 0, ..., length - 1``, with ``freq_f`` and
    ``phase_f`` drawn from U(0, 0.1) independently per window and feature, then mapped from
    [-1, 1] to [0, 1] by ``(x + 1) / 2``. The same ``seed`` gives the same windows.
    """
    for arg, value in (("n_windows", n_windows), ("length", length), ("features", features)):
        check_int(arg, value)
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.0, 0.1, size=(n_windows, 1, features))
    phase = rng.uniform(0.0, 0.1, size=(n_windows, 1, features))
    steps = np.arange(length, dtype=np.float64)[None, :, None]
    return (np.sin(freq * steps + phase) + 1.0) / 2.0
