"""The models of tests/reference/anova_types (lmerTest 3.1.3's hypothesis matrices and
anova tables, made by its make_anova_types.R from the corpus's data), fitted once each."""

import json
import warnings
from functools import cache
from pathlib import Path

import pandas as pd

from companion.engine.design import RankDeficiencyWarning
import companion
from corpus import load_data

REFERENCE = Path(__file__).resolve().parent / "reference" / "anova_types"
MODELS = sorted(p.stem for p in REFERENCE.glob("*.json"))
TYPES = ("1", "2", "3")


def _contrasts(reference: dict) -> dict:
    """R's contrasts argument as companion takes it: names, or matrices as DataFrames."""
    return {name: kind if isinstance(kind, str) else pd.DataFrame(kind)
            for name, kind in reference["contrasts"].items()}


@cache
def reference_and_fit(name: str):
    """A model's lmerTest reference and companion's fit of the same formula and data."""
    reference = json.loads((REFERENCE / f"{name}.json").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankDeficiencyWarning)  # the aliased model's
        fit = companion.lmer(reference["formula"], load_data(reference["data"]),
                             reml=reference["REML"], contrasts=_contrasts(reference))
    return reference, fit
