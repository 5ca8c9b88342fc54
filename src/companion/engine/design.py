"""From a parsed formula and a DataFrame to the matrices of a mixed model.

``X`` holds the fixed effects with R's treatment contrasts and column names (``period2``,
``lbase:trtprogabide``); each random term becomes a block: its raw model matrix, its
grouping factor's codes and levels. ``Z`` is laid out as lme4 lays it out: term by term,
and within a term level by level, the term's columns for each level side by side.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import patsy

from companion.engine.contrasts import CUSTOM, FORMULA_NAMES, r_factor_name, with_r_contrasts
from companion.engine.formula import FormulaError, ParsedFormula, RandomTerm
from companion.engine.validate import check_model_data, require_data_frame, require_finite

# Functions a formula may call, as R spells them.
_FUNCTIONS = {"log": np.log, "exp": np.exp, "sqrt": np.sqrt, "log1p": np.log1p,
              "abs": np.abs, "log10": np.log10, "log2": np.log2}
_IDENTIFIER = re.compile(r"[A-Za-z_.][A-Za-z0-9_.]*")


class RowsDroppedWarning(UserWarning):
    """Rows with missing values in the model's variables were left out of the fit."""


class RankDeficiencyWarning(UserWarning):
    """Fixed-effect columns that were linear combinations of others were dropped."""


@dataclass
class RandomBlock:
    """One random-effect term: ``len(columns)`` effects for each level of ``group``."""

    term: RandomTerm
    levels: list[str]
    columns: list[str]
    raw: np.ndarray  # n x p, the term's model matrix
    codes: np.ndarray  # n, the level of each row (0 .. len(levels) - 1)
    expr: str  # the term's expression with R's contrasts (see companion.engine.contrasts)

    @property
    def group(self) -> str:
        return self.term.group_name

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def n_columns(self) -> int:
        return len(self.columns)

    @property
    def size(self) -> int:
        return self.n_levels * self.n_columns

    def z(self) -> np.ndarray:
        """The block's columns of Z: level-major, the term's columns within each level."""
        n, p = self.raw.shape
        out = np.zeros((n, self.size))
        rows = np.arange(n)
        for k in range(p):
            out[rows, self.codes * p + k] = self.raw[:, k]
        return out


@dataclass
class Design:
    y: np.ndarray
    X: np.ndarray
    fixed_names: list[str]
    blocks: list[RandomBlock]
    offset: np.ndarray
    weights: np.ndarray
    rows: pd.Index  # the data's rows that entered the fit
    frame: pd.DataFrame | None = None  # those rows, for rebuilding X on new data
    fixed_formula: str = "1"
    dropped_columns: list[str] = field(default_factory=list)
    formula_offsets: tuple[str, ...] = ()  # offset(...) terms, re-evaluated for predictions

    @cached_property
    def fixed_info(self) -> patsy.DesignInfo:
        """patsy's description of X (factor levels included), to build X for new data."""
        return patsy.dmatrix(self.fixed_formula, self.frame, eval_env=eval_environment(),
                             NA_action="raise").design_info

    @property
    def Z(self) -> np.ndarray:  # noqa: N802 - the model's own notation
        if not self.blocks:
            return np.zeros((len(self.y), 0))
        return np.hstack([block.z() for block in self.blocks])

    @property
    def n(self) -> int:
        return len(self.y)


def r_column_name(name: str) -> str:
    """patsy's ``period[T.2]`` becomes R's ``period2``, a factor coded in full
    ``recipe[A]`` ``recipeA``, ``I(w > 2)[T.True]`` ``I(w > 2)TRUE``, ``C(f, contr_poly).L``
    ``f.L``; ``Intercept`` ``(Intercept)``."""
    if name == "Intercept":
        return "(Intercept)"
    name = re.sub(r"\[(?:T\.)?(True|False)\]", lambda m: m.group(1).upper(),
                  r_factor_name(name))
    return re.sub(r"\[(?:T\.)?([^\]]+)\]", r"\1", name)


def eval_environment() -> patsy.EvalEnvironment:
    """What a formula may call: R's functions, numpy as ``np`` and R's contrasts (users'
    matrices included)."""
    return patsy.EvalEnvironment([_FUNCTIONS, {"np": np}, FORMULA_NAMES, CUSTOM])


