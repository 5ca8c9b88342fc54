"""R's reference results, read from the package's copy of the JSONs."""

import json
from functools import cache
from importlib.resources import files

import numpy as np


@cache
def load(name: str) -> dict:
    """The JSON of one R fit, e.g. ``load("sleepstudy_lmer_reml")``."""
    return json.loads((files("companion") / "reference" / f"{name}.json").read_text())


def matrix(entry: dict) -> np.ndarray:
    """R's matrices are stored as rownames, colnames and values."""
    return np.asarray(entry["values"], dtype=float)
