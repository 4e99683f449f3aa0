"""Loading a user's own series: CSV, NumPy ``.npy``, a NumPy array, a torch tensor or a pandas
DataFrame, validated into one float64 array ``(rows, features)`` with column names.

Validation happens here, at the boundary, so that bad data fails with a message that names the
column instead of an opaque error deep inside training.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Mapping, Sequence
from numbers import Integral
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["load_series", "parse_csv", "select_columns", "validate_series"]

# Cells read as missing (NaN) in a CSV, compared in lower case.
_MISSING_CELLS = frozenset({"", "nan", "na", "null"})

_DEFAULT_ARG_NAMES = {"source": "source", "columns": "columns", "allow_missing": "allow_missing"}


def _parse_cell(cell: str) -> float | None:
    """A CSV cell as a float (NaN when missing), or ``None`` when it is not a number."""
    text = cell.strip()
    if text.lower() in _MISSING_CELLS:
        return float("nan")
    try:
        return float(text)
    except ValueError:
        return None


def parse_csv(
    text: str, where: str, columns: Sequence[str | int] | None = None, columns_arg: str = "columns"
) -> tuple[np.ndarray, list[str]]:
    """Parse CSV text into a float64 array ``(rows, features)`` and its column names.

    The first row is the header unless every cell of it is a number, in which case the columns
    are named ``"0"``, ``"1"``, ... Empty cells and ``nan``/``NA``/``null`` are NaN.

    Args:
        text: the whole CSV file.
        where: how error messages refer to the file, e.g. ``"data.path 'prices.csv'"``.
        columns: the columns to keep (names or positions); ``None`` keeps all. Only kept columns
            must be numeric.
        columns_arg: how error messages refer to ``columns`` (the hint for non-numeric columns).
    """
    # Blank lines are skipped, so each row keeps the file's line number for the messages.
    reader = csv.reader(io.StringIO(text))
    numbered = [(reader.line_num, row) for row in reader if row]
    if not numbered:
        raise ValueError(f"{where}: the file is empty; expected a header and rows of numbers")
    first = numbered[0][1]
    has_header = any(_parse_cell(cell) is None for cell in first)
    names = [cell.strip() for cell in first] if has_header else [str(i) for i in range(len(first))]
    records = numbered[1:] if has_header else numbered
    lines, body = [line for line, _ in records], [row for _, row in records]
    for line, row in zip(lines, body, strict=True):
        if len(row) != len(names):
            raise ValueError(
                f"{where}: line {line} has {len(row)} fields but the file has {len(names)} columns"
            )
    keep = select_columns(names, columns, where, columns_arg)
    data = np.empty((len(body), len(keep)), dtype=np.float64)
    for j, k in enumerate(keep):
        for i, (line, row) in enumerate(zip(lines, body, strict=True)):
            value = _parse_cell(row[k])
            if value is None:
                raise ValueError(
                    f"{where}: column {names[k]!r} is not numeric; drop it or pass "
                    f"{columns_arg}=[...] (line {line} holds {row[k].strip()!r})"
                )
            data[i, j] = value
    return data, [names[k] for k in keep]


def select_columns(
    names: list[str], columns: Sequence[str | int] | None, where: str, columns_arg: str
) -> list[int]:
    """Positions of ``columns`` (names or integer positions) among ``names``."""
    if columns is None:
        return list(range(len(names)))
    if isinstance(columns, str) or not isinstance(columns, Sequence) or not columns:
        raise TypeError(
            f"{columns_arg} must be a non-empty list of column names or positions; got {columns!r}"
        )
    positions = []
    for column in columns:
        position = isinstance(column, Integral) and not isinstance(column, bool)
        if position and 0 <= column < len(names):
            positions.append(int(column))
        elif isinstance(column, str) and column in names:
            positions.append(names.index(column))
        else:
            raise ValueError(
                f"{where}: {columns_arg} names {column!r}, which is not a column; the columns "
                f"are {names} (positions 0 to {len(names) - 1})"
            )
    return positions


def validate_series(
    data: np.ndarray,
    names: list[str],
    where: str,
    allow_missing: bool = False,
    allow_missing_arg: str = "allow_missing",
) -> None:
    """Check a float array ``(rows, features)``: 2-D, not empty, finite, NaN only if allowed, and
    no constant column (a constant feature cannot be min-max scaled).

    Raises:
        ValueError: naming the offending column(s) and what was found.
    """
    if data.ndim != 2:
        hint = " (a single feature: reshape it to (rows, 1))" if data.ndim == 1 else ""
        raise ValueError(
            f"{where}: expected a 2-D series (rows, features){hint}; got shape {data.shape}"
        )
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise ValueError(f"{where}: the series is empty (shape {data.shape})")
    for j, name in enumerate(names):
        column = data[:, j]
        if np.isinf(column).any():
            row = int(np.flatnonzero(np.isinf(column))[0])
            raise ValueError(f"{where}: column {name!r} holds inf (first at row {row})")
        nan = np.isnan(column)
        if nan.any() and not allow_missing:
            raise ValueError(
                f"{where}: column {name!r} holds {int(nan.sum())} NaN value(s) (first at row "
                f"{int(np.flatnonzero(nan)[0])}); remove them, or pass {allow_missing_arg}=True "
                "to treat NaN as missing"
            )
        if nan.all():
            raise ValueError(f"{where}: column {name!r} has no observed (non-NaN) values")
    observed = np.where(np.isnan(data), np.nanmax(data, axis=0), data)
    with np.errstate(over="ignore"):
        spans = np.ptp(observed, axis=0)
    overflow = [name for name, span in zip(names, spans, strict=True) if np.isinf(span)]
    if overflow:
        raise ValueError(
            f"{where}: column(s) {overflow} span more than float64 can hold (max - min "
            "overflows); rescale them"
        )
    constant = [name for name, span in zip(names, spans, strict=True) if span == 0]
    if constant:
        raise ValueError(
            f"{where}: constant column(s) {constant} cannot be min-max scaled; drop them from "
            "the data or the column selection"
        )


def load_series(
    source: str | PathLike | np.ndarray | Tensor | Any,
    columns: Sequence[str | int] | None = None,
    allow_missing: bool = False,
    *,
    arg_names: Mapping[str, str] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Load a user's series as a float64 array ``(rows, features)`` and its column names.

    Args:
        source: a path to a ``.csv`` (header row optional, see :func:`parse_csv`) or ``.npy``
            file, a NumPy array, a torch tensor, or a pandas DataFrame, all ``(rows, features)``
            with rows in time order. Columns of arrays and tensors are named ``"0"``, ``"1"``, ...
        columns: the columns to keep, by name or position; ``None`` keeps all.
        allow_missing: NaN marks a missing value instead of being an error.
        arg_names: how error messages refer to ``source``, ``columns`` and ``allow_missing``
            (a caller such as the datamodule passes its own argument names, e.g. ``data.path``).

    Raises:
        TypeError: for an unsupported ``source`` type or a non-numeric array.
        ValueError: for an unknown file extension, a non-numeric column, inf, NaN (unless
            ``allow_missing``), a constant column, a shape other than 2-D, or empty data.
    """
    arg = {**_DEFAULT_ARG_NAMES, **(arg_names or {})}
    if isinstance(source, str | PathLike):
        path = Path(source)
        where = f"{arg['source']} '{source}'"
        suffix = path.suffix.lower()
        if suffix == ".csv":
            data, names = parse_csv(
                path.read_text(encoding="utf-8-sig"), where, columns, arg["columns"]
            )
            validate_series(data, names, where, allow_missing, arg["allow_missing"])
            return data, names
        if suffix != ".npy":
            raise ValueError(
                f"{where}: unknown file extension {path.suffix!r}; expected .csv or .npy"
            )
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as error:  # an object array: pickled Python objects, not numbers
            raise TypeError(f"{where}: expected a numeric array; {error}") from None
        return _from_array(array, where, columns, allow_missing, arg)
    if isinstance(source, Tensor):
        if source.is_complex() or source.dtype == torch.bool:
            raise TypeError(f"{arg['source']}: expected a real numeric tensor; got {source.dtype}")
        array = source.detach().to("cpu", torch.float64).numpy()
        return _from_array(array, f"{arg['source']} (tensor)", columns, allow_missing, arg)
    if isinstance(source, np.ndarray):
        return _from_array(source, f"{arg['source']} (array)", columns, allow_missing, arg)
    # A DataFrame can only exist if pandas was imported already: look there, never import it.
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(source, pandas.DataFrame):
        return _from_frame(source, pandas, columns, allow_missing, arg)
    raise TypeError(
        f"{arg['source']} must be a path to a .csv or .npy file, a NumPy array, a torch tensor "
        f"or a pandas DataFrame; got {type(source).__name__}"
    )


