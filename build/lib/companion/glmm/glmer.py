"""``glmer``: generalized linear mixed models by the Laplace approximation or adaptive
Gauss-Hermite quadrature (lme4::glmer), and its penalized variant ``bglmer`` (blme's
default covariance prior).

The deviance of :mod:`companion.engine.laplace` is minimized over ``(theta, beta)`` jointly, with
the conditional modes solved to convergence at every step, so the optimum is the one R
reaches with tight settings (lme4's defaults stop early; the reference JSONs carry both).
Standard errors come from the Hessian of the deviance in ``(theta, beta)``, as lme4's
``vcov`` does by default.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import numpy as np
import pandas as pd
import scipy.linalg as la

from companion.engine.binomial import binomial_response
from companion.engine.covariance import theta_names, varcorr_table
from companion.engine.design import Design, build_design
from companion.engine.dispersion import GammaLaplace, NegativeBinomialLaplace
from companion.engine.families import Family, check_response, family_key
from companion.engine.families import family as make_family
from companion.engine.formula import FormulaError, ParsedFormula, parse_formula
from companion.engine.laplace import LaplaceDeviance, PirlsError
from companion.engine.optimize import (OptimizationRecord, check_optimum, minimize_deviance,
                                       value_hessian)
from companion.engine.prediction import LinearPredictor
from companion.engine.separation import warn_if_separated
from companion.engine.threads import single_blas_thread
from companion.engine.validate import check_model_data
from companion.results import GlmmResult, build_mixed_result



@single_blas_thread
def glmer(formula: str, data: pd.DataFrame, family="binomial", link: str | None = None,
          nagq: int = 1, offset=None, weights=None, theta: float | None = None,
          contrasts: dict | None = None) -> GlmmResult:
    """Fit a GLMM by maximum likelihood, with lme4's formula syntax.

    Args:
        formula: e.g. ``"cbind(incidence, size - incidence) ~ period + (1 | herd)"``; a
            binomial response is ``cbind(successes, failures)``, a 0/1 variable, or a
            proportion with the trials as ``weights``. ``offset(log(o))`` is allowed.
        family: "binomial", "poisson", "Gamma", "negative_binomial" (or a
            :class:`companion.engine.families.Family`); ``link`` overrides the canonical link.
        nagq: 1 for the Laplace approximation; more for adaptive Gauss-Hermite
            quadrature with that many nodes (a single scalar random effect only).
        theta: the negative binomial's shape; if not given it is estimated, as
            ``lme4::glmer.nb`` does (``fit.family`` shows the estimate).
        contrasts: R's contrasts for some factors, e.g. ``{"f": "sum"}`` (as
            :func:`companion.lmer`); ordered factors get polynomial contrasts otherwise.

    A Gamma model also estimates its dispersion (``fit.sigma`` is its square root, the
    coefficient of variation), and its Laplace factor uses the observed information, as
    glmmTMB does (:mod:`companion.engine.dispersion`).
    """
    return _fit(formula, data, family, link, nagq, offset, weights, theta, prior=False,
                contrasts=contrasts)


@single_blas_thread
def bglmer(formula: str, data: pd.DataFrame, family="binomial", link: str | None = None,
           offset=None, weights=None) -> GlmmResult:
    """blme::bglmer with its default covariance prior: for each random term with ``p``
    effects, a Wishart(df = p + 2.5, scale = Inf) prior, which adds
    ``-(df - p - 1) log|Sigma|`` to the deviance and keeps the fit off the boundary."""
    return _fit(formula, data, family, link, 1, offset, weights, None, prior=True)


def glmm_design(formula: str, data: pd.DataFrame, family, link=None, offset=None,
                weights=None, theta=None, contrasts=None
                ) -> tuple[Design, Family, ParsedFormula]:
    """Parse, resolve the binomial response, build and check the design."""
    fam = make_family(family, link, theta)
    parsed = parse_formula(formula)
    if not parsed.random:
        raise FormulaError("no random-effects terms in the formula: add one such as "
                           "(1 | group), or fit a GLM with statsmodels' glm")
    check_model_data(data, formula=formula)
    data = _factor_response(parsed, data, fam)
    parsed, data, weights = binomial_response(parsed, data, fam, weights)
    design = build_design(parsed, data, weights=weights, offset=offset, contrasts=contrasts)
    check_response(fam, design.y, design.weights)
    return design, fam, parsed


def _factor_response(parsed: ParsedFormula, data: pd.DataFrame, fam: Family) -> pd.DataFrame:
    """A factor response of a binomial model is 0 for its first level and 1 for the
    others, as R's ``binomial()`` takes it; any other family needs numbers."""
    column = data.get(parsed.response)
    if column is None or fam.name != "binomial" or \
            not isinstance(column.dtype, pd.CategoricalDtype):
        return data
    codes = column.cat.codes.to_numpy()
    return data.assign(**{parsed.response: np.where(codes < 0, np.nan, codes > 0)})


