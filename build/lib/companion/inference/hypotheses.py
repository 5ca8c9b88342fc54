"""lmerTest's hypothesis matrices for ``anova(fit, type = ...)`` of an lmer fit.

For each fixed-effect term (R's ``term.labels``, in R's order) a matrix ``L`` whose rows
are the hypotheses ``L beta = 0`` that the term's F test checks, built as lmerTest 3.1.3
builds them:

* type I (sequential): the rows of the term's columns in the transposed unit lower
  factor of the Doolittle decomposition of ``X'X``;
* type II: terms inside no other term are tested alone (their coefficients); the others
  as type I with the term and the terms containing it moved to the end of ``X``;
* type III: from the over-parameterised design (an intercept and every term coded in
  full), the estimable functions of treatment-coded ``X``, each term's made orthogonal to
  the terms containing it, then mapped to the fit's own coding.

R's ``zapsmall`` rounds intermediate matrices to 7 significant digits, and the Doolittle
factor sets entries below 1e-6 to zero; both are kept, so the matrices match lmerTest's.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import patsy

from companion.engine.contrasts import r_factor_name
from companion.engine.design import (Design, RankDeficiencyWarning, drop_aliased_columns,
                                     eval_environment, r_column_name)
from companion.engine.profiled import ProfiledDeviance

TYPES = {1: 1, "1": 1, "I": 1, 2: 2, "2": 2, "II": 2, 3: 3, "3": 3, "III": 3}
INTERCEPT = "(Intercept)"
DOOLITTLE_EPS = 1e-6  # lmerTest's doolittle(): smaller pivots and entries count as zero
ZERO_ROW = 1e-8  # type III: rows whose absolute entries sum to less are dropped
RANK_TOL = 1e-7  # R's lm.fit and qr()


@dataclass(frozen=True)
class FormulaTerms:
    """The fixed-effect terms as R's ``terms()`` describes them."""

    labels: list[str]  # term.labels, by degree, then as written
    degree: dict[str, int]  # number of variables in each term (R's "order")
    coded: dict[str, frozenset[str]]  # each term's variables coded by contrasts
    numeric: frozenset[str]  # the variables that are single numeric columns
    expressions: dict[str, str]  # each term as a patsy expression
    intercept: bool

    def containing(self, label: str) -> list[str]:
        """lmerTest's ``containment``: the terms that contain ``label`` (more contrast-
        coded variables, among them all of its own, and the same numeric ones)."""
        own = self.coded[label]
        return [other for other in self.labels
                if own < self.coded[other]
                and own & self.numeric == self.coded[other] & self.numeric]