def _from_array(
    array: np.ndarray,
    where: str,
    columns: Sequence[str | int] | None,
    allow_missing: bool,
    arg: Mapping[str, str],
) -> tuple[np.ndarray, list[str]]:
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{where}: expected a real numeric array; got dtype {array.dtype}")
    data = array.astype(np.float64)
    names = [str(i) for i in range(data.shape[1])] if data.ndim == 2 else []
    if data.ndim == 2 and columns is not None:
        keep = select_columns(names, columns, where, arg["columns"])
        data, names = data[:, keep], [names[k] for k in keep]
    validate_series(data, names, where, allow_missing, arg["allow_missing"])
    return data, names


def _from_frame(
    frame: Any,
    pandas: Any,
    columns: Sequence[str | int] | None,
    allow_missing: bool,
    arg: Mapping[str, str],
) -> tuple[np.ndarray, list[str]]:
    where = f"{arg['source']} (DataFrame)"
    names = [str(c) for c in frame.columns]
    keep = select_columns(names, columns, where, arg["columns"])
    data = np.empty((len(frame), len(keep)), dtype=np.float64)
    for j, k in enumerate(keep):
        series = frame.iloc[:, k]
        if not pandas.api.types.is_numeric_dtype(series) or pandas.api.types.is_bool_dtype(series):
            raise ValueError(
                f"{where}: column {names[k]!r} is not numeric; drop it or pass "
                f"{arg['columns']}=[...] (its dtype is {series.dtype})"
            )
        data[:, j] = series.to_numpy(dtype=np.float64, na_value=np.nan)
    names = [names[k] for k in keep]
    validate_series(data, names, where, allow_missing, arg["allow_missing"])
    return data, names