def _fit(formula, data, family, link, nagq, offset, weights, theta, prior, contrasts=None):
    if not isinstance(nagq, (int, np.integer)) or nagq < 1:
        raise ValueError(f"nagq must be a positive integer, not {nagq!r}")
    estimate_shape = theta is None and isinstance(family, str) and \
        family_key(family) == "negative_binomial"
    design, fam, _ = glmm_design(formula, data, family, link, offset, weights,
                                 1.0 if estimate_shape else theta, contrasts)
    return _fit_design(formula, design, fam, nagq, estimate_shape, prior)


def _fit_design(formula: str, design: Design, fam: Family, nagq: int, estimate_shape: bool,
                prior: bool) -> GlmmResult:
    """Fit, check and report the GLMM of one design (a new fit or a new response)."""
    deviance = LaplaceDeviance(design, fam, nagq)
    if fam.name == "Gamma":
        deviance = GammaLaplace(deviance)
    elif estimate_shape:
        deviance = NegativeBinomialLaplace(deviance)
    objective = deviance.value_and_gradient
    if prior:
        objective = _with_wishart_prior(deviance)
    lower = deviance.lower_bounds()
    if hasattr(deviance, "fixed_effects_stage") and not prior:
        record = _two_stage_fit(deviance, lower)
    else:
        start = _start(design, fam, deviance, prior)
        if deviance.nagq > 1 or not _ill_conditioned(deviance, *deviance.split(start)):
            # AGQ starts from the Laplace optimum (found on this scale when it matters)
            record = minimize_deviance(objective, start, lower)
        else:
            record = _minimize_scaled(objective, start, lower, deviance.n_theta,
                                      deviance.fixed_effects_scale(*deviance.split(start)))
    values = deviance if objective == deviance.value_and_gradient else None
    central = "scaled" in record.optimizer
    H = hessian(objective, record.final, record.gradient, deviance.exact_gradient, values,
                central)
    _newton_polish(objective, record, lower, H)
    warn_if_separated(design.X, design.y, design.weights, design.fixed_names,
                      deviance.split(record.final)[1], fam.name)
    check_optimum(objective, record, lower, hessian=H)
    if isinstance(deviance, NegativeBinomialLaplace):  # glmer.nb's SEs: theta_nb held fixed
        deviance.solve(record.final)
        inner = deviance.inner
        point = record.final[:-1]
        H = hessian(inner.value_and_gradient, point, inner.value_and_gradient(point)[1],
                    inner.exact_gradient, central=central)
    result = _result(formula, deviance, H, record, prior)
    if fam.name in SIMULATED_FAMILIES and not prior:
        result.refitter = partial(_refit_response, formula, design, fam, nagq)
    return result


SIMULATED_FAMILIES = ("binomial", "poisson")  # simulate, refit and bootstrap


