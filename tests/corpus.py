"""The corpus beyond the chapter (``tests/reference/corpus``): public data sets and
simulated designs exported from R, and lme4's fits of them (see its README.md)."""

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

CORPUS = Path(__file__).resolve().parent / "reference" / "corpus"


@cache
def schema() -> dict:
    return json.loads((CORPUS / "schema.json").read_text())["datasets"]


def load_data(name: str) -> pd.DataFrame:
    """A corpus data set with R's column types: factors and ordered factors as pandas
    Categoricals in R's level order."""
    columns = schema()[name]["columns"]
    factors = {c for c, v in columns.items() if v["type"] in ("factor", "ordered")}
    data = pd.read_csv(CORPUS / schema()[name]["file"], dtype={c: str for c in factors})
    for column in factors:
        info = columns[column]
        data[column] = pd.Categorical(data[column], categories=info["levels"],
                                      ordered=info["type"] == "ordered")
    return data


def load_fit(name: str) -> dict:
    """lme4's fit ``name`` (the JSON's stem)."""
    return json.loads((CORPUS / f"{name}.json").read_text())


def fit_names() -> list[str]:
    return sorted(p.stem for p in CORPUS.glob("*.json") if p.stem != "schema")


def data_name(fit: dict) -> str:
    """The data set a fit used, by its CSV file."""
    return next(name for name, info in schema().items() if info["file"] == fit["data"])


# R's contrasts = list(...) of the corpus's calls, written as companion takes them
CONTRASTS = {
    "Machines_reml_contrast_matrix": {
        "Machine": pd.DataFrame({"lin": [-1, 0, 1], "quad": [1, -2, 1]})},
    "bacteria_bern_contrast_matrix": {  # R's matrix(c(2, -1, -1, 0, 1, -1), 3, 2)
        "trt": np.array([[2, 0], [-1, 1], [-1, -1]])},
}


def fit_arguments(fit: dict) -> dict:
    """The keyword arguments besides formula and data that reproduce R's call."""
    return {"contrasts": CONTRASTS[fit["name"]]} if fit["name"] in CONTRASTS else {}
