"""Nonlinear least squares as R's ``nls()``: Gauss-Newton with step halving, stopped by the
relative-offset criterion of Bates & Watts.

Two kinds of formulas:

* a self-starting model, ``"height ~ SSasymp(age, Asym, R0, lrc)"`` (see
  :mod:`companion.nlmm.selfstart`): start values optional, analytic derivatives;
* any expression of the data's columns and the parameters, with ``start`` naming every
  parameter: ``"rate ~ (Vm + delV * (state == 'treated')) * conc / (K + conc)"``, with
  derivatives by central differences. R's ``^`` and either kind of quotes are accepted.

R stops as soon as the relative offset is below ``tol`` (1e-5), which leaves its estimates
up to ``tol * sqrt(n - p)`` standard errors from the optimum. We iterate on until the offset
is below 1e-10, and report R's iteration count and achieved tolerance: those of the first
iteration that met ``tol``.
"""

from __future__ import annotations

import ast
import html
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy import linalg, stats

from companion.engine.validate import check_model_data
from companion.nlmm.selfstart import REGISTRY, parse_nonlinear
from companion.results import FitSummary, ModelResult, empty_varcorr

DEFAULTS = {"maxiter": 50, "tol": 1e-5, "minFactor": 1 / 1024}  # R's nls.control
TIGHT = 1e-10  # the relative offset we iterate on to
RANK_TOL = 1e-7  # R's qr() tolerance: a gradient column this close to the others is lost
STEP = np.finfo(float).eps ** (1 / 3)  # relative step of the central differences

FUNCTIONS = {name: getattr(np, name) for name in (
    "exp", "log", "log10", "log2", "log1p", "expm1", "sqrt", "abs", "sin", "cos", "tan",
    "tanh")} | {"atan": np.arctan}
CONSTANTS = {"pi": np.pi}
SIGNIF = "Signif. codes:  0 ‘***’ 0.001 ‘**’ 0.01 ‘*’ 0.05 ‘.’ 0.1 ‘ ’ 1"
_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Call, ast.Name, ast.Load,
          ast.Constant, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd,
          ast.BitAnd, ast.BitOr, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)


@dataclass(frozen=True)
class _Model:
    """The right-hand side: ``value(columns, p)``, ``gradient(columns, p)`` (rows x
    parameters) or None for central differences, and a self-starting model's
    ``initial(columns, y)``."""

    parameters: tuple[str, ...]
    columns: tuple[str, ...]
    value: Callable[[dict, np.ndarray], np.ndarray]
    gradient: Callable[[dict, np.ndarray], np.ndarray] | None = None
    initial: Callable[[dict, np.ndarray], np.ndarray] | None = None
    equation: str | None = None

    def jacobian(self, columns: dict, p: np.ndarray) -> np.ndarray:
        """The gradient in the parameters (rows x parameters)."""
        if self.gradient is not None:
            return self.gradient(columns, p)
        out = []
        for j in range(len(p)):
            up, down = p.copy(), p.copy()
            h = STEP * (abs(p[j]) or 1.0)
            up[j] += h
            down[j] -= h
            out.append((self.value(columns, up) - self.value(columns, down)) / (up[j] - down[j]))
        return np.column_stack(out)