@single_blas_thread
def _refit_response(formula: str, design: Design, fam: Family, nagq: int,
                    y) -> GlmmResult:
    """The same GLMM fitted to a new response (lme4's ``refit``), given on the model's
    scale: a binomial model's proportions of successes (its trials stay the weights)."""
    y = np.asarray(y, dtype=float).ravel()
    if y.shape != design.y.shape or not np.all(np.isfinite(y)):
        raise ValueError(f"the new response must be {design.n} finite numbers, one per row "
                         f"the model used; got {y.size}")
    new = dataclasses.replace(design, y=y)
    check_response(fam, new.y, new.weights)
    return _fit_design(formula, new, fam, nagq, False, False)


def _two_stage_fit(deviance: LaplaceDeviance, lower: np.ndarray) -> OptimizationRecord:
    """lme4's two stages, for several random terms: theta alone, with the fixed effects
    found by PIRLS beside the modes (``nAGQ = 0``); then the Laplace deviance over
    ``(theta, beta)`` from there, with ``beta = beta0 + RX^-1 z`` so that the optimizer
    works on fixed effects of comparable scale (a covariate in the hundreds beside an
    intercept near 10 otherwise stalls it far from the optimum)."""
    k = deviance.n_theta
    theta_lower = lower[:k]

    def first_stage(theta):
        try:
            value, _, _, gradient = deviance.fixed_effects_stage(theta, gradient=True)
            return value, gradient
        except (np.linalg.LinAlgError, PirlsError, FloatingPointError):
            return np.inf, np.zeros(len(theta))

    first = minimize_deviance(first_stage, deviance.layout.start(), theta_lower, rtol=1e-7)
    _, beta0, RX = deviance.fixed_effects_stage(first.final)
    second = _minimize_scaled(deviance.value_and_gradient,
                              np.concatenate([first.final, beta0]), lower, k, RX)
    return OptimizationRecord(f"{first.optimizer} (nAGQ = 0), then {second.optimizer}",
                              second.start, second.final,
                              first.evaluations + second.evaluations, second.converged,
                              second.gradient, second.message)


ILL_CONDITIONED = 100  # the fixed effects' curvature, equilibrated, beyond which they are


def _ill_conditioned(deviance, theta, beta) -> bool:  # ... optimized on the scale of RX
    """Whether the GLM's curvature in the fixed effects, ``X'WX`` at ``beta`` with its
    diagonal scaled to one, has a condition number above ``ILL_CONDITIONED`` (a covariate
    in the hundreds beside the intercept gives several hundred; dummies of a factor a few
    units)."""
    X, fam = deviance.X, deviance.family
    if X.shape[1] < 2:
        return False
    eta = deviance.offset + X @ beta
    weights = deviance.w * fam.link.mu_eta(eta) ** 2 / fam.variance(fam.link.linkinv(eta))
    curvature = X.T @ (X * weights[:, None])
    scale = np.sqrt(np.diag(curvature))
    return bool(np.linalg.cond(curvature / np.outer(scale, scale)) > ILL_CONDITIONED)


def _minimize_scaled(objective, start: np.ndarray, lower: np.ndarray, k: int,
                     RX: np.ndarray) -> OptimizationRecord:
    """Minimize with the fixed effects (``start[k:k + p]``) written ``beta0 + RX^-1 z``,
    so that the optimizer works on fixed effects of comparable scale (a covariate in the
    hundreds beside an intercept near 10 otherwise stalls it far from the optimum); the
    record is in the original parameters."""
    p = len(RX)
    beta0 = start[k:k + p]

    def to_phi(x):
        phi = np.array(x, dtype=float)
        phi[k:k + p] = beta0 + la.solve_triangular(RX, x[k:k + p])
        return phi

    def scaled(x):
        value, gradient = objective(to_phi(x))
        gradient = np.array(gradient, dtype=float)
        gradient[k:k + p] = la.solve_triangular(RX, gradient[k:k + p], trans="T")
        return value, gradient

    x0 = np.array(start, dtype=float)
    x0[k:k + p] = 0.0
    found = minimize_deviance(scaled, x0, lower)
    final = to_phi(found.final)
    return OptimizationRecord(f"{found.optimizer} (fixed effects scaled by RX)",
                              np.asarray(start, float), final,
                              found.evaluations, found.converged,
                              np.asarray(objective(final)[1], float), found.message)


