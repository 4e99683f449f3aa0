"""tsgen/data/datasets.py: shipped datasets (sizes, checksums, corruption) and generated sines."""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources

import numpy as np
import pytest

from tsgen.data import datasets
from tsgen.data.datasets import load_builtin, make_sines

BUILTIN = resources.files("tsgen.data").joinpath("builtin")


@pytest.mark.parametrize(
    ("name", "shape", "first", "last"),
    [("stocks", (3685, 6), "Open", "Volume"), ("etth1", (17420, 7), "HUFL", "OT")],
)
def test_builtin_sizes_and_columns(name: str, shape: tuple, first: str, last: str) -> None:
    data, names = load_builtin(name)
    assert data.shape == shape and data.dtype == np.float64
    assert names[0] == first and names[-1] == last and "date" not in names
    assert np.isfinite(data).all()


def test_shipped_files_match_sha256sums_and_are_reproducible_archives() -> None:
    sums = dict(
        reversed(line.split("  "))
        for line in BUILTIN.joinpath("SHA256SUMS").read_text().split("\n")
        if line
    )
    # The published digests of the unmodified files (shared/data/SHA256SUMS), written out here so
    # that regenerating both the archives and SHA256SUMS cannot pass unnoticed.
    assert sums == {
        "etth1.csv": "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066",
        "stocks.csv": "134b8a00eb4eefa3242dd7ae85144082da80dedf75a1a656d5d08f97cd95277a",
    }
    for filename, digest in sums.items():
        archive = BUILTIN.joinpath(f"{filename}.gz").read_bytes()
        assert archive[4:8] == b"\0\0\0\0"  # no timestamp: gzip -n
        assert hashlib.sha256(gzip.decompress(archive)).hexdigest() == digest
    readme = BUILTIN.joinpath("README.md").read_text()
    assert "CC BY-ND 4.0" in readme and "TimeGAN" in readme


def test_corrupted_builtin_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    read = datasets._resource_bytes

    def corrupted(filename: str) -> bytes:
        raw = read(filename)
        if not filename.endswith(".gz"):
            return raw
        text = bytearray(gzip.decompress(raw))
        text[-3] = ord("7") if text[-3] != ord("7") else ord("8")  # one digit changed
        return gzip.compress(bytes(text))

    monkeypatch.setattr(datasets, "_resource_bytes", corrupted)
    with pytest.raises(ValueError, match=r"built-in dataset 'stocks' is corrupted: SHA-256"):
        load_builtin("stocks")


@pytest.mark.parametrize(("name", "message"), [("sines", "use make_sines"), ("ettm1", "'ettm1'")])
def test_unknown_builtin(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_builtin(name)


def test_sines_shape_range_and_generating_law() -> None:
    x = make_sines()
    assert x.shape == (10000, 24, 5) and x.dtype == np.float64
    assert x.min() >= 0.0 and x.max() <= 1.0
    # y_j = sin(f j + p) obeys y_{j+1} + y_{j-1} = 2 cos(f) y_j with one f per window and feature,
    # and y_0 = sin(p): recover f and p and check them against U(0, 0.1).
    y = 2.0 * x - 1.0
    cos_f = (y[:, 2] + y[:, 0]) / (2.0 * y[:, 1])
    np.testing.assert_allclose(y[:, 2:] + y[:, :-2], 2.0 * cos_f[:, None] * y[:, 1:-1], atol=1e-9)
    freq, phase = np.arccos(np.clip(cos_f, -1, 1)), np.arcsin(y[:, 0])
    assert freq.max() <= 0.1 + 1e-6 and phase.min() >= 0.0 and phase.max() <= 0.1
    assert abs(freq.mean() - 0.05) < 0.002 and abs(phase.mean() - 0.05) < 0.002


def test_sines_reproducible_per_seed() -> None:
    a, b = make_sines(50, seed=3), make_sines(50, seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, make_sines(50, seed=4))
    assert make_sines(7, length=10, features=2).shape == (7, 10, 2)


@pytest.mark.parametrize("kwargs", [{"n_windows": 0}, {"length": 2.5}, {"features": -1}])
def test_sines_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=f"{next(iter(kwargs))} must be a positive integer"):
        make_sines(**kwargs)
