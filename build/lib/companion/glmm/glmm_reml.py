"""Restricted (REML) Laplace fit of a GLMM: glmmTMB's ``REML = TRUE``, which is also what
mgcv's ``gam(..., s(g, bs = "re"), method = "REML")`` maximizes.

The fixed effects are integrated out with the random effects: for each ``theta`` the joint
mode ``(u, beta)`` of ``h = sum of deviance residuals + u'u`` is found by Newton steps and

    -log L_R(theta) = h/2 + log|H|/2 - (saturated log-likelihood) - (p/2) log(2 pi),

with ``H`` the joint Fisher information of ``(u, beta)`` (its Laplace approximation).
Standard errors of ``beta`` are TMB's: the joint inverse information plus the delta-method
term for the uncertainty of ``theta``; mgcv's (conditional on ``theta``) are in
``vcov_conditional``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from scipy.linalg import lapack

from companion.engine.covariance import varcorr_table
from companion.engine.laplace import PirlsError, glm_fit, newton_with_halving
from companion.engine.optimize import (check_optimum, minimize_deviance, value_hessian,
                                       with_numerical_gradient)
from companion.engine.prediction import LinearPredictor
from companion.engine.profiled import ThetaLayout
from companion.glmm.glmer import glmm_design
from companion.results import GlmmRemlResult, build_mixed_result


class RestrictedLaplace:
    """``-2 log L_R`` as a function of theta, with the joint modes warm-started."""

    def __init__(self, design, fam):
        self.design, self.family = design, fam
        self.layout = ThetaLayout([b.n_columns for b in design.blocks],
                                  [b.n_levels for b in design.blocks])
        self.Z, self.X = design.Z, design.X
        self.q, self.p = self.Z.shape[1], self.X.shape[1]
        self._mode = np.concatenate([np.zeros(self.q), glm_fit(
            self.X, design.y, design.weights, design.offset, fam)])
        self.saturated = fam.loglik(design.y, np.clip(design.y, 1e-300, 1 - 1e-16),
                                    design.weights) if fam.name == "binomial" else \
            fam.loglik(design.y, design.y, design.weights)

    def solve(self, theta) -> dict:
        fam, y, w = self.family, self.design.y, self.design.weights
        A = np.hstack([self.Z @ self.layout.lambda_matrix(np.asarray(theta, float)), self.X])
        penalty = np.r_[np.ones(self.q), np.zeros(self.p)]
        x = self._mode.copy()

        def evaluate(x):
            eta = self.design.offset + A @ x
            mu = fam.link.linkinv(eta)
            return eta, mu, float(fam.dev_resid(y, mu, w).sum() + x[:self.q] @ x[:self.q])

        def newton_step(x, state):
            eta, mu, _ = state
            d_mu = fam.link.mu_eta(eta)
            W = w * d_mu**2 / fam.variance(mu)
            L, info = lapack.dpotrf(A.T @ (A * W[:, None]) + np.diag(penalty), lower=1)
            if info:
                raise np.linalg.LinAlgError("the joint information is not positive definite")
            score = A.T @ (-w * (y - mu) * d_mu / fam.variance(mu)) + penalty * x
            return lapack.dpotrs(L, score, lower=1)[0]

        x, (eta, mu, h) = newton_with_halving(evaluate, newton_step, x, 1e-10)
        self._mode = x
        d_mu = fam.link.mu_eta(eta)
        W = w * d_mu**2 / fam.variance(mu)
        H = A.T @ (A * W[:, None]) + np.diag(penalty)
        L, _ = lapack.dpotrf(H, lower=1)
        return {"x": x, "h": h, "L": L, "mu": mu, "eta": eta,
                "Lambda": self.layout.lambda_matrix(np.asarray(theta, float))}

    def criterion(self, state) -> float:
        """``-2 log L_R``."""
        return (state["h"] + 2 * np.log(np.diag(state["L"])).sum() - 2 * self.saturated
                - self.p * np.log(2 * np.pi))

    def __call__(self, theta) -> float:
        try:
            return self.criterion(self.solve(theta))
        except (np.linalg.LinAlgError, PirlsError):
            return np.inf


def glmer_reml(formula: str, data: pd.DataFrame, family="binomial", link: str | None = None,
               offset=None, weights=None) -> GlmmRemlResult:
    """Fit a GLMM by the restricted Laplace approximation (glmmTMB ``REML = TRUE``; mgcv's
    ``bs = "re"`` smooth with ``method = "REML"``). ``fit.vcomp`` is gam.vcomp's table:
    each standard deviation with its 95% interval from the curvature on the log scale."""
    design, fam, _ = glmm_design(formula, data, family, link, offset, weights)
    restricted = RestrictedLaplace(design, fam)
    lower = restricted.layout.lower_bounds()
    objective = with_numerical_gradient(restricted, lower)
    record = minimize_deviance(objective, restricted.layout.start(), lower)
    check_optimum(objective, record, lower)
    theta = record.final
    state = restricted.solve(theta)
    q, p = restricted.q, restricted.p
    names = design.fixed_names
    joint = lapack.dpotri(state["L"], lower=1)[0]
    joint = np.tril(joint) + np.tril(joint, -1).T  # H^-1
    vcov_mgcv = joint[q:, q:]
    # delta method for theta (TMB's sdreport): J Var(theta) J'
    k = len(theta)
    J = np.zeros((p, k))
    curvature = value_hessian(restricted, theta) / 2  # of -log L_R
    for i in range(k):
        h = 1e-5 * max(1.0, abs(theta[i]))
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        J[:, i] = (restricted.solve(up)["x"][q:] - restricted.solve(down)["x"][q:]) / (2 * h)
    restricted.solve(theta)
    var_theta = np.linalg.inv(curvature)
    vcov = vcov_mgcv + J @ var_theta @ J.T
    beta = state["x"][q:]
    criterion = restricted.criterion(state)
    result = build_mixed_result(
        GlmmRemlResult, design, theta=theta, lower=restricted.layout.lower_bounds(),
        beta=beta, vcov=vcov, fitted=state["mu"], resid=design.y - state["mu"],
        title="Generalized linear mixed model fit by REML (Laplace approximation, fixed "
              f"effects integrated out)\n Family: {fam}",
        formula=formula, method="REML-Laplace",
        varcorr=varcorr_table(design, restricted.layout, theta, 1.0).iloc[:-1]
        .reset_index(drop=True),
        sigma=1.0, loglik=-criterion / 2, n_params=p + k,
        ranef=_ranef(design, state), condvar={},
        optimization=record, reml_criterion=criterion, family=str(fam),
        predictor=LinearPredictor(design), link_inverse=fam.link.linkinv,
        vcov_conditional=pd.DataFrame(vcov_mgcv, index=names, columns=names),
        vcomp=_vcomp(design, theta, curvature),
        gam_summary=_gam_summary(design, fam, state, joint, criterion),
        residual_df=design.n - k)  # glmmTMB's df.resid: only theta is optimized outside
    return result


def _vcomp(design, theta, curvature) -> pd.DataFrame:
    """gam.vcomp: for scalar terms, sd = theta and a Wald interval on log(sd)."""
    rows = []
    z = stats.norm.ppf(0.975)
    at = 0
    for block in design.blocks:
        if block.n_columns == 1:
            sd = theta[at]
            var_log = np.linalg.inv(curvature)[at, at] / sd**2  # delta method, log scale
            half = z * np.sqrt(var_log)
            rows.append((f"s({block.group})", sd, sd * np.exp(-half), sd * np.exp(half)))
        at += block.n_columns * (block.n_columns + 1) // 2
    return pd.DataFrame(rows, columns=["term", "std.dev", "lower", "upper"]).set_index("term")


def _gam_summary(design, fam, state, joint, criterion) -> dict:
    """summary.gam's statistics of the fit as a random-effect smooth: each term's effective
    degrees of freedom (the trace of its block of ``H^-1 A'WA``, which is its number of
    coefficients minus the trace of its block of ``H^-1``, the penalty being the identity
    in the scaled parameterization), the deviance explained against the intercept-only
    GLM, the adjusted R-squared with prior weights, and -REML."""
    y, w = design.y, design.weights
    edf, at = {}, 0
    for block in design.blocks:
        inverse = np.diag(joint)[at:at + block.size]
        edf[f"s({block.group})"] = float(block.size - inverse.sum())
        at += block.size
    null_fit = glm_fit(np.ones((design.n, 1)), y, w, design.offset, fam)
    null_mu = fam.link.linkinv(design.offset + null_fit[0])
    deviance = fam.dev_resid(y, state["mu"], w).sum()
    null_deviance = fam.dev_resid(y, null_mu, w).sum()
    mean_y = np.sum(w * y) / np.sum(w)
    residual_df = design.n - design.X.shape[1] - sum(edf.values())
    r_sq = 1 - (np.var(np.sqrt(w) * (y - state["mu"]), ddof=1) * (design.n - 1)
                / (np.var(np.sqrt(w) * (y - mean_y), ddof=1) * residual_df))
    return {"edf": edf, "dev_expl": float(1 - deviance / null_deviance),
            "r_sq_adj": float(r_sq), "neg_REML": float(criterion / 2)}


def _ranef(design, state) -> dict:
    b = state["Lambda"] @ state["x"][:state["Lambda"].shape[0]]
    out, at = {}, 0
    for block in design.blocks:
        values = b[at:at + block.size].reshape(block.n_levels, block.n_columns)
        frame = pd.DataFrame(values, index=pd.Index(block.levels, name=block.group),
                             columns=block.columns)
        out[block.group] = out[block.group].join(frame) if block.group in out else frame
        at += block.size
    return out