def _start(design, fam, deviance, prior) -> np.ndarray:
    """Quadrature's numerical gradients are costly: start it at the Laplace optimum, which
    has exact gradients and lies close by (on sim_data 6 iterations instead of 23)."""
    start = deviance.start()
    if deviance.nagq == 1 or prior or not isinstance(deviance, LaplaceDeviance):
        return start
    laplace = LaplaceDeviance(design, fam, 1)
    if not laplace.exact_gradient:
        return start
    if not _ill_conditioned(laplace, *laplace.split(start)):
        return minimize_deviance(laplace.value_and_gradient, start,
                                 laplace.lower_bounds()).final
    return _minimize_scaled(laplace.value_and_gradient, start, laplace.lower_bounds(),
                            laplace.n_theta, laplace.fixed_effects_scale(*laplace.split(start))
                            ).final


def _newton_polish(objective, record, lower, H) -> None:
    """One Newton step on the free parameters: with many observations the deviance is
    large and the quasi-Newton stopping rule leaves digits that this step recovers."""
    free = ~(np.isfinite(lower) & (record.final - lower < 1e-4))
    if not free.any():
        return
    step = np.zeros_like(record.final)
    try:
        step[free] = np.linalg.solve(H[np.ix_(free, free)], record.gradient[free])
    except np.linalg.LinAlgError:
        return
    trial = np.maximum(record.final - step, lower)
    try:
        value, gradient = objective(trial)
    except PirlsError:  # a wild step (e.g. separated data): keep the optimizer's answer
        return
    if np.isfinite(value) and \
            np.abs(gradient[free]).max() <= np.abs(record.gradient[free]).max():
        record.final, record.gradient = trial, np.asarray(gradient, float)


def wishart_prior_deviance(deviance: LaplaceDeviance, theta: np.ndarray) -> tuple[float, np.ndarray]:
    """blme's default covariance prior (Wishart, df = p + 2.5, infinite scale, unit
    residual scale) as a deviance, ``-1.5 * 2 * sum(log diag(T))``, and its gradient."""
    value, grad, at = 0.0, np.zeros(len(theta)), 0
    for p in deviance.layout.sizes:
        rows, cols = deviance.layout.template_positions(p)
        for k, (r, c) in enumerate(zip(rows, cols)):
            if r == c:
                value -= 3.0 * np.log(theta[at + k])
                grad[at + k] = -3.0 / theta[at + k]
        at += len(rows)
    return value, grad


def _with_wishart_prior(deviance: LaplaceDeviance):
    def objective(phi):
        value, grad = deviance.value_and_gradient(phi)
        theta, _ = deviance.split(phi)
        if np.any(np.diag(deviance.layout.templates(theta)[0]) <= 0):
            return np.inf, grad
        prior_value, prior_grad = wishart_prior_deviance(deviance, theta)
        grad = grad.copy()
        grad[:len(theta)] += prior_grad
        return value + prior_value, grad

    return objective


def hessian(objective, x: np.ndarray, gradient: np.ndarray, exact: bool,
            values=None, central: bool = False) -> np.ndarray:
    """The Hessian of the objective at ``x``. With an exact gradient, its differences:
    forward ones (step 1e-6, relative error about 1e-6 on well-conditioned fixed
    effects) or, with ``central``, central ones (step 1e-5, error about 1e-10; forward
    ones moved an intercept's SE by 2e-4 beside a covariate in the hundreds). Otherwise
    central second differences of the values (step 1e-4, error about 1e-8), from
    ``values(x)`` when given (the criterion alone, without the numerical gradient
    ``objective`` would compute)."""
    n = len(x)
    out = np.zeros((n, n))
    if exact:
        for i in range(n):
            h = (1e-5 if central else 1e-6) * max(1.0, abs(x[i]))
            up, down = x.copy(), x.copy()
            up[i] += h
            if central:
                down[i] -= h
                out[:, i] = (objective(up)[1] - objective(down)[1]) / (2 * h)
            else:
                out[:, i] = (objective(up)[1] - gradient) / h
        return (out + out.T) / 2
    if values is None:
        return value_hessian(lambda point: objective(point)[0], x)
    return value_hessian(values, x)


