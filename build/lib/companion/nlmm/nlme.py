"""``nlme``: fit a nonlinear mixed model as ``nlme::nlme`` does (chapter 8.3).

::

    nlme("height ~ SSasymp(age, Asym, R0, lrc)", Loblolly, random=["Asym"],
         groups="Seed", start={"Asym": 103, "R0": -8.5, "lrc": -3.3})

is R's ``nlme(height ~ SSasymp(age, Asym, R0, lrc), data = Loblolly, fixed = Asym + R0 +
lrc ~ 1, random = Asym ~ 1, start = c(Asym = 103, R0 = -8.5, lrc = -3.3))``: every
parameter has a fixed effect (``fixed = ... ~ 1``; covariates in the fixed effects are
not supported), those in ``random`` also a random effect per level of ``groups`` (one
grouping factor), with a general (``cov="full"``, pdLogChol) or diagonal (``cov="diag"``,
pdDiag) covariance. The fit is nlme's alternating algorithm, step for step
(:mod:`companion.nlmm.nlme_fit`), so that estimates, standard errors, log-likelihood and the
number of iterations are nlme's. The model is one of :mod:`companion.nlmm.selfstart`'s; its
value and gradient are evaluated with one set of parameters per row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from companion.engine.validate import check_model_data
from companion.nlmm.nlme_fit import Control, Problem, alternate
from companion.nlmm.nlme_lmm import CovarianceForm
from companion.nlmm.nlme_result import NlmeResult, Spec, build_result
from companion.nlmm.selfstart import parse_nonlinear


def nlme(formula: str, data: pd.DataFrame, random: str | Sequence[str], groups: str,
         start: Mapping[str, float], cov: str = "full", method: str = "ML", *,
         tolerance: float = 1e-5, max_iter: int = 50) -> NlmeResult:
    """Fit a nonlinear mixed model by ML (nlme's default) or REML.

    Args:
        formula: ``"response ~ Model(covariate, p1, p2, ...)"`` with a self-starting
            model of :mod:`companion.nlmm.selfstart`.
        data: a DataFrame; a categorical ``groups`` column keeps its level order.
        random: the parameters with a random effect, e.g. ``["Asym", "lrc"]``.
        groups: the grouping column.
        start: a starting value for every parameter's fixed effect, by name.
        cov: ``"full"`` (pdLogChol) or ``"diag"`` (pdDiag) covariance of the random effects.
        method: ``"ML"`` or ``"REML"``.
        tolerance, max_iter: nlme's convergence tolerance and maximum of iterations.
    """
    if method not in ("ML", "REML"):
        raise ValueError(f"method must be 'ML' or 'REML', not {method!r}")
    if cov not in ("full", "diag"):
        raise ValueError(f"cov must be 'full' (pdLogChol) or 'diag' (pdDiag), not {cov!r}")
    parsed = parse_nonlinear(formula)
    names = parsed.parameters
    random = _random_parameters(random, names)
    beta = _start_values(start, names)
    frame = _model_frame(data, [parsed.response, parsed.covariate], groups)
    codes, levels = _group_codes(frame[groups])
    order = np.argsort(codes, kind="stable")  # nlme sorts the rows by group
    problem = Problem(parsed.model, frame[parsed.covariate].to_numpy(float)[order],
                      frame[parsed.response].to_numpy(float)[order], codes[order],
                      np.array([names.index(name) for name in random]),
                      CovarianceForm(len(random), cov == "diag"))
    with np.errstate(all="ignore"):
        at_start = problem.residuals(beta, np.zeros((len(levels), len(random))))
    if not np.all(np.isfinite(at_start)):
        bad = np.flatnonzero(~np.isfinite(at_start))
        raise ValueError(f"the model is not finite at the starting values in "
                         f"{len(bad)} rows (first: row {frame.index[order[bad[0]]]!r}); "
                         "choose other starting values")
    fit = alternate(problem, beta, method == "REML", Control(tolerance, max_iter))
    result = build_result(fit, problem, Spec(formula, parsed, random, groups, levels, method,
                                             beta, frame.index, order))
    if method == "REML":
        result.refit_ml = lambda: nlme(formula, data, random, groups, start, cov, "ML",
                                       tolerance=tolerance, max_iter=max_iter)
    return result


def _random_parameters(random, names: tuple[str, ...]) -> list[str]:
    random = [random] if isinstance(random, str) else list(random)
    if not random:
        raise ValueError("random names no parameter: give at least one, e.g. "
                         f"random=[{names[0]!r}]")
    unknown = [name for name in random if name not in names]
    if unknown:
        raise ValueError(f"random effect(s) {unknown} are not parameters of the model; "
                         f"its parameters are {list(names)}")
    if len(set(random)) != len(random):
        raise ValueError(f"random names a parameter twice: {random}")
    return random


def _start_values(start, names: tuple[str, ...]) -> np.ndarray:
    if not isinstance(start, Mapping):
        raise TypeError("start must map each parameter to its starting value, e.g. "
                        + str({name: 1.0 for name in names}))
    missing = [name for name in names if name not in start]
    extra = [name for name in start if name not in names]
    if missing or extra:
        raise ValueError(f"start must give exactly the model's parameters {list(names)}; "
                         + (f"missing {missing}" if missing else "")
                         + ("; " if missing and extra else "")
                         + (f"not parameters: {extra}" if extra else ""))
    beta = np.array([start[name] for name in names], dtype=float)
    if not np.all(np.isfinite(beta)):
        raise ValueError(f"start values must be finite numbers, got {dict(start)}")
    return beta


def _model_frame(data, numeric: list[str], groups: str) -> pd.DataFrame:
    """The used columns, checked: present, numeric where they must be, no missing value
    (R's ``na.action = na.fail``)."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    for column in [*numeric, groups]:
        if column not in data.columns:
            raise KeyError(f"column {column!r} is not in the data; its columns are "
                           f"{list(data.columns)}")
    for column in numeric:
        if not pd.api.types.is_numeric_dtype(data[column]):
            raise TypeError(f"column {column!r} must be numeric, not {data[column].dtype}")
    check_model_data(data, numeric)
    frame = data[[*dict.fromkeys([*numeric, groups])]]
    missing = frame.isna().sum()
    if missing.any():
        counts = ", ".join(f"{name} ({count})" for name, count in missing.items() if count)
        raise ValueError(f"missing values in the model's columns: {counts}; nlme stops "
                         "on them (na.fail): drop those rows first")
    return frame


def _group_codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes and levels in R's order: a categorical's own, sorted values otherwise;
    unused levels dropped."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype(pd.CategoricalDtype(sorted(column.unique())))
    column = column.cat.remove_unused_categories()
    levels = [str(level) for level in column.cat.categories]
    if len(levels) < 2:
        raise ValueError(f"the grouping column {column.name!r} has {len(levels)} level; "
                         "random effects need at least 2 groups")
    return column.cat.codes.to_numpy().astype(np.int64), levels