@dataclass(repr=False)
class NlsResult(ModelResult):
    """A fitted nonlinear least-squares model under the shared names (``fixef`` are R's
    ``coef(fit)``); the rest follow R's ``summary(nls)``."""

    formula: str
    fixef: pd.Series
    vcov: pd.DataFrame
    sigma: float  # residual standard error
    df: int  # residual degrees of freedom, n - p
    rss: float
    loglik: float
    nobs: int
    fitted: pd.Series
    resid: pd.Series
    iterations: int  # R's "Number of iterations to convergence"
    convergence_tolerance: float  # R's "Achieved convergence tolerance"
    equation: str | None = None  # LaTeX of a self-starting model
    model: Any = field(default=None, repr=False)
    varcorr: pd.DataFrame = field(default_factory=empty_varcorr)
    ranef: dict = field(default_factory=dict)
    title = "Nonlinear regression model fit by least squares"

    @property
    def n_params(self) -> int:
        """The parameters and sigma, as R's ``logLik(nls)`` counts them."""
        return len(self.fixef) + 1

    @property
    def t_value(self) -> pd.Series:
        return (self.fixef / self.se).rename("t value")

    @property
    def p_value(self) -> pd.Series:
        return pd.Series(2 * stats.t.sf(np.abs(self.t_value), self.df),
                         index=self.fixef.index, name="Pr(>|t|)")

    def coef_table(self) -> pd.DataFrame:
        """R's ``coef(summary(nls))``: estimates, SEs, t values on the residual df."""
        return pd.DataFrame({"Estimate": self.fixef, "Std. Error": self.se,
                             "t value": self.t_value, "Pr(>|t|)": self.p_value})

    def summary(self) -> FitSummary:
        """R's ``summary(nls)``, printed as R prints it."""
        return FitSummary(self.coef_table(), self.__str__, self._repr_html_)

    def predict(self, newdata: pd.DataFrame | None = None) -> pd.Series:
        """The model at the estimates, for the fitted rows or for ``newdata``."""
        if newdata is None:
            return self.fitted
        columns = _arrays(newdata, self.model.columns, "newdata")
        values = self.model.value(columns, self.fixef.to_numpy())
        return pd.Series(values, index=newdata.index, name="fitted")

    def anova(self, other: NlsResult, *more: NlsResult) -> pd.DataFrame:
        """F tests of nested fits to the same rows, as R's ``anova(fit1, fit2, ...)``.

        One row per fit, in the order given, with R's columns: ``Res.Df``, ``Res.Sum Sq``,
        and from the second row on the change from the row above (``Df``, ``Sum Sq``) and
        its F test. The mean square of the change is divided by the residual mean square
        of the larger of the two fits (``Res.Sum Sq / Res.Df``). As in R, nesting is not
        checked: each fit must be a special case of the next (or of the one before). The
        formulas are in ``table.attrs["models"]`` (R prints them above the table).
        """
        fits = [self, other, *more]
        if not all(isinstance(fit, NlsResult) for fit in fits):
            raise TypeError("anova compares nls fits (NlsResult) with each other")
        responses = [fit.formula.split("~")[0].strip() for fit in fits]
        if len(set(responses)) > 1:
            raise ValueError(f"the fits have different responses {responses}: an F test "
                             f"needs the same response in every fit")
        counts = [fit.nobs for fit in fits]
        if len(set(counts)) > 1:
            raise ValueError(f"the fits use different numbers of observations {counts}: "
                             f"they must be fitted to the same rows")
        res_df = np.array([fit.df for fit in fits], dtype=float)
        res_ss = np.array([fit.rss for fit in fits])
        df = np.r_[np.nan, -np.diff(res_df)]
        ss = np.r_[np.nan, -np.diff(res_ss)]
        f_value = np.full(len(fits), np.nan)
        p_value = np.full(len(fits), np.nan)
        for i in range(1, len(fits)):
            if df[i] == 0:  # R: equal sizes, no test
                ss[i] = 0.0
                continue
            big = i if df[i] > 0 else i - 1  # the fit with fewer residual df
            f_value[i] = ss[i] / df[i] / (res_ss[big] / res_df[big])
            p_value[i] = stats.f.sf(f_value[i], abs(df[i]), res_df[big])
        index = pd.RangeIndex(1, len(fits) + 1, name="Model")
        table = pd.DataFrame({"Res.Df": res_df.astype(int), "Res.Sum Sq": res_ss,
                              "Df": pd.array([pd.NA, *df[1:].astype(int)], dtype="Int64"),
                              "Sum Sq": ss, "F value": f_value, "Pr(>F)": p_value},
                             index=index)
        table.attrs["models"] = {i: fit.formula for i, fit in zip(index, fits)}
        return table

    # --- display ------------------------------------------------------------------------
    def _printed_parameters(self) -> pd.DataFrame:
        """The Parameters table of R's ``summary(nls)``, formatted as R prints it."""
        k = len(self.fixef)
        both = np.concatenate([self.fixef, self.se])
        nonzero = np.abs(both[both != 0])
        smallest = nonzero.min() if nonzero.size else 1.0
        decimals = max(1, 3 - int(np.floor(np.log10(smallest))))  # 4 digits of the smallest
        estimates = _format(np.round(both, decimals), 4)
        return pd.DataFrame({"Estimate": estimates[:k], "Std. Error": estimates[k:],
                             "t value": _format(np.round(self.t_value, 3), 4),
                             "Pr(>|t|)": _pvalues(self.p_value.to_numpy()),
                             "": [_stars(v) for v in self.p_value]}, index=self.fixef.index)

    def _footer(self) -> str:
        return (f"Residual standard error: {_format([self.sigma], 4)[0]} on {self.df} degrees "
                f"of freedom\n\nNumber of iterations to convergence: {self.iterations}\n"
                f"Achieved convergence tolerance: {_format([self.convergence_tolerance], 4)[0]}")

    def __str__(self) -> str:
        return "\n".join([f"Formula: {self.formula}", "", "Parameters:",
                          _text_table(self._printed_parameters()), "---", SIGNIF, "",
                          self._footer()])

    def _repr_html_(self) -> str:
        return "\n".join([f"<pre>Formula: {html.escape(self.formula)}</pre>",
                          "<h4>Parameters</h4>",
                          self._printed_parameters().to_html(classes="companion-summary", border=0),
                          f"<pre>{SIGNIF}\n\n{self._footer()}</pre>"])

    __repr__ = __str__


