"""tsgen/data/series.py: a user's series from CSV, .npy, arrays, tensors and DataFrames, and the
clear error for every class of bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tsgen.data.series import load_series

GOOD = np.array([[1.0, 10.0], [2.0, 30.0], [4.0, 20.0]])


def write_csv(name: str, lines: list[str]) -> str:
    Path(name).write_text("\n".join(lines) + "\n")
    return name


def test_csv_with_header_and_column_selection() -> None:
    path = write_csv("prices.csv", ["Date,Open,Close", "2020-01-01,1,10", "2020-01-02,2,30"])
    data, names = load_series(path, columns=["Close", 1])
    assert names == ["Close", "Open"] and data.dtype == np.float64
    np.testing.assert_array_equal(data, [[10.0, 1.0], [30.0, 2.0]])


def test_csv_without_header_is_named_by_position() -> None:
    data, names = load_series(write_csv("plain.csv", ["1,10", "2,30", "4,20"]))
    assert names == ["0", "1"]
    np.testing.assert_array_equal(data, GOOD)


def test_npy_array_and_tensor_sources_agree() -> None:
    np.save("x.npy", GOOD.astype(np.float32))
    for source in ("x.npy", Path("x.npy"), GOOD, GOOD.astype(np.int64), torch.tensor(GOOD)):
        data, names = load_series(source)
        assert data.dtype == np.float64 and names == ["0", "1"]
        np.testing.assert_array_equal(data, GOOD)
    data, names = load_series(torch.tensor(GOOD), columns=[1])
    assert names == ["1"] and data.shape == (3, 1)


def test_pandas_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"when": ["a", "b", "c"], "x": [1, 2, 4], "y": [10.0, 30.0, 20.0]})
    with pytest.raises(ValueError, match=r"column 'when' is not numeric; drop it or pass columns="):
        load_series(frame)
    data, names = load_series(frame, columns=["x", "y"])
    assert names == ["x", "y"]
    np.testing.assert_array_equal(data, GOOD)


def test_non_numeric_column_message_names_the_column() -> None:
    path = write_csv("prices.csv", ["Date,Open", "2020-01-01,1", "2020-01-02,2"])
    with pytest.raises(
        ValueError, match=r"^source 'prices.csv': column 'Date' is not numeric; drop it or pass"
    ):
        load_series(path)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["a,b", "1,inf", "2,3"], r"column 'b' holds inf \(first at row 0\)"),
        (["a,b", "1,5", "2,5"], r"constant column\(s\) \['b'\]"),
        (["a,b", "1,", "2,3", "1,3"], r"column 'b' holds 1 NaN value\(s\).*allow_missing=True"),
        (["a,b"], r"the series is empty \(shape \(0, 2\)\)"),
        ([], "the file is empty"),
        (["a,b", "1,2", "3"], "line 3 has 1 fields but the file has 2 columns"),
        # Blank lines are skipped but counted: 'x' is on the file's line 5.
        (["a,b", "1,2", "", "", "3,x"], r"column 'b' is not numeric.*\(line 5 holds 'x'\)"),
        (["a,b", "1e308,1", "-1e308,2"], r"column\(s\) \['a'\] span more than float64"),
    ],
)
def test_bad_csv(lines: list[str], message: str) -> None:
    path = write_csv("bad.csv", lines)
    with pytest.raises(ValueError, match=message):
        load_series(path)


@pytest.mark.parametrize(
    ("source", "error", "message"),
    [
        (
            np.arange(5.0),
            ValueError,
            r"expected a 2-D series \(rows, features\) \(a single feature",
        ),
        (np.zeros((2, 3, 4)), ValueError, r"expected a 2-D series .*got shape \(2, 3, 4\)"),
        (np.zeros((0, 3)), ValueError, "the series is empty"),
        (np.zeros((3, 2), dtype=bool), TypeError, "expected a real numeric array; got dtype bool"),
        (torch.zeros(3, 2, dtype=torch.complex64), TypeError, "expected a real numeric tensor"),
        ([[1.0, 2.0], [3.0, 4.0]], TypeError, "source must be a path .* got list"),
        ("series.parquet", ValueError, r"unknown file extension '.parquet'; expected .csv or .npy"),
        (GOOD * [1.0, np.inf], ValueError, r"source \(array\): column '1' holds inf"),
    ],
)
def test_bad_sources(source: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        load_series(source)


@pytest.mark.parametrize("columns", [["Volume"], [5], "Open", []])
def test_bad_columns(columns: object) -> None:
    path = write_csv("p.csv", ["Open,Close", "1,2", "3,5"])
    with pytest.raises((ValueError, TypeError), match="columns"):
        load_series(path, columns=columns)


def test_nan_is_missing_only_when_allowed() -> None:
    x = GOOD.copy()
    x[1, 0] = np.nan
    with pytest.raises(ValueError, match="column '0' holds 1 NaN"):
        load_series(x)
    data, _ = load_series(x, allow_missing=True)
    assert np.isnan(data[1, 0]) and np.isfinite(np.delete(data.ravel(), 2)).all()
    path = write_csv("empty_column.csv", ["a,b", "1,nan", "2,NA", "3,"])
    with pytest.raises(ValueError, match="column 'b' has no observed"):
        load_series(path, allow_missing=True)


def test_caller_argument_names_appear_in_messages() -> None:
    path = write_csv("gaps.csv", ["a,b", "1,", "2,3", "4,5"])
    names = {"source": "data.path", "allow_missing": "data.treat_nan_as_missing"}
    with pytest.raises(
        ValueError, match=r"^data.path 'gaps.csv': .*data.treat_nan_as_missing=True"
    ):
        load_series(path, arg_names=names)


def test_an_object_npy_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "objects.npy"
    np.save(path, np.array([[1, "a"], [2, "b"]], dtype=object), allow_pickle=True)
    with pytest.raises(TypeError, match=r"source '.*objects.npy': expected a numeric array"):
        load_series(path)


def test_numpy_integer_column_positions() -> None:
    data, names = load_series(GOOD, columns=[np.int64(1)])
    assert names == ["1"] and data.shape == (GOOD.shape[0], 1)
