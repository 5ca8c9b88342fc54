"""Read the shipped CSV exports into pandas with R's types and factor levels."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

import numpy as np
import pandas as pd

DATA_DIR = files("companion.datasets") / "data"

_INTEGER = {"integer": np.int64}


@cache
def schema() -> dict:
    """The R export's schema: file, size, column types and factor levels per data set."""
    return json.loads((DATA_DIR / "schema.json").read_text(encoding="utf-8"))["datasets"]


def read_table(name: str) -> pd.DataFrame:
    """Read data set ``name`` exactly as R exported it.

    Doubles are parsed by Python's correctly rounded ``float``, so they are bit-identical to
    R's values whatever the pandas version; R integers become int64; factors become pandas
    Categoricals in R's level order (ordered factors stay ordered).
    """
    spec = schema()[name]
    columns = spec["columns"]
    dtypes = {col: _INTEGER.get(info["type"], object) for col, info in columns.items()}
    with (DATA_DIR / spec["file"]).open("rb") as handle:
        frame = pd.read_csv(handle, dtype=dtypes, keep_default_na=False)
    for col, info in columns.items():
        if info["type"] == "double":
            frame[col] = np.fromiter(map(float, frame[col]), np.float64, len(frame))
        elif "levels" in info:
            kind = pd.CategoricalDtype(info["levels"], ordered=info["type"] == "ordered factor")
            frame[col] = frame[col].astype(kind)
            if frame[col].isna().any():
                raise RuntimeError(f"{spec['file']}: column {col} has values outside its levels")
    if frame.shape != (spec["nrow"], spec["ncol"]) or list(frame.columns) != list(columns):
        raise RuntimeError(
            f"the shipped file {spec['file']} does not match its schema; "
            "reinstall the companion package"
        )
    return frame