def nls(formula: str, data: pd.DataFrame, start: dict[str, float] | None = None,
        control: dict[str, float] | None = None) -> NlsResult:
    """Fit ``formula`` by nonlinear least squares, as R's ``nls(formula, data, start)``.

    ``start`` maps parameter names to values (optional for self-starting models);
    ``control`` takes R's ``maxiter``, ``tol`` and ``minFactor``. All rows of ``data`` are
    used: subset them first, e.g. ``nls(f, lob[lob.Seed == "329"])``.
    """
    settings = _control(control)
    if formula.count("~") != 1:
        raise ValueError(f"{formula!r}: a formula needs one '~', as 'y ~ SSasymp(x, Asym, "
                         f"R0, lrc)' or 'y ~ a * exp(b * x)'")
    response, rhs = (side.strip() for side in formula.split("~"))
    head = re.match(r"(\w+)\s*\(", rhs)
    if head and head.group(1) in REGISTRY:
        model = _self_starting(formula)
    else:
        if start is None:
            raise ValueError(f"{rhs!r} is not a self-starting model, so start values are "
                             f"needed: start={{name: value, ...}} for each parameter")
        model = _expression(rhs, data, start)
    if not re.fullmatch(r"\w+", response):
        raise ValueError(f"the response {response!r} must be a column name; add a column "
                         f"to data for a transformed response")
    columns = _arrays(data, (response, *model.columns), "data", check_missing=True)
    if columns[response].dtype == object:
        raise ValueError(f"the response {response!r} must be numeric")
    y = columns[response]
    names = model.parameters
    if len(y) <= len(names):
        raise ValueError(f"{len(y)} observations are too few for {len(names)} parameters: "
                         f"nls needs more observations than parameters")
    p0 = model.initial(columns, y) if start is None else _start_vector(start, names)
    fit = _gauss_newton(lambda p: model.value(columns, p),
                        lambda p: model.jacobian(columns, p), y, p0, names, **settings)
    p, values, r, iterations, tolerance = fit
    resid = y - values
    rss = resid @ resid
    n, k = len(y), len(names)
    df = n - k
    sigma = np.sqrt(rss / df)
    r_inv = linalg.solve_triangular(r, np.eye(k))
    index = pd.Index(names)
    return NlsResult(
        formula=formula, fixef=pd.Series(p, index=index, name="fixef"),
        vcov=pd.DataFrame(sigma**2 * r_inv @ r_inv.T, index=index, columns=index),
        sigma=float(sigma), df=df, rss=float(rss),
        loglik=float(-n / 2 * (np.log(2 * np.pi) + 1 - np.log(n) + np.log(rss))),
        nobs=n, fitted=pd.Series(values, index=data.index, name="fitted"),
        resid=pd.Series(resid, index=data.index, name="resid"), iterations=iterations,
        convergence_tolerance=float(tolerance), equation=model.equation, model=model)


