"""R's contrasts for factors in a model formula, with R's column names.

R codes an unordered factor with ``contr.treatment`` and an ordered one with
``contr.poly``; lme4's ``contrasts = list(f = "contr.sum")`` picks another. Here each is a
patsy contrast (``C(f, contr_poly)`` in a formula) that gives R's matrix and R's names:
``f.L``, ``f.Q``, ``f.C``, ``f^4`` ... for ``contr_poly``; ``f1``, ``f2`` ... for
``contr_sum`` and ``contr_helmert``; ``fB`` (the level) for ``contr_treatment``; a matrix
of one's own (``contrasts={"f": matrix}``, one row per level) names its columns as R does,
``f`` and the column's name, or ``f1``, ``f2`` ... when it has none. Where a
factor must be coded in full (no intercept before it), every contrast gives one indicator
column per level, as R does. :func:`with_r_contrasts` rewrites a formula's factors to
these, and :func:`r_factor_name` turns patsy's column names back into R's.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd
from patsy import ContrastMatrix

_IDENTIFIER = re.compile(r"(?<![\w.])([A-Za-z_.][A-Za-z0-9_.]*)(?![\w.(])")


class _RContrast:
    """A patsy contrast with R's matrix for the reduced coding and indicators for the
    full one."""

    def matrix(self, levels: list) -> tuple[np.ndarray, list[str]]:
        raise NotImplementedError

    def code_without_intercept(self, levels) -> ContrastMatrix:
        if len(levels) < 2:
            raise ValueError("a factor with fewer than 2 levels has no contrasts")
        values, suffixes = self.matrix(list(levels))
        return ContrastMatrix(values, suffixes)

    def code_with_intercept(self, levels) -> ContrastMatrix:
        return ContrastMatrix(np.eye(len(levels)), [str(level) for level in levels])


class contr_treatment(_RContrast):  # noqa: N801 - R's name, written in formulas
    """Each level against the first; columns named by their level."""

    def matrix(self, levels):
        return np.eye(len(levels))[:, 1:], [str(level) for level in levels[1:]]


class contr_sum(_RContrast):  # noqa: N801
    """Each level but the last against the mean; columns numbered."""

    def matrix(self, levels):
        k = len(levels)
        values = np.vstack([np.eye(k - 1), -np.ones(k - 1)])
        return values, [str(j) for j in range(1, k)]


class contr_helmert(_RContrast):  # noqa: N801
    """Each level against the mean of the levels before it; columns numbered."""

    def matrix(self, levels):
        k = len(levels)
        values = np.zeros((k, k - 1))
        for j in range(1, k):
            values[:j, j - 1] = -1.0
            values[j, j - 1] = j
        return values, [str(j) for j in range(1, k)]


class contr_poly(_RContrast):  # noqa: N801
    """Orthonormal polynomials in the level's position (R's ``contr.poly``): the
    Gram-Schmidt residuals of the centred scores' powers, scaled to length one."""

    def matrix(self, levels):
        k = len(levels)
        scores = np.arange(1, k + 1, dtype=float)
        powers = (scores - scores.mean())[:, None] ** np.arange(k)
        q, r = np.linalg.qr(powers)
        raw = q * np.diag(r)  # the residuals, whatever the signs of the QR
        values = (raw / np.sqrt((raw**2).sum(axis=0)))[:, 1:]
        names = [".L", ".Q", ".C"] + [f"^{d}" for d in range(4, k)]
        return values, names[:k - 1]


class contr_matrix(_RContrast):  # noqa: N801
    """A contrast matrix given by the user, one row per level."""

    def __init__(self, values: np.ndarray, names: list[str]):
        self.values, self.names = values, names

    def matrix(self, levels):
        if len(self.values) != len(levels):
            raise ValueError(f"a contrast matrix with {len(self.values)} rows for a factor "
                             f"with {len(levels)} levels ({', '.join(map(str, levels))}): "
                             "give one row per level, in the factor's level order")
        return self.values, self.names


CUSTOM: dict[str, contr_matrix] = {}  # the formula names of users' matrices, by content


def _custom_name(name: str, matrix) -> str:
    """Register a user's contrast matrix; its name in formulas depends on its content
    only, so a model refitted or predicted later finds it again."""
    if isinstance(matrix, pd.DataFrame):
        names = [str(c) for c in matrix.columns]
    else:
        names = None
    values = np.asarray(matrix, dtype=float)
    if values.ndim != 2 or values.shape[1] < 1 or not np.isfinite(values).all():
        raise ValueError(f"contrasts[{name!r}] must be a matrix with one row per level and "
                         "at least one column of finite numbers, or one of "
                         f"{sorted(CONTRASTS)}")
    names = names or [str(j) for j in range(1, values.shape[1] + 1)]
    digest = hashlib.sha1(values.tobytes() + repr((values.shape, names)).encode())
    key = f"contr_custom_{digest.hexdigest()[:12]}"
    CUSTOM.setdefault(key, contr_matrix(values, names))
    return key


CONTRASTS = {"treatment": contr_treatment, "sum": contr_sum, "helmert": contr_helmert,
             "poly": contr_poly}
FORMULA_NAMES = {cls.__name__: cls for cls in CONTRASTS.values()}


def with_r_contrasts(rhs: str, data: pd.DataFrame, contrasts: Mapping | None = None) -> str:
    """``rhs`` with each ordered factor (and each factor named in ``contrasts``, by
    ``"treatment"``, ``"sum"``, ``"helmert"``, ``"poly"`` or a matrix) written
    ``C(f, contr_...)``."""
    contrasts = dict(contrasts or {})
    for name, kind in contrasts.items():
        if name not in data.columns:
            raise ValueError(f"contrasts names {name!r}, which is not a column of the data")
        if not isinstance(kind, str):
            contrasts[name] = _custom_name(name, kind)
            continue
        key = str(kind).removeprefix("contr.")
        if key not in CONTRASTS:
            raise ValueError(f"contrasts[{name!r}] must be one of {sorted(CONTRASTS)} (or "
                             f"R's contr.sum, ...), not {kind!r}")
        contrasts[name] = CONTRASTS[key].__name__
    for column in data.columns:
        dtype = data[column].dtype
        if isinstance(dtype, pd.CategoricalDtype) and dtype.ordered:
            contrasts.setdefault(str(column), contr_poly.__name__)
    if not contrasts or "C(" in rhs:
        return rhs

    def rewrite(match: re.Match) -> str:
        name = match.group(1)
        return f"C({name}, {contrasts[name]})" if name in contrasts else name

    return _IDENTIFIER.sub(rewrite, rhs)


_CODED = re.compile(r"C\(\s*([^,()]+?)\s*,\s*contr_\w+\s*\)")


def r_factor_name(name: str) -> str:
    """patsy's ``C(f, contr_poly).L`` is R's ``f.L``."""
    return _CODED.sub(r"\1", name)