def _variables(parsed: ParsedFormula, data: pd.DataFrame) -> list[str]:
    """Data columns the formula mentions (for the missing-value screen)."""
    text = " ".join([parsed.response, parsed.fixed, *parsed.offsets,
                     *(t.expr for t in parsed.random),
                     *(name for t in parsed.random for name in t.group)])
    names = set(_IDENTIFIER.findall(text))
    return [column for column in data.columns if str(column) in names]


def _check_columns(parsed: ParsedFormula, data: pd.DataFrame) -> None:
    known = {str(c) for c in data.columns} | set(_FUNCTIONS) | {"np", "I", "C", "cbind"}
    for term in parsed.random:
        for name in term.group:
            if name not in data.columns:
                raise FormulaError(f"grouping factor {name!r} is not a column of the data; "
                                   f"the columns are: {', '.join(map(str, data.columns))}")
    text = " ".join([parsed.response, parsed.fixed, *parsed.offsets,
                     *(t.expr for t in parsed.random)])
    text = re.sub(r"(['\"]).*?\1", "", text)  # string literals are not names
    unknown = sorted({name for name in _IDENTIFIER.findall(text)
                      if name not in known and not re.fullmatch(r"[.\d]+", name)})
    if unknown:
        raise FormulaError(f"the formula uses {', '.join(map(repr, unknown))}, which "
                           f"{'is' if len(unknown) == 1 else 'are'} not a column of the data; "
                           f"the columns are: {', '.join(map(str, data.columns))}")


def _present(column: pd.Series) -> np.ndarray:
    """Which values are not missing (numpy directly for the common dtypes)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy() >= 0
    values = column.to_numpy()
    if values.dtype.kind == "f":
        return ~np.isnan(values)
    if values.dtype.kind in "iub":
        return np.ones(len(values), dtype=bool)
    return ~pd.isna(values)


def complete_rows(parsed: ParsedFormula, data: pd.DataFrame, extra: dict) -> pd.DataFrame:
    """Keep the rows where every variable of the model is present; say how many went."""
    present = np.ones(len(data), dtype=bool)
    for name in _variables(parsed, data):
        present &= _present(data[name])
    for name, values in extra.items():
        if values is not None:
            values = np.asarray(values, dtype=float)
            if values.shape != (len(data),):
                raise ValueError(f"{name} must have one value per row of the data "
                                 f"({len(data)}), not shape {values.shape}")
            present &= ~np.isnan(values)
    dropped = int((~present).sum())
    if dropped == 0:
        return data
    if dropped == len(data):
        raise ValueError("every row has a missing value in a variable of the model; "
                         "nothing is left to fit")
    if dropped:
        warnings.warn(f"{dropped} of {len(data)} rows dropped because of missing values in "
                      "the model's variables", RowsDroppedWarning, stacklevel=3)
    return data.loc[present]


def _grouping(data: pd.DataFrame, names: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """Codes and levels of a grouping factor (or of the interaction of several), in R's
    order: a factor's own level order, sorted values otherwise; unused levels dropped."""
    codes, levels = None, None
    for name in names:
        column = data[name]
        if not isinstance(column.dtype, pd.CategoricalDtype):
            column = column.astype(pd.CategoricalDtype(sorted(column.unique())))
        these = column.cat.codes.to_numpy().astype(np.int64)
        names_here = [str(level) for level in column.cat.categories]
        if codes is None:
            codes, levels = these, names_here
        else:  # interaction: first factor varies slowest, as R's a:b
            codes = codes * len(names_here) + these
            levels = [f"{a}:{b}" for a in levels for b in names_here]
    used = np.bincount(codes, minlength=len(levels)) > 0
    if used.all():
        return codes, levels
    renumber = np.cumsum(used) - 1
    return renumber[codes], [level for level, keep in zip(levels, used) if keep]


