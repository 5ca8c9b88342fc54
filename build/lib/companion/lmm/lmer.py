"""``lmer``: fit a linear mixed model by REML or ML, as lme4::lmer does.

Pipeline: parse the formula, build the design, check it, make the profiled deviance of
theta, optimize, check the optimum, build the result.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import scipy.linalg as la

from companion.engine.covariance import varcorr_table
from companion.engine.design import Design, build_design
from companion.engine.formula import FormulaError, parse_formula
from companion.engine.optimize import check_optimum, minimize_deviance
from companion.engine.prediction import LinearPredictor
from companion.engine.profiled import ProfiledDeviance, Solution
from companion.engine.threads import single_blas_thread
from companion.results import MixedModelResult, build_mixed_result


@single_blas_thread
def lmer(formula: str, data: pd.DataFrame, reml: bool = True, weights=None,
         offset=None, contrasts: dict | None = None) -> MixedModelResult:
    """Fit a linear mixed model with lme4's formula syntax.

    Args:
        formula: e.g. ``"Reaction ~ Days + (Days | Subject)"``; see :mod:`companion.engine.formula`.
        data: a DataFrame; factors should be pandas Categoricals (R's level order).
        reml: restricted maximum likelihood (the default, as in lme4) or ML.
        weights: prior weights, one positive number per row.
        offset: a known term added to the linear predictor, one number per row.
        contrasts: R's contrasts for some factors, e.g. ``{"f": "sum"}`` ("treatment",
            "sum", "helmert" or "poly") or ``{"f": matrix}`` (one row per level; a
            DataFrame's column names name the coefficients, as R's colnames do);
            unordered factors get treatment contrasts and ordered ones polynomial
            contrasts otherwise, as in R.
    """
    deviance = make_deviance(formula, data, reml=reml, weights=weights, offset=offset,
                             contrasts=contrasts)
    return _fit(formula, deviance)


@single_blas_thread
def _fit(formula: str, deviance: ProfiledDeviance, start=None) -> MixedModelResult:
    """Optimize (from lme4's start or ``start``), check and report one deviance (a new
    fit, an ML refit, a new response)."""
    layout = deviance.layout
    start = layout.start() if start is None else np.asarray(start, dtype=float)
    record = minimize_deviance(deviance.value_and_gradient, start, layout.lower_bounds())
    check_optimum(deviance.value_and_gradient, record, layout.lower_bounds())
    return _result(formula, deviance, record)


def _refit_response(formula: str, deviance: ProfiledDeviance, y, theta) -> MixedModelResult:
    """The same model fitted to a new response (lme4's ``refit``): the design is kept,
    only ``y`` changes, and the optimizer starts from the fit's ``theta``."""
    design = deviance.design
    y = np.asarray(y, dtype=float).ravel()
    if y.shape != design.y.shape or not np.all(np.isfinite(y)):
        raise ValueError(f"the new response must be {design.n} finite numbers, one per row "
                         f"the model used; got {y.size}")
    new = ProfiledDeviance(dataclasses.replace(design, y=y), reml=deviance.reml)
    # a start on a bound can stall there (a zero SD's gradient is zero): start inside
    start = np.maximum(theta, new.layout.lower_bounds() + 1e-3)
    return _fit(formula, new, start)


def make_deviance(formula: str, data: pd.DataFrame, reml: bool = True, weights=None,
                  offset=None, contrasts: dict | None = None) -> ProfiledDeviance:
    """The profiled deviance (ML) or REML criterion as a function of theta, without
    fitting: lme4's ``devFunOnly = TRUE``, for plotting and teaching."""
    parsed = parse_formula(formula)
    if not parsed.random:
        raise FormulaError("no random-effects terms in the formula: add one such as "
                           "(1 | group), or fit a linear model with statsmodels' ols")
    design = build_design(parsed, data, weights=weights, offset=offset, contrasts=contrasts)
    _check_identifiable(design)
    return ProfiledDeviance(design, reml=reml)


def _check_identifiable(design: Design) -> None:
    """lme4's checks that the random effects can be told apart from the residual."""
    for block in design.blocks:
        if block.n_levels >= design.n:
            raise ValueError(
                f"grouping factor {block.group!r} has {block.n_levels} levels for "
                f"{design.n} observations: each grouping factor needs fewer levels than "
                "observations, or its variance cannot be told from the residual variance")
        if block.size >= design.n:
            raise ValueError(
                f"the term ({block.term.expr} | {block.group}) has {block.size} random "
                f"effects for {design.n} observations: the random-effects parameters and "
                "the residual variance are unidentifiable")


def _random_effects(deviance: ProfiledDeviance, solution: Solution, sigma: float):
    """Conditional modes b = Lambda u per group, and their conditional covariances."""
    ranef, condvar, at = {}, {}, 0
    covariances = deviance.conditional_covariances(solution)
    for block, cov in zip(deviance.design.blocks, covariances):
        values = solution.b[at:at + block.size].reshape(block.n_levels, block.n_columns)
        frame = pd.DataFrame(values, index=pd.Index(block.levels, name=block.group),
                             columns=block.columns)
        covs = sigma**2 * cov
        if block.group in ranef:  # (x || g): one table per grouping factor, as lme4
            ranef[block.group] = ranef[block.group].join(frame)
            before = condvar[block.group]
            k, p = before.shape[1], covs.shape[1]
            joined = np.zeros((len(covs), k + p, k + p))  # no covariance between terms
            joined[:, :k, :k], joined[:, k:, k:] = before, covs
            condvar[block.group] = joined
        else:
            ranef[block.group], condvar[block.group] = frame, covs
        at += block.size
    return ranef, condvar


def _result(formula, deviance: ProfiledDeviance, record):
    design = deviance.design
    solution = deviance.solve(record.final)
    solution.pwrss = deviance.exact_pwrss(solution)
    n, p = design.X.shape
    sigma = float(np.sqrt(solution.pwrss / (n - p if deviance.reml else n)))
    rx_inv = la.solve_triangular(solution.RX, np.eye(p))
    objective = deviance.objective(solution)
    fitted = deviance.linear_predictor(solution)
    resid = design.y - fitted
    ranef, condvar = _random_effects(deviance, solution, sigma)
    reml = deviance.reml
    return build_mixed_result(
        MixedModelResult, design, theta=record.final, lower=deviance.layout.lower_bounds(),
        beta=solution.beta, vcov=sigma**2 * rx_inv @ rx_inv.T, fitted=fitted, resid=resid,
        title=f"Linear mixed model fit by {'REML' if reml else 'maximum likelihood'}",
        formula=formula, method="REML" if reml else "ML",
        varcorr=varcorr_table(design, deviance.layout, record.final, sigma), sigma=sigma,
        loglik=-objective / 2, n_params=p + deviance.layout.n_theta + 1,
        ranef=ranef, condvar=condvar, optimization=record,
        reml_criterion=objective if reml else None,
        deviance=deviance.objective(solution, reml=False),
        scaled_resid=pd.Series(resid * np.sqrt(design.weights) / sigma, index=design.rows),
        devfun=deviance, predictor=LinearPredictor(design),
        refit_ml=(lambda: _fit(formula, ProfiledDeviance(design, reml=False)))
        if reml else None,
        refitter=lambda y: _refit_response(formula, deviance, y, record.final))
