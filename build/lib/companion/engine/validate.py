"""Checks of a model's data that every fitter shares.

A fitter calls :func:`check_model_data` on the columns its model uses before building
anything: the data must be a DataFrame with at least one row, and no numeric column the
model uses may hold ``inf`` or ``-inf`` (R's model frame refuses them as well; a fit that
ran on would be meaningless). Values computed from the columns (``log(o)`` of a zero, a
response expression) are checked with :func:`require_finite`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd


def require_data_frame(data) -> None:
    """A pandas DataFrame with at least one row."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    if len(data) == 0:
        raise ValueError("the data frame has no rows: there is nothing to fit (was it "
                         "filtered to nothing? check len(data) before fitting)")


def infinite_rows(values) -> int:
    """How many entries of a numeric array or column are ``inf`` or ``-inf``."""
    array = np.asarray(values)
    if array.dtype.kind not in "fc":
        return 0
    return int(np.isinf(array).sum())


def require_finite_columns(data: pd.DataFrame, columns: Iterable[str]) -> None:
    """No ``inf`` or ``-inf`` in the numeric ``columns`` of ``data``."""
    for name in dict.fromkeys(columns):
        column = data[name]
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        bad = infinite_rows(column.to_numpy())
        if bad:
            raise ValueError(f"column {name!r} has an infinite value (inf or -inf) in {bad} "
                             f"of {len(data)} rows; a model cannot use them: drop or "
                             "recode those rows first")


def require_finite(values, what: str) -> None:
    """No ``inf``, ``-inf`` or NaN in values computed for the model (``what`` names them)."""
    array = np.asarray(values, dtype=float)
    bad = ~np.isfinite(array)
    if bad.any():
        rows = int(bad.any(axis=tuple(range(1, array.ndim))).sum()) if array.ndim > 1 \
            else int(bad.sum())
        raise ValueError(f"{what} is not finite (inf, -inf or NaN) in {rows} of "
                         f"{len(array)} rows, e.g. the log of a zero; drop or recode those "
                         "rows first")


def columns_named_in(text: str, data: pd.DataFrame) -> list[str]:
    """The columns of ``data`` whose names appear in a formula's ``text``."""
    names = set(re.findall(r"[A-Za-z_.][A-Za-z0-9_.]*", text))
    return [column for column in data.columns if str(column) in names]


def check_model_data(data, columns: Iterable[str] = (), formula: str | None = None) -> None:
    """A DataFrame with rows whose numeric ``columns`` (and the columns ``formula`` names)
    hold no infinite value."""
    require_data_frame(data)
    columns = list(columns)
    if formula is not None:
        columns += columns_named_in(formula, data)
    require_finite_columns(data, columns)
