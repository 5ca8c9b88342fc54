"""R's reference results, read from the package's copy of the JSONs."""

import json
from functools import cache
from importlib.resources import files
from pathlib import Path

import numpy as np


@cache
def load(name: str) -> dict:
    """The JSON of one R fit, e.g. ``load("sleepstudy_lmer_reml")``."""
    return json.loads((files("companion") / "reference" / f"{name}.json").read_text())


LOCAL = Path(__file__).parent / "reference"


def load_local(name: str) -> dict:
    """A reference made with R beyond the chapter's fits, in ``tests/reference`` with the R
    script that wrote it, e.g. ``load_local("simdata_glmmPQL")``."""
    return json.loads((LOCAL / f"{name}.json").read_text())


def matrix(entry: dict) -> np.ndarray:
    """R's matrices are stored as rownames, colnames and values."""
    return np.asarray(entry["values"], dtype=float)


def values(entry: dict) -> np.ndarray:
    """A named vector of a reference JSON (e.g. ``fixef``) as an array, in its order."""
    return np.array(list(entry.values()), dtype=float)
