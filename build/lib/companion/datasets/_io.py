"""Read the shipped CSV exports into pandas with R's types and factor levels."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

import numpy as np
import pandas as pd

DATA_DIR = files("companion.datasets") / "data"  # the chapter's data sets, R's export
EXTRA_DIR = files("companion.datasets") / "extra"  # data sets beyond the chapter

_INTEGER = {"integer": np.int64}


@cache
def schema() -> dict:
    """File, size, column types and factor levels per data set: R's export of the
    chapter's data sets, then the data sets beyond the chapter."""
    out = {}
    for folder in (DATA_DIR, EXTRA_DIR):
        for name, spec in json.loads((folder / "schema.json").read_text(
                encoding="utf-8"))["datasets"].items():
            out[name] = {**spec, "path": folder / spec["file"]}
    return out


def read_table(name: str) -> pd.DataFrame:
    """Read data set ``name`` exactly as R exported it.

    Doubles are parsed by Python's correctly rounded ``float``, so they are bit-identical to
    R's values whatever the pandas version; R integers become int64; factors become pandas
    Categoricals in R's level order (ordered factors stay ordered).
    """
    spec = schema()[name]
    columns = spec["columns"]
    dtypes = {col: _INTEGER.get(info["type"], object) for col, info in columns.items()}
    with spec["path"].open("rb") as handle:
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