# --- fitting ---------------------------------------------------------------------------------

def _gauss_newton(value, jacobian, y, p, names, maxiter, tol, minFactor):  # noqa: N803
    """Gauss-Newton with R's step halving until the relative offset is below ``tol``, then
    full steps while the offset keeps falling (the RSS no longer changes visibly there).
    Returns the estimates, fitted values, the R factor of the gradient there, and R's
    iteration count and achieved tolerance."""

    def at(p, values, where):
        q, r = _decompose(jacobian(p), names, where)
        resid = y - values
        qtr = q.T @ resid
        rest = resid - q @ qtr
        with np.errstate(divide="ignore", invalid="ignore"):
            return q, r, np.sqrt(qtr @ qtr / (rest @ rest))

    values = value(p)
    if not np.all(np.isfinite(values)):
        bad = np.flatnonzero(~np.isfinite(values))
        raise ValueError(f"the model is not finite at the start values (at row positions "
                         f"{bad[:5].tolist()}): change the start values "
                         f"{dict(zip(names, p.tolist()))}")
    q, r, offset = at(p, values, "at the start values")
    factor, r_iterations, r_tolerance = 1.0, None, None
    for i in range(2 * maxiter + 1):
        if r_iterations is None and i == maxiter:  # as R, the offset after the last is unused
            raise ValueError(f"no convergence within maxiter = {maxiter} iterations (relative "
                             f"offset now {offset:.3g}, tol = {tol:g}). Try other start values "
                             f"or a larger control={{'maxiter': ...}}")
        if r_iterations is None and offset <= tol:
            r_iterations, r_tolerance = i, offset
        if offset <= TIGHT or (r_iterations is not None and i >= r_iterations + maxiter):
            break
        increment = linalg.solve_triangular(r, q.T @ (y - values))
        where = f"after {i + 1} iterations"
        if r_iterations is None:
            rss = np.sum((y - values) ** 2)
            while factor >= minFactor:
                trial = p + factor * increment
                trial_values = value(trial)
                if np.sum((y - trial_values) ** 2) <= rss:  # False for NaN too
                    break
                factor /= 2
            else:
                raise ValueError(f"step factor {factor:g} reduced below minFactor = "
                                 f"{minFactor:g} after {i} iterations (relative offset "
                                 f"{offset:.3g} > tol = {tol:g}): no step reduces the residual "
                                 f"sum of squares. Try other start values")
            p, values, factor = trial, trial_values, min(2 * factor, 1.0)
            q, r, offset = at(p, values, where)
        else:
            trial = p + increment
            trial_values = value(trial)
            if not np.all(np.isfinite(trial_values)):
                break
            trial_q, trial_r, trial_offset = at(trial, trial_values, where)
            if not trial_offset < offset:
                break
            p, values, q, r, offset = trial, trial_values, trial_q, trial_r, trial_offset
    return p, values, r, r_iterations, r_tolerance


