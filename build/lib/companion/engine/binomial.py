"""Binomial responses written as R writes them, ``cbind(successes, failures)``: the
proportion of successes becomes the response and the number of trials its weight."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from companion.engine.design import complete_rows, response_vector
from companion.engine.families import Family
from companion.engine.formula import FormulaError, ParsedFormula, split_top_level

_CBIND = re.compile(r"^cbind\((.*)\)$", re.S)


def binomial_response(parsed: ParsedFormula, data: pd.DataFrame, fam: Family, weights):
    """``cbind(s, f)`` becomes the proportion ``s / (s + f)`` with ``s + f`` as weights."""
    match = _CBIND.match(parsed.response.strip())
    if not match:
        return parsed, data, weights
    if fam.name != "binomial":
        raise FormulaError(f"cbind(successes, failures) is a binomial response, not {fam.name}")
    parts = split_top_level(match.group(1), ",")
    if len(parts) != 2:
        raise FormulaError("cbind() needs two arguments: cbind(successes, failures)")
    screen = ParsedFormula(parsed.response, parsed.fixed, parsed.random, parsed.offsets)
    rows = complete_rows(screen, data, {"weights": weights})
    successes, failures = (response_vector(ParsedFormula(part, "1"), rows) for part in parts)
    if np.any(successes < 0) or np.any(failures < 0):
        raise ValueError("cbind(successes, failures): counts must be non-negative; "
                         "are there more successes than trials?")
    trials = successes + failures
    if np.any(trials == 0):
        raise ValueError("some rows have no trials (successes + failures = 0); drop them")
    prior = np.ones(len(rows)) if weights is None else \
        np.asarray(weights, dtype=float)[data.index.get_indexer(rows.index)]
    frame = rows.assign(**{".proportion": successes / trials})
    new = ParsedFormula(".proportion", parsed.fixed, parsed.random, parsed.offsets)
    return new, frame, trials * prior