def _block(term: RandomTerm, data: pd.DataFrame, contrasts=None) -> RandomBlock:
    expr = with_r_contrasts(term.expr, data, contrasts)
    matrix, names = model_matrix(expr, data)
    if matrix.shape[1] == 0:
        raise FormulaError(f"random term ({term.expr} | {term.group_name}) has no columns")
    require_finite(matrix, f"the random term ({term.expr} | {term.group_name})")
    codes, levels = _grouping(data, term.group)
    if len(levels) < 2:
        raise FormulaError(f"grouping factor {term.group_name!r} has {len(levels)} level; a "
                           "random effect needs at least 2 levels to estimate a variance")
    return RandomBlock(term, levels, names, matrix, codes, expr)


def model_matrix(rhs: str, data: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """The model matrix of one side of a formula and its R column names, terms in R's
    order (by degree, then as written)."""
    simple = _plain_columns_matrix(rhs, data)
    return simple if simple is not None else patsy_matrix(rhs, data)


def patsy_matrix(rhs: str, data: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """The general case, by patsy."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # checked after
        matrix = patsy.dmatrix(rhs, data, eval_env=eval_environment(), NA_action="raise",
                               return_type="dataframe")
    matrix = _in_r_order(matrix, rhs)
    return matrix.to_numpy(dtype=float), [r_column_name(c) for c in matrix.columns]


def _plain_columns_matrix(rhs: str, data: pd.DataFrame):
    """The common case without patsy: ``1``/``0`` and names of numeric columns, or of
    factors after an intercept (treatment contrasts on every category, as patsy and R
    do). ``None`` for anything else (interactions, functions, text columns ...)."""
    terms = [t.strip() for t in rhs.split("+")]
    intercept = "0" not in terms
    names = [t for t in terms if t not in ("0", "1")]
    if len(set(names)) != len(names) or not all(_IDENTIFIER.fullmatch(t) for t in names):
        return None
    columns, labels = [np.ones(len(data))] if intercept else [], \
        ["(Intercept)"] if intercept else []
    for name in names:
        if name not in data.columns:
            return None
        column = data[name]
        if isinstance(column.dtype, pd.CategoricalDtype) and intercept:
            codes = column.cat.codes.to_numpy()
            for k, level in enumerate(column.cat.categories[1:], start=1):
                columns.append((codes == k).astype(float))
                labels.append(f"{name}{level}")
        elif pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            columns.append(column.to_numpy(dtype=float))
            labels.append(name)
        else:
            return None
    matrix = np.column_stack(columns) if columns else np.zeros((len(data), 0))
    return matrix, labels


def _lme4_order(blocks: list[RandomBlock]) -> list[RandomBlock]:
    """lme4 puts the terms in decreasing order of levels when a later term has more."""
    counts = [b.n_levels for b in blocks]
    if any(later > earlier for earlier, later in zip(counts, counts[1:])):
        order = np.argsort(counts, kind="stable")[::-1]
        return [blocks[i] for i in order]
    return blocks


def drop_aliased_columns(X: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str], list[str]]:  # noqa: N803
    """Drop each column that is a linear combination of the columns before it, keeping
    the first ones, as R's model fitting does; warn like lme4."""
    keep: list[int] = []
    for j in range(X.shape[1]):
        column = X[:, j]
        if keep:
            basis = X[:, keep]
            column = column - basis @ np.linalg.lstsq(basis, column, rcond=None)[0]
        if np.linalg.norm(column) > 1e-7 * max(np.linalg.norm(X[:, j]), 1e-300):
            keep.append(j)
    dropped = [names[j] for j in range(X.shape[1]) if j not in keep]
    if dropped:
        plural = "s" if len(dropped) > 1 else ""
        warnings.warn(f"fixed-effect model matrix is rank deficient so dropping "
                      f"{len(dropped)} column{plural} / coefficient{plural}: "
                      f"{', '.join(dropped)}", RankDeficiencyWarning, stacklevel=3)
    return X[:, keep], [names[j] for j in keep], dropped


def _in_r_order(fixed: pd.DataFrame, rhs: str) -> pd.DataFrame:
    """patsy groups columns by their numeric factors; R orders terms by degree, then as
    written (``lbase * trt`` gives lbase, trt, lbase:trt)."""
    terms = patsy.ModelDesc.from_formula(rhs).rhs_termlist
    order = sorted(range(len(terms)), key=lambda i: len(terms[i].factors))
    slices = fixed.design_info.term_slices
    columns = [c for i in order if terms[i] in slices
               for c in fixed.columns[slices[terms[i]]]]
    return fixed[columns]


def response_vector(parsed: ParsedFormula, data: pd.DataFrame) -> np.ndarray:
    """The response as floats; a clear error for a factor or text response."""
    if parsed.response in data.columns:
        column = data[parsed.response]
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            raise TypeError(f"the response {parsed.response!r} must be numeric, but it is "
                            f"{column.dtype}; convert it (for a two-level factor, to 0/1)")
        return column.to_numpy(dtype=float)
    simple = _arithmetic(parsed.response, data)
    if simple is not None:
        return simple
    values = patsy.dmatrix(f"I({parsed.response}) - 1", data, eval_env=eval_environment(),
                           NA_action="raise")
    if values.shape[1] != 1:
        raise TypeError(f"the response {parsed.response!r} must be one numeric column")
    return np.asarray(values, dtype=float)[:, 0]


_ARITHMETIC = re.compile(r"[A-Za-z0-9_.\s+\-*/()]+")


def _arithmetic(expr: str, data: pd.DataFrame) -> np.ndarray | None:
    """``size - incidence``, ``log(o)``, ``y / 1000``: arithmetic on numeric columns
    and the formula functions, evaluated directly; ``None`` for anything else."""
    if not _ARITHMETIC.fullmatch(expr):
        return None
    namespace = {}
    for name in set(_IDENTIFIER.findall(expr)):
        if re.fullmatch(r"[\d.]+", name):
            continue
        if "." in name:
            return None
        if name in _FUNCTIONS:
            namespace[name] = _FUNCTIONS[name]
        elif name in data.columns and pd.api.types.is_numeric_dtype(data[name]) \
                and not pd.api.types.is_bool_dtype(data[name]):
            namespace[name] = data[name].to_numpy(dtype=float)
        else:
            return None
    try:
        # log(0) and the like give inf or NaN, which the checks of the design then name
        # (column, rows) as lme4 refuses them, instead of numpy's warning
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            value = eval(expr, {"__builtins__": {}}, namespace)  # noqa: S307 - vetted above
    except (SyntaxError, TypeError, NameError, ZeroDivisionError):
        return None
    value = np.broadcast_to(np.asarray(value, dtype=float), (len(data),))
    return np.array(value)


def formula_offset(offsets: tuple[str, ...], data: pd.DataFrame) -> np.ndarray:
    """The sum of the formula's ``offset(...)`` terms, evaluated on ``data``."""
    total = np.zeros(len(data))
    for expr in offsets:
        total += response_vector(ParsedFormula(expr, "1"), data)
    return total


def build_design(parsed: ParsedFormula, data: pd.DataFrame, weights=None,
                 offset=None, contrasts=None) -> Design:
    """The matrices of the model, after the missing-value screen; factors coded with R's
    contrasts (``contrasts`` maps a column to "treatment", "sum", "helmert" or "poly")."""
    require_data_frame(data)
    _check_columns(parsed, data)
    check_model_data(data, _variables(parsed, data))
    rows = complete_rows(parsed, data, {"weights": weights, "offset": offset})
    kept = data.index.get_indexer(rows.index)
    y = response_vector(parsed, rows)
    require_finite(y, f"the response {parsed.response!r}")
    fixed = with_r_contrasts(parsed.fixed, rows, contrasts)
    X, names = model_matrix(fixed, rows)
    require_finite(X, f"the fixed-effects model matrix of {parsed.fixed!r}")
    X, names, dropped = drop_aliased_columns(X, names)
    total_offset = np.zeros(len(rows))
    if offset is not None:
        total_offset += np.asarray(offset, dtype=float)[kept]
    total_offset += formula_offset(parsed.offsets, rows)
    require_finite(total_offset, "the offset")
    w = np.ones(len(rows)) if weights is None else np.asarray(weights, dtype=float)[kept]
    if np.any(w <= 0) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite and positive; drop the rows whose weight "
                         "is zero instead")
    blocks = _lme4_order([_block(term, rows, contrasts) for term in parsed.random])
    return Design(y, X, names, blocks, total_offset, w, rows.index, rows, fixed,
                  dropped, parsed.offsets)