def _decompose(gradient: np.ndarray, names, where: str):
    """The QR decomposition of the gradient, with an error naming the parameters that are
    lost (as R's ``singular gradient``)."""
    if not np.all(np.isfinite(gradient)):
        raise ValueError(f"the gradient is not finite {where}: change the start values")
    q, r = np.linalg.qr(gradient)
    norms = np.linalg.norm(gradient, axis=0)
    lost = np.abs(np.diag(r)) <= RANK_TOL * norms
    if lost.any():
        zero = [n for n, flag, s in zip(names, lost, norms) if flag and s == 0]
        other = [n for n, flag, s in zip(names, lost, norms) if flag and s > 0]
        why = []
        if zero:
            why.append(f"the model does not depend on {', '.join(zero)} (zero gradient): "
                       f"remove it from the formula and start")
        if other:
            why.append(f"the gradient for {', '.join(other)} is a combination of the others' "
                       f"(the parameters are not identifiable there): try other start values "
                       f"or a simpler model")
        raise ValueError(f"singular gradient {where}: " + "; ".join(why))
    return q, r


def _control(control: dict | None) -> dict:
    settings = dict(DEFAULTS)
    unknown = set(control or {}) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown control setting(s) {sorted(unknown)}; known: "
                         f"{sorted(DEFAULTS)}")
    settings.update(control or {})
    return settings


def _start_vector(start: dict, names: tuple[str, ...]) -> np.ndarray:
    missing = [n for n in names if n not in start]
    extra = [n for n in start if n not in names]
    if missing or extra:
        problems = ([f"missing {missing}"] if missing else []) + (
            [f"not in the formula {extra}"] if extra else [])
        raise ValueError(f"start must name the parameters {list(names)}: "
                         f"{'; '.join(problems)}")
    p = np.array([start[n] for n in names], dtype=float)
    if not np.all(np.isfinite(p)):
        raise ValueError(f"start values must be finite numbers, got {start}")
    return p


# --- models ----------------------------------------------------------------------------------

def _self_starting(formula: str) -> _Model:
    parsed = parse_nonlinear(formula)
    model, x = parsed.model, parsed.covariate
    return _Model(parsed.parameters, (x,), lambda cols, p: model.value(cols[x], p),
                  lambda cols, p: model.gradient(cols[x], p),
                  lambda cols, y: np.asarray(model.initial(cols[x], y), float), model.equation)


def _expression(rhs: str, data: pd.DataFrame, start: dict) -> _Model:
    """A model from an R expression of columns and the parameters named in ``start``."""
    source = re.sub(r"(\"[^\"]*\"|'[^']*')|\^", lambda m: m.group(1) or "**", rhs)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as error:
        raise ValueError(f"cannot read {rhs!r} as an expression: {error.msg}") from None
    called = set()
    for node in ast.walk(tree):
        if not isinstance(node, _NODES) or (
                isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str))):
            raise ValueError(f"{rhs!r}: {ast.unparse(node)!r} is not allowed; use numbers, "
                             f"strings, columns, parameters, + - * / ^, comparisons and "
                             f"{', '.join(FUNCTIONS)}")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or \
                    node.keywords:
                raise ValueError(f"{rhs!r}: {ast.unparse(node.func)}() is not allowed; the "
                                 f"functions are {', '.join(FUNCTIONS)}, and the "
                                 f"self-starting models {', '.join(REGISTRY)} as the whole "
                                 f"right-hand side")
            called.add(id(node.func))
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called}
    both = sorted(set(start) & set(data.columns))
    if both:
        raise ValueError(f"{', '.join(both)}: both a column of data and a parameter in start; "
                         f"rename the parameter")
    unknown = sorted(used - set(start) - set(data.columns) - set(CONSTANTS))
    if unknown:
        raise ValueError(f"{', '.join(unknown)} in {rhs!r}: neither a column of data nor a "
                         f"parameter in start; add it to start (a parameter) or check the "
                         f"column name (columns: {', '.join(map(str, data.columns))})")
    unused = [name for name in start if name not in used]
    if unused:
        raise ValueError(f"start names {unused}, which {rhs!r} does not use: remove them "
                         f"from start")
    names = tuple(start)
    columns = tuple(sorted(used - set(start) - set(CONSTANTS)))
    code = compile(tree, "<nls formula>", "eval")

    def value(cols: dict, p: np.ndarray) -> np.ndarray:
        scope = {**FUNCTIONS, **CONSTANTS, **cols, **dict(zip(names, map(np.float64, p)))}
        with np.errstate(all="ignore"):
            out = eval(code, {"__builtins__": {}}, scope)  # noqa: S307 (checked above)
        return np.broadcast_to(np.asarray(out, float), (len(next(iter(cols.values()))),))

    return _Model(names, columns, value)