def _result(formula, deviance: LaplaceDeviance, H, record, prior):
    design, fam = deviance.design, deviance.family
    phi = record.final
    state = deviance.solve(phi)
    laplace = deviance.deviance(state)
    theta, beta = deviance.split(phi)
    vcov_all = 2 * np.linalg.inv(H)  # a small symmetric matrix, not a factor
    k, p = deviance.n_theta, len(beta)
    sigma = np.sqrt(deviance.parameter(phi)) if fam.name == "Gamma" else 1.0
    loglik = -laplace / 2 + deviance.saturated_loglik()
    ranef, condvar = _random_effects(deviance, state)
    mu = state["mu"]
    pearson = (design.y - mu) * np.sqrt(design.weights / fam.variance(mu)) / sigma
    dev_resid = np.sign(design.y - mu) * np.sqrt(np.maximum(state["dev"], 0))
    method = "Laplace" if deviance.nagq == 1 else f"AGQ({deviance.nagq})"
    approx = ("Laplace Approximation" if deviance.nagq == 1 else
              f"Adaptive Gauss-Hermite Quadrature, nAGQ = {deviance.nagq}")
    title = (f"Generalized linear mixed model fit by maximum likelihood ({approx})\n"
             f" Family: {fam}")
    if prior:
        groups = ", ".join(f"{b.group} ~ wishart(df = {b.n_columns + 2.5}, scale = Inf, "
                           "posterior.scale = cov, common.scale = TRUE)"
                           for b in design.blocks)
        prior_dev = wishart_prior_deviance(deviance, theta)[0]
        title = f"Cov prior : {groups}\nPrior dev : {prior_dev:.4f}\n\n{title}"
    return build_mixed_result(
        GlmmResult, design, theta=theta, lower=deviance.lower_bounds()[:k], beta=beta,
        vcov=vcov_all[k:k + p, k:k + p], fitted=mu, resid=dev_resid,
        title=title, formula=formula, method=method,
        varcorr=_glmm_varcorr(design, deviance.layout, theta, sigma, fam), sigma=sigma,
        vcov_theta=pd.DataFrame(vcov_all[:k, :k], index=theta_names(design),
                                columns=theta_names(design)),
        loglik=loglik, n_params=len(phi), ranef=ranef, condvar=condvar,
        optimization=record, deviance=float(np.sum(state["dev"])),
        scaled_resid=pd.Series(pearson, index=design.rows, name="pearson"),
        devfun=deviance, predictor=LinearPredictor(design), family=str(fam),
        link_inverse=fam.link.linkinv,
        prior_deviance=float(wishart_prior_deviance(deviance, theta)[0]) if prior else None)


def _glmm_varcorr(design, layout, theta, sigma, fam) -> pd.DataFrame:
    """The random effects' variances (theta is on the scale of the linear predictor, not
    relative to sigma), and the residual row only for a family with a dispersion."""
    table = varcorr_table(design, layout, theta, 1.0)
    if fam.name != "Gamma":
        return table.iloc[:-1].reset_index(drop=True)
    table.loc[table.index[-1], ["vcov", "sdcor"]] = sigma**2, sigma
    return table


def _random_effects(deviance: LaplaceDeviance, state):
    ranef, condvar, at = {}, {}, 0
    values_all = deviance.random_effects(state)
    for block, cov in zip(deviance.design.blocks, deviance.conditional_covariances(state)):
        values = values_all[at:at + block.size].reshape(block.n_levels, block.n_columns)
        frame = pd.DataFrame(values, index=pd.Index(block.levels, name=block.group),
                             columns=block.columns)
        if block.group in ranef:
            ranef[block.group] = ranef[block.group].join(frame)
        else:
            ranef[block.group], condvar[block.group] = frame, cov
        at += block.size
    return ranef, condvar
