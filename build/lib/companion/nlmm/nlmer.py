"""``nlmer``: a nonlinear mixed model by the Laplace approximation, as ``lme4::nlmer``.

The model: ``y_i = f(x_i, phi_i) + e_i``, ``e_i ~ N(0, sigma^2)``, where each row's
parameters are the fixed effects plus its group's random effects on some of them,
``phi = beta + b_g``, ``b = Lambda_theta u``, ``u ~ N(0, sigma^2 I)``. For given
``(theta, beta)`` the conditional modes ``u`` minimize the penalized residual sum of
squares ``pwrss = |y - f|^2 + |u|^2`` (penalized nonlinear least squares, Gauss-Newton),
and with ``J`` the Jacobian of ``f`` in ``u`` at the modes the Laplace deviance, profiled
over sigma, is

    D(theta, beta) = log |J'J + I| + n (1 + log(2 pi pwrss / n)),

which is minimized over ``(theta, beta)`` (lme4 does this with Nelder-Mead; here
L-BFGS-B on central differences). Standard errors come from the Hessian of ``D`` in
``(theta, beta)``. lme4's own ``vcov`` for nlmer is known to be wrong (it is two orders of
magnitude too small on Loblolly); these are the likelihood's.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from companion.engine.optimize import (OptimizationRecord, check_optimum, minimize_deviance,
                                       value_hessian, with_numerical_gradient)
from companion.engine.validate import check_model_data
from companion.nlmm.selfstart import NonlinearFormula, parse_nonlinear
from companion.results import MixedModelResult

PNLS_TOL = 1e-12  # relative change of pwrss at which the modes are converged
PNLS_MAX_ITER = 100


class NonlinearDeviance:
    """``D(theta, beta)`` for one scalar or vector random term on some parameters."""

    def __init__(self, model: NonlinearFormula, x, y, codes, levels, random: list[int]):
        self.model, self.x, self.y, self.codes = model, x, y, codes
        self.levels, self.random = levels, random
        self.m, self.k, self.p = len(levels), len(random), len(model.parameters)
        self.n_theta = self.k * (self.k + 1) // 2
        self._u = np.zeros((self.m, self.k))
        self.rows, self.cols = np.tril_indices(self.k)

    def template(self, theta) -> np.ndarray:
        T = np.zeros((self.k, self.k))  # noqa: N806
        T[self.rows, self.cols] = theta
        return T

    def lower_bounds(self) -> np.ndarray:
        bounds = np.where(self.rows == self.cols, 0.0, -np.inf)
        return np.concatenate([bounds, np.full(self.p, -np.inf)])

    def _parameters(self, beta, b):
        phi = np.tile(beta, (len(self.y), 1))
        phi[:, self.random] += b[self.codes]
        return phi

    def solve(self, point) -> dict:
        """The conditional modes by Gauss-Newton with step halving, group by group."""
        theta, beta = point[:self.n_theta], point[self.n_theta:]
        T = self.template(theta)  # noqa: N806
        u = self._u.copy()

        def evaluate(u):
            mu = self.model.model.value(self.x, self._parameters(beta, u @ T.T).T)
            return mu, float(np.sum((self.y - mu) ** 2) + np.sum(u * u))

        mu, pwrss = evaluate(u)
        for _ in range(PNLS_MAX_ITER):
            grad = self.model.model.gradient(self.x, self._parameters(beta, u @ T.T).T)
            J = grad[:, self.random] @ T  # d mu / d u_g for each row's group  # noqa: N806
            JtJ = np.zeros((self.m, self.k, self.k))  # noqa: N806
            np.add.at(JtJ, self.codes, J[:, :, None] * J[:, None, :])
            Jtr = np.zeros((self.m, self.k))  # noqa: N806
            np.add.at(Jtr, self.codes, J * (self.y - mu)[:, None])
            step = np.linalg.solve(JtJ + np.eye(self.k), (Jtr - u)[..., None])[..., 0]
            factor = 1.0
            while True:
                trial = u + factor * step
                mu_trial, pwrss_trial = evaluate(trial)
                if pwrss_trial <= pwrss or factor < 1e-10:
                    break
                factor /= 2
            converged = abs(pwrss - pwrss_trial) <= PNLS_TOL * pwrss
            u, mu, pwrss = trial, mu_trial, pwrss_trial
            if converged:
                break
        self._u = u
        grad = self.model.model.gradient(self.x, self._parameters(beta, u @ T.T).T)
        J = grad[:, self.random] @ T  # noqa: N806
        JtJ = np.zeros((self.m, self.k, self.k))  # noqa: N806
        np.add.at(JtJ, self.codes, J[:, :, None] * J[:, None, :])
        log_det = np.linalg.slogdet(JtJ + np.eye(self.k))[1].sum()
        return {"u": u, "b": u @ T.T, "mu": mu, "pwrss": pwrss, "log_det": log_det, "T": T}

    def deviance(self, state) -> float:
        n = len(self.y)
        return float(state["log_det"] + n * (1 + np.log(2 * np.pi * state["pwrss"] / n)))

    def __call__(self, point) -> float:
        try:
            return self.deviance(self.solve(np.asarray(point, float)))
        except (np.linalg.LinAlgError, FloatingPointError):
            return np.inf


_LME4_FORMULA = re.compile(r"^(.*~.*\))\s*~\s*(.*)$", re.S)
_RANDOM_TERM = re.compile(r"\(\s*([^()|]+?)\s*\|\s*([\w.]+)\s*\)")


def parse_nlmer_formula(formula: str) -> tuple[NonlinearFormula, list[str], str]:
    """lme4's three-part formula: ``y ~ Model(x, p...) ~ (p1 + p2 + ...) + (p | g)``; the
    model, the random parameters and the grouping column."""
    match = _LME4_FORMULA.match(formula)
    if not match:
        raise ValueError(f"{formula!r}: nlmer needs lme4's three-part formula, e.g. "
                         "'height ~ SSasymp(age, Asym, R0, lrc) ~ (Asym + R0 + lrc) + "
                         "(Asym | Seed)'")
    model = parse_nonlinear(match.group(1))
    terms = _RANDOM_TERM.findall(match.group(2))
    if len(terms) != 1:
        raise ValueError(f"{formula!r}: exactly one random term such as (Asym | Seed) is "
                         f"supported, found {len(terms)}")
    random = [name.strip() for name in terms[0][0].split("+")]
    fixed_part = _RANDOM_TERM.sub("", match.group(2))
    fixed = [name.strip() for name in re.sub(r"[()]", " ", fixed_part).replace("+", " ").split()]
    if sorted(fixed) != sorted(model.parameters):
        raise ValueError(f"the fixed part names {fixed}; every model parameter "
                         f"{list(model.parameters)} must have a fixed effect")
    return model, random, terms[0][1]


def nlmer(formula: str, data: pd.DataFrame, start: dict[str, float]) -> MixedModelResult:
    """Fit a nonlinear mixed model by the Laplace approximation (ML), as lme4::nlmer.

    Args:
        formula: ``"height ~ SSasymp(age, Asym, R0, lrc) ~ (Asym + R0 + lrc) +
            (Asym | Seed)"``: the model, its fixed parameters and one random term.
        data: a DataFrame with the response, the covariate and the grouping column.
        start: starting fixed effects by parameter name, as lme4's ``start``.
    """
    model, random, group = parse_nlmer_formula(formula)
    names = list(model.parameters)
    unknown = [r for r in random if r not in names]
    if unknown:
        raise ValueError(f"random effects on {unknown}, which are not parameters of "
                         f"{model.model.name}: {names}")
    if set(start) != set(names):
        raise ValueError(f"start must name exactly the parameters {names}; got "
                         f"{sorted(start)}")
    missing = [c for c in (model.response, model.covariate, group) if c not in data.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in the data")
    check_model_data(data, [model.response, model.covariate])
    frame = data[[model.response, model.covariate, group]]
    if frame.isna().any().any():
        raise ValueError("the response, covariate or grouping column has missing values; "
                         "drop those rows first")
    groups = pd.Categorical(frame[group])
    used = groups.categories[np.unique(groups.codes)]
    groups = groups.remove_unused_categories()
    deviance = NonlinearDeviance(model, frame[model.covariate].to_numpy(float),
                                 frame[model.response].to_numpy(float), groups.codes,
                                 list(used), [names.index(r) for r in random])
    beta0 = np.array([start[name] for name in names], float)
    with np.errstate(over="ignore", invalid="ignore"):
        value, gradient = (model.model.value(deviance.x, beta0),
                           model.model.gradient(deviance.x, beta0))
    if not np.all(np.isfinite(value)):
        raise ValueError("the model is not finite at the start values; change start")
    flat = np.all(~(np.abs(gradient) >= 1e-12), axis=0)  # zero or not finite
    if flat.any():
        raise ValueError(f"at the start values the model does not depend on "
                         f"{[n for n, f in zip(names, flat) if f]}; change start")
    point0 = np.concatenate([np.eye(deviance.k)[deviance.rows, deviance.cols], beta0])
    lower = deviance.lower_bounds()
    objective = with_numerical_gradient(deviance, lower)
    record = minimize_deviance(objective, point0, lower)
    check_optimum(objective, record, lower)
    return _result(formula, deviance, record, group, names, random, frame.index)


def _result(formula, deviance: NonlinearDeviance, record: OptimizationRecord, group, names,
            random, index) -> MixedModelResult:
    point = record.final
    state = deviance.solve(point)
    value = deviance.deviance(state)
    n, k, n_theta = len(deviance.y), deviance.k, deviance.n_theta
    sigma = np.sqrt(state["pwrss"] / n)
    H = value_hessian(deviance, point)  # noqa: N806
    try:
        vcov = 2 * np.linalg.inv(H)[n_theta:, n_theta:]
    except np.linalg.LinAlgError:
        raise ValueError("the deviance is flat in some direction at the optimum, so the "
                         "parameters are not identified; try other start values or a "
                         "model with fewer parameters") from None
    cov = sigma**2 * state["T"] @ state["T"].T
    rows = [(group, random[i], None, cov[i, i], np.sqrt(cov[i, i])) for i in range(k)]
    rows += [(group, random[i], random[j], cov[i, j], cov[i, j] / np.sqrt(cov[i, i] * cov[j, j]))
             for i in range(k) for j in range(i + 1, k)]
    rows.append(("Residual", None, None, sigma**2, sigma))
    theta = pd.Series(point[:n_theta], name="theta",
                      index=[f"{group}.{random[i]}" if i == j else f"{group}.{random[i]}.{random[j]}"
                             for i, j in zip(deviance.rows, deviance.cols)])
    resid = deviance.y - state["mu"]
    lower = deviance.lower_bounds()[:n_theta]
    return MixedModelResult(
        title="Nonlinear mixed model fit by maximum likelihood (Laplace approximation)",
        formula=formula, method="ML",
        fixef=pd.Series(point[n_theta:], index=names, name="fixef"),
        vcov=pd.DataFrame(vcov, index=names, columns=names),
        varcorr=pd.DataFrame(rows, columns=["group", "var1", "var2", "vcov", "sdcor"]),
        sigma=float(sigma), theta=theta, loglik=-value / 2,
        n_params=len(point) + 1, nobs=n, ngroups={group: deviance.m},
        ranef={group: pd.DataFrame(state["b"], index=pd.Index(deviance.levels, name=group),
                                   columns=random)},
        condvar={}, fitted=pd.Series(state["mu"], index=index, name="fitted"),
        resid=pd.Series(resid, index=index, name="resid"), optimization=record,
        is_singular=bool(np.any(np.isfinite(lower) & (point[:n_theta] - lower < 1e-4))),
        deviance=value, scaled_resid=pd.Series(resid / sigma, index=index, name="scaled"),
        devfun=deviance)