def _arrays(data: pd.DataFrame, names, label: str, check_missing: bool = False) -> dict:
    """The named columns as arrays: numbers as floats, anything else as objects (so that
    ``state == "treated"`` compares elementwise)."""
    missing = [n for n in names if n not in data.columns]
    if missing:
        raise ValueError(f"{label} has no column(s) {missing}; its columns are "
                         f"{list(data.columns)}")
    if check_missing:
        check_model_data(data, names)
        counts = data[list(dict.fromkeys(names))].isna().sum()
        if counts.any():
            raise ValueError(f"missing values in {counts[counts > 0].to_dict()}: drop those rows "
                             f"first, e.g. data.dropna(subset={list(counts[counts > 0].index)})")
    return {n: data[n].to_numpy(float) if pd.api.types.is_numeric_dtype(data[n])
            else data[n].to_numpy(object) for n in names}


# --- R-style number formatting ---------------------------------------------------------------

def _digits(x: float, digits: int) -> tuple[int, int]:
    """The significant digits (at most ``digits``) needed to show ``x``, and its exponent."""
    if x == 0 or not np.isfinite(x):
        return 1, 0
    mantissa, exponent = f"{abs(x):.{digits - 1}e}".split("e")
    return max(len(mantissa.replace(".", "").rstrip("0")), 1), int(exponent)


def _format(values, digits: int) -> list[str]:
    """Numbers as R's ``format(x, digits)``: common decimals, or scientific notation with
    common digits when that is narrower."""
    needed = [_digits(v, digits) for v in values]
    fixed = [f"{v:.{max(max(s - 1 - e, 0) for s, e in needed)}f}" for v in values]
    scientific = [f"{v:.{max(s for s, _ in needed) - 1}e}" for v in values]
    return fixed if max(map(len, fixed)) <= max(map(len, scientific)) else scientific


def _pvalues(p: np.ndarray) -> list[str]:
    """As R's ``format.pval``: p >= 0.001 and smaller ones formatted as two groups."""
    out = np.full(len(p), "<2e-16", dtype=object)
    tiny = p < np.finfo(float).eps
    for group in (~tiny & (p >= 1e-3), ~tiny & (p < 1e-3)):
        if group.any():
            out[group] = _format(p[group], 3)
    return list(out)


def _stars(p: float) -> str:
    return next(mark for cut, mark in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, "."),
                                       (np.inf, " ")) if p < cut)


def _text_table(table: pd.DataFrame) -> str:
    """R's layout: row names left, numbers right-aligned, the stars left-aligned."""
    rows = [["", *table.columns]] + [[str(i), *row] for i, row in zip(table.index,
                                                                          table.to_numpy())]
    widths = [max(len(row[j]) for row in rows) for j in range(len(rows[0]))]
    return "\n".join(" ".join([row[0].ljust(widths[0])]
                              + [c.rjust(w) for c, w in zip(row[1:-1], widths[1:-1])]
                              + [row[-1].ljust(widths[-1])]) for row in rows)
