"""F tests of linear hypotheses ``L beta = 0`` about an LMM's fixed effects, with
lmerTest's denominator degrees of freedom (``contestMD``), and the single-model anova
tables built from them (``anova(fit, type = ..., ddf = ...)``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from companion.inference.kenward_roger import KenwardRogerAdjustment, kenward_roger
from companion.inference.satterthwaite import Satterthwaite, satterthwaite

DDF_METHODS = ("Satterthwaite", "Kenward-Roger")
COLUMNS = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]
RANK_TOLERANCE = np.sqrt(np.finfo(float).eps)  # lmerTest's, relative to L C L's largest
TYPE_NAMES = {1: "I", 2: "II", 3: "III"}


def ddf_parts(fit, ddf: str):
    """What ``ddf``'s tests need, computed once per fit."""
    if ddf == "Satterthwaite":
        return satterthwaite(fit)
    if ddf == "Kenward-Roger":
        return kenward_roger(fit)
    raise ValueError(f"ddf must be one of {DDF_METHODS}, not {ddf!r}")


def f_test(fit, L: np.ndarray, parts) -> list[float]:
    """One anova row for ``L beta = 0`` (``L``: hypotheses by coefficients): sum of
    squares, mean square, numerator and denominator df, F and its p-value."""
    L = np.atleast_2d(np.asarray(L, dtype=float))
    if L.shape[0] == 0:
        return [np.nan] * len(COLUMNS)
    beta = fit.fixef.to_numpy()
    sigma2 = fit.sigma**2
    if isinstance(parts, KenwardRogerAdjustment):
        q = np.linalg.matrix_rank(L)
        ddf, scaling = parts.ddf(L)
        estimate = L @ beta
        wald = estimate @ np.linalg.lstsq(L @ parts.adjusted @ L.T, estimate, rcond=None)[0]
        unscaled = wald / q
        return _row(unscaled * sigma2, q, ddf, unscaled * scaling)
    if not isinstance(parts, Satterthwaite):
        raise TypeError("parts must come from ddf_parts")
    values, vectors = np.linalg.eigh(L @ parts.vcov @ L.T)
    values, vectors = values[::-1], vectors[:, ::-1]
    keep = values > max(RANK_TOLERANCE * values[0], 0.0)
    q = int(keep.sum())
    if q == 0:
        return [np.nan] * len(COLUMNS)
    rotated = (vectors[:, keep].T @ L)
    F = float(np.sum((rotated @ beta) ** 2 / values[keep]) / q)
    nu = np.array([parts.ddf(row) for row in rotated])
    return _row(F * sigma2, q, _combined_ddf(nu), F)


def _combined_ddf(nu: np.ndarray, tol: float = 1e-8) -> float:
    """lmerTest's df of an F statistic from its rotated t statistics' df ``nu``."""
    if len(nu) == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(np.mean(nu))
    if np.any(nu <= 2):
        return 2.0
    E = np.sum(nu / (nu - 2))
    return float(2 * E / (E - len(nu)))


def _row(mean_square: float, q: int, ddf: float, F: float) -> list[float]:
    return [mean_square * q, mean_square, float(q), ddf, F, stats.f.sf(F, q, ddf)]


def anova_table(fit, type: int | str = 3,  # noqa: A002
                ddf: str = "Satterthwaite") -> pd.DataFrame:
    """lmerTest's ``anova(fit, type, ddf)``: one F test per fixed-effect term, its
    hypotheses from :func:`companion.inference.hypotheses.hypothesis_matrices`. The heading is
    in ``table.attrs["heading"]``."""
    from companion.inference.hypotheses import hypothesis_matrices

    if ddf not in DDF_METHODS:
        raise ValueError(f"ddf must be one of {DDF_METHODS}, not {ddf!r}")
    matrices = hypothesis_matrices(fit, type)
    parts = ddf_parts(fit, ddf)
    table = pd.DataFrame([f_test(fit, L.to_numpy(), parts) for L in matrices.values()],
                         index=list(matrices), columns=COLUMNS)
    number = {"I": 1, "II": 2, "III": 3}.get(type, type)
    method = "Satterthwaite's" if ddf == "Satterthwaite" else "Kenward-Roger's"
    table.attrs["heading"] = (f"Type {TYPE_NAMES.get(number, number)} Analysis of "
                              f"Variance Table with {method} method")
    return table