@dataclass(frozen=True)
class TermColumns:
    """A model matrix, its columns' R names and the term of each column."""

    matrix: np.ndarray
    names: list[str]
    terms: list[str]

    def columns_of(self, *labels: str) -> list[int]:
        """The positions of the columns of ``labels``' terms, term by term."""
        return [j for label in labels for j, term in enumerate(self.terms) if term == label]

    def without_aliased(self) -> "TermColumns":
        """Each column that is a combination of those before it dropped (R's pivoted QR)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RankDeficiencyWarning)
            kept_names = set(drop_aliased_columns(self.matrix, self.names)[1])
        kept = [j for j, name in enumerate(self.names) if name in kept_names]
        return TermColumns(self.matrix[:, kept], [self.names[j] for j in kept],
                           [self.terms[j] for j in kept])


def hypothesis_matrices(fit, type: int | str) -> dict[str, pd.DataFrame]:  # noqa: A002
    """lmerTest's ``attr(anova(fit, type = type), "hypotheses")``: per fixed-effect term,
    its hypothesis matrix (rows: hypotheses named as lmerTest names them; columns: the
    fit's coefficients). ``type``: 1, 2 or 3 (or "I", "II", "III"). An intercept-only
    model has no terms: an empty dict."""
    number = TYPES.get(type)
    if number is None:
        raise ValueError(f"type must be 1, 2 or 3 (or 'I', 'II', 'III'), not {type!r}")
    design = _lmer_design(fit)
    terms, X = _fitted_terms(design, list(fit.fixef.index))
    if X.matrix.shape[1] <= 1 or len(terms.labels) <= 1 or number == 1:
        matrices = type1_matrices(X, terms)
    elif number == 2:
        matrices = type2_matrices(X, terms)
    else:
        matrices = type3_matrices(X, design)
    return {label: pd.DataFrame(L, index=rows, columns=X.names)
            for label, (rows, L) in matrices.items()}


def _lmer_design(fit) -> Design:
    if not isinstance(getattr(fit, "devfun", None), ProfiledDeviance):
        raise ValueError("anova types (lmerTest's hypothesis matrices) are for lmer fits, "
                         "linear mixed models; this fit is not one")
    design = fit.devfun.design
    if design.frame is None:
        raise ValueError("the fit keeps no data frame to rebuild its model matrices from")
    return design


def _fitted_terms(design: Design, names: list[str]) -> tuple[FormulaTerms, TermColumns]:
    """The fit's terms, and its X (rank-deficient columns already dropped) with the term
    of each column; ``names`` are the coefficients' names."""
    terms, full = coded_terms(design.fixed_formula, design.frame, naming=r_column_name)
    term_of = dict(zip(full.names, full.terms))
    return terms, TermColumns(design.X, names, [term_of[name] for name in design.fixed_names])


# --- the terms of a formula and its model matrix --------------------------------------------

def coded_terms(rhs: str, frame: pd.DataFrame,
                naming=r_column_name) -> tuple[FormulaTerms, TermColumns]:
    """The terms of ``rhs`` and its model matrix on ``frame``, columns in R's order (terms
    by degree, then as written) and named by ``naming`` (R's names by default)."""
    matrix = patsy.dmatrix(rhs, frame, eval_env=eval_environment(), NA_action="raise",
                           return_type="dataframe")
    info = matrix.design_info
    written = patsy.ModelDesc.from_formula(rhs).rhs_termlist
    variables = list(dict.fromkeys(_variable(f) for term in written for f in term.factors))
    ordered = sorted((t for t in written if t in info.term_slices), key=lambda t: len(t.factors))
    labels = {term: _label(term, variables) for term in ordered}
    positions, column_terms = [], []
    for term in ordered:
        span = range(matrix.shape[1])[info.term_slices[term]]
        positions.extend(span)
        column_terms.extend([labels[term]] * len(span))
    columns = TermColumns(matrix.to_numpy(dtype=float)[:, positions],
                          [naming(matrix.columns[j]) for j in positions], column_terms)
    return _formula_terms(ordered, labels, info), columns


def _variable(factor) -> str:
    """A factor's variable as R names it: ``C(f, contr_poly)`` is ``f``."""
    return r_factor_name(factor.name())


def _label(term, variables: list[str]) -> str:
    """R's label of a term: its variables in their order of first appearance."""
    if not term.factors:
        return INTERCEPT
    return ":".join(sorted((_variable(f) for f in term.factors), key=variables.index))


def _formula_terms(ordered: list, labels: dict, info: patsy.DesignInfo) -> FormulaTerms:
    model_terms = [term for term in ordered if term.factors]
    sets = [frozenset(_variable(f) for f in term.factors) for term in model_terms]
    numeric = frozenset(_variable(f) for f, fi in info.factor_infos.items()
                        if fi.type == "numerical" and fi.num_columns == 1)
    names = [labels[term] for term in model_terms]
    return FormulaTerms(
        labels=names,
        degree={name: len(s) for name, s in zip(names, sets)},
        coded=dict(zip(names, _contrast_coded(sets))),
        numeric=numeric,
        expressions={labels[t]: ":".join(f.name() for f in t.factors) for t in model_terms},
        intercept=len(model_terms) < len(ordered))


def _contrast_coded(terms: list[frozenset[str]]) -> list[frozenset[str]]:
    """The variables R's ``attr(terms, "factors")`` marks 1 (coded by contrasts) rather
    than 2 (coded in full): those whose removal leaves nothing, or a subset of an
    earlier term."""
    return [frozenset(v for v in term
                      if not term - {v} or any(term - {v} <= earlier for earlier in terms[:k]))
            for k, term in enumerate(terms)]


# --- R's numerics ---------------------------------------------------------------------------

def doolittle_lower(A: np.ndarray) -> np.ndarray:  # noqa: N803
    """The unit lower factor of ``A = L U`` without pivoting (lmerTest's ``doolittle``):
    a column whose pivot is below 1e-6 and entries below 1e-6 are set to zero."""
    n = A.shape[0]
    L, U = np.eye(n), np.zeros((n, n))
    for i in range(n):
        U[i] = A[i] - L[i, :i] @ U[:i]
        below = A[i + 1:, i] - L[i + 1:, :i] @ U[:i, i]
        L[i + 1:, i] = 0.0 if abs(U[i, i]) < DOOLITTLE_EPS else below / U[i, i]
    L[np.abs(L) < DOOLITTLE_EPS] = 0.0
    return L


def zapsmall(x: np.ndarray, digits: int = 7) -> np.ndarray:
    """R's ``zapsmall``: round to ``digits`` significant digits of the largest entry."""
    if x.size == 0:
        return x
    largest = np.abs(x).max()
    places = max(0.0, digits - np.log10(largest)) if largest > 0 else digits
    return np.round(x, int(np.floor(places + 0.5)))  # R's round() takes the nearest integer


def _residuals(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``y`` less its least-squares fit on ``x``'s columns (R's ``resid(lm.fit(x, y))``)."""
    if x.shape[1] == 0:
        return y
    return y - x @ np.linalg.lstsq(x, y, rcond=RANK_TOL)[0]


# --- the three types ------------------------------------------------------------------------

Matrices = dict[str, tuple[list[str], np.ndarray]]


def type1_matrices(X: TermColumns, terms: FormulaTerms) -> Matrices:  # noqa: N803
    """Sequential hypotheses: each term's rows of the transposed Doolittle factor of X'X."""
    p = X.matrix.shape[1]
    if p == 0 or (p == 1 and terms.intercept):
        return {}
    factor = doolittle_lower(X.matrix.T @ X.matrix).T
    return {label: _named_rows(X.names, factor, X.columns_of(label)) for label in terms.labels}


def _named_rows(names: list[str], matrix: np.ndarray, rows: list[int]):
    """Rows of ``matrix`` with their names."""
    return [names[j] for j in rows], matrix[rows]


def type2_matrices(X: TermColumns, terms: FormulaTerms) -> Matrices:  # noqa: N803
    """Terms inside no other term: their coefficients; the others: type I hypotheses with
    the term and the terms containing it last in X."""
    matrices = {}
    for label in terms.labels:
        containing = terms.containing(label)
        if containing:
            matrices[label] = _adjusted_for_others(X, label, containing)
        else:
            matrices[label] = _named_rows(X.names, np.eye(len(X.names)), X.columns_of(label))
    return matrices


def _adjusted_for_others(X: TermColumns, label: str, containing: list[str]):  # noqa: N803
    """Type II rows of ``label``: the Doolittle factor with ``label``'s and the containing
    terms' columns moved to the end, in X's column order again."""
    last = X.columns_of(label, *containing)
    order = [j for j in range(len(X.names)) if j not in last] + last
    reordered = X.matrix[:, order]
    factor = np.empty((len(order), len(order)))
    factor[:, order] = doolittle_lower(reordered.T @ reordered).T
    own = [k for k, j in enumerate(order) if X.terms[j] == label]
    return [X.names[order[k]] for k in own], factor[own]


def type3_matrices(X: TermColumns, design: Design) -> Matrices:  # noqa: N803
    """Marginal hypotheses, lmerTest's way: built on treatment-coded X (patsy's default
    coding, aliased columns dropped), then mapped to the fit's coding. (lmerTest skips the
    map when the fit's coding is treatment already; the map is then the identity.)"""
    terms, treatment = coded_terms(r_factor_name(design.fixed_formula), design.frame)
    treatment = treatment.without_aliased()
    inverse = np.linalg.pinv(treatment.matrix)
    full = _overparameterised(terms, design.frame)
    L = zapsmall(inverse @ full.matrix).T  # rows: full's columns; columns: treatment's
    for label in sorted(terms.labels, key=terms.degree.get, reverse=True):
        own, containing = treatment.columns_of(label), terms.containing(label)
        if containing and own:
            others = treatment.columns_of(*containing)
            L[:, own] = zapsmall(_residuals(L[:, others], L[:, own]))
    L = L[[full.names.index(name) for name in treatment.names]]
    to_fit = zapsmall(inverse @ X.matrix)
    matrices = {}
    for label in terms.labels:
        rows, block = _named_rows(treatment.names, L.T, treatment.columns_of(label))
        kept = np.abs(block).sum(axis=1) > ZERO_ROW
        matrices[label] = [r for r, keep in zip(rows, kept) if keep], block[kept] @ to_fit
    return matrices


def _overparameterised(terms: FormulaTerms, frame: pd.DataFrame) -> TermColumns:
    """lmerTest's ``get_rdX``: an intercept (if the model has one) and each term coded in
    full (``~ 0 + term``), side by side."""
    pieces = []
    if terms.intercept:
        pieces.append(TermColumns(np.ones((len(frame), 1)), [INTERCEPT], [INTERCEPT]))
    for label in terms.labels:
        _, coded = coded_terms(f"0 + {terms.expressions[label]}", frame)
        pieces.append(TermColumns(coded.matrix, coded.names, [label] * len(coded.names)))
    return TermColumns(np.hstack([p.matrix for p in pieces]),
                       [name for p in pieces for name in p.names],
                       [term for p in pieces for term in p.terms])
