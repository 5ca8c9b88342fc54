"""The h-likelihood fit of R's ``hglm::hglm`` (method "EQL", Gaussian random effects).

hglm (Lee, Nelder & Pawitan 2006; Ronnegard, Shen & Alam 2010) fits the fixed effects
beta and the random effects v jointly, by iteratively weighted least squares on the
augmented GLM

    [y  ]   [X  Z] [beta]      weights  [mu_eta^2 / (V(mu) tau)]
    [psi] ~ [0  I] [v   ],              [1 / lambda            ],     psi = 0,

and then estimates the two dispersions by extended quasi-likelihood: gamma GLMs (log link)
on the deviance components ``d_i / (1 - h_i)`` with weights ``(1 - h_i) / 2``, ``h`` the
hat values of the augmented fit. With intercept-only dispersion models these are
``tau = sum(d_y) / sum(1 - h_y)`` (so a Poisson model gets a residual dispersion too, as
hglm does unless ``fix.disp`` is given) and ``lambda = sum(v^2) / sum(1 - h_v)``.
The outer loop stops when ``sum((eta_old - eta)^2) < conv * sum(eta^2)`` after at least
two rounds, as ``hglm.default`` does. As in hglm, the standard errors of beta and v come
from the last augmented least-squares step (so from the dispersions of the round before
the last), ``(T' W T)^-1``; those of log(tau) and log(lambda) are the gamma GLMs' with
dispersion 1, ``sqrt(2 / sum(1 - h))``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from companion.engine.laplace import glm_fit
from companion.engine.prediction import LinearPredictor
from companion.glmm.glmer import glmm_design
from companion.results import ModelResult
from companion.results.protocol import VARCORR_COLUMNS


@dataclass(repr=False)
class HglmResult(ModelResult):
    """hglm's EQL fit under the shared names. ``ranef_values`` and ``ranef_se`` are the
    random effects and their SEs under hglm's printed labels (group and level, ``g1``);
    ``ranef`` has them per grouping factor, as lme4's. EQL has no likelihood: ``loglik``,
    ``aic`` and ``bic`` are NaN."""

    formula: str
    fixef: pd.Series
    vcov: pd.DataFrame
    ranef_values: pd.Series
    ranef_se: pd.Series
    varfix: float  # "Dispersion parameter for the mean model" (tau)
    varranef: np.ndarray  # "Dispersion parameter for the random effects" (lambda), per term
    log_varfix: tuple[float, float]  # (estimate, SE) of log(tau)
    log_varranef: list[tuple[float, float]]  # (estimate, SE) of log(lambda), per term
    df_resid: int  # "P-values are based on ... degrees of freedom"
    iterations: int
    converged: bool
    nobs: int
    varcorr: pd.DataFrame
    blocks: list = field(repr=False, default_factory=list)  # (group, levels) per term
    loglik: float = float("nan")
    predictor: LinearPredictor | None = field(default=None, repr=False)
    link_inverse: Callable | None = field(default=None, repr=False)
    title = "Hierarchical GLM fit by extended quasi-likelihood (hglm, EQL)"

    @property
    def n_params(self) -> int:
        """The fixed effects, the mean model's dispersion and one variance per term."""
        return len(self.fixef) + 1 + len(self.varranef)

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        out, at = {}, 0
        for group, levels in self.blocks:
            values = self.ranef_values.to_numpy()[at:at + len(levels)]
            out[group] = pd.DataFrame({"(Intercept)": values},
                                      index=pd.Index(levels, name=group))
            at += len(levels)
        return out


def hglm(formula: str, data: pd.DataFrame, family="poisson", link: str | None = None,
         offset=None, conv: float = 1e-6, maxit: int = 50) -> HglmResult:
    """``hglm::hglm(fixed, random, family, offset, data)`` with the EQL method.

    Args:
        formula: lme4 syntax, e.g. ``"y ~ x1 + x2 + (1 | g)"``; each random term gets its
            own variance (Gaussian random effects). ``offset(log(o))`` is allowed.
        family, link: the response's GLM family (``companion.family``).
        offset: one number per row, added to the formula's offsets.
    """
    design, fam, _ = glmm_design(formula, data, family, link, offset=offset)
    if any(block.n_columns != 1 for block in design.blocks):
        raise ValueError("hglm takes scalar random terms such as (1 | g), one variance each")
    X, y, off, pw = design.X, design.y, design.offset, design.weights
    Z = design.Z
    n, p = X.shape
    q = Z.shape[1]
    sizes = [block.size for block in design.blocks]
    term = np.repeat(np.arange(len(sizes)), sizes)
    linkinv, mu_eta, variance = fam.link.linkinv, fam.link.mu_eta, fam.variance

    beta = glm_fit(X, y, pw, off, fam)
    mu = linkinv(X @ beta + off)
    dev0 = float(np.sum(fam.dev_resid(y, mu, pw)))
    tau0 = 0.6 * dev0 / (n - p)
    lam0 = tau0 * 0.66 / (len(sizes) if len(sizes) > 1 else 1)
    tau = np.full(n, tau0)
    lam = np.full(q, lam0)
    v = np.zeros(q)
    T = np.block([[X, Z], [np.zeros((q, p)), np.eye(q)]])
    eta = X @ beta + off
    w = np.sqrt(np.r_[mu_eta(eta) ** 2 / variance(linkinv(eta)) / tau, 1 / lam]
                * np.r_[pw, np.ones(q)])
    eta_old = eta
    converged = False
    for iteration in range(1, maxit + 1):
        beta, v, eta, w_step, w, hv = _augmented_irls(T, X, Z, y, off, pw, beta, v, tau, lam,
                                                      fam, maxit)
        mu = linkinv(eta)
        dev = np.r_[fam.dev_resid(y, mu, pw), v**2]
        dev = np.maximum(dev, 1e-8)
        hv = np.minimum(hv, 1 - 1e-8)
        one_minus = 1 - hv
        tau_hat = np.sum(dev[:n]) / np.sum(one_minus[:n])
        log_tau = (np.log(tau_hat), np.sqrt(2 / np.sum(one_minus[:n])))
        tau = np.full(n, tau_hat)
        log_lam = []
        for k in range(len(sizes)):
            cols = n + np.flatnonzero(term == k)
            lam_k = np.sum(dev[cols]) / np.sum(one_minus[cols])
            lam[term == k] = lam_k
            log_lam.append((np.log(lam_k), np.sqrt(2 / np.sum(one_minus[cols]))))
        if np.sum((eta_old - eta) ** 2) < conv * np.sum(eta**2) and iteration > 1:
            converged = True
            break
        w = np.sqrt(np.r_[mu_eta(eta) ** 2 / variance(mu) / tau, 1 / lam]
                    * np.r_[pw, np.ones(q)])
        eta_old = eta
    if not converged:
        raise RuntimeError(f"hglm's EQL iteration did not converge in {maxit} rounds")
    cov = np.linalg.inv((T * w_step[:, None] ** 2).T @ T)
    se = np.sqrt(np.diag(cov))
    w_end = w  # hglm's g.mme$wt: the weights after the last step, observation rows
    Pd = np.trace(cov @ (T[:n] * w_end[:n, None] ** 2).T @ T[:n])
    names = design.fixed_names
    labels = [f"{block.group}{level}" for block in design.blocks for level in block.levels]
    varranef = np.array([np.exp(lv[0]) for lv in log_lam])
    varcorr = pd.DataFrame([(block.group, "(Intercept)", None, lam_k, np.sqrt(lam_k))
                            for block, lam_k in zip(design.blocks, varranef)],
                           columns=VARCORR_COLUMNS)
    return HglmResult(
        formula=formula, fixef=pd.Series(beta, index=names, name="fixef"),
        vcov=pd.DataFrame(cov[:p, :p], index=names, columns=names),
        ranef_values=pd.Series(v, index=labels), ranef_se=pd.Series(se[p:], index=labels),
        varfix=float(tau[0]), varranef=varranef, log_varfix=tuple(map(float, log_tau)),
        log_varranef=[tuple(map(float, lv)) for lv in log_lam],
        df_resid=int(round(n - Pd)), iterations=iteration, converged=converged, nobs=n,
        varcorr=varcorr, blocks=[(block.group, list(block.levels)) for block in design.blocks],
        predictor=LinearPredictor(design), link_inverse=fam.link.linkinv)


def _augmented_irls(T, X, Z, y, off, pw, beta, v, tau, lam, fam, maxit, tol=1e-7):
    """hglm's ``GLM.MME``: IWLS on the augmented model to ``sum(d eta^2) < tol sum(eta^2)``.

    Returns beta, v, eta, the weights of the last least-squares solve (hglm's QR, used for
    the hat values and the covariance), the weights after it, and the hat values."""
    n = len(y)
    linkinv, mu_eta, variance = fam.link.linkinv, fam.link.mu_eta, fam.variance
    eta = X @ beta + Z @ v + off
    mu = linkinv(eta)
    # psi = 0 and the identity link: the working response of v is v + (psi - v) = 0
    z = np.r_[eta - off + (y - mu) / mu_eta(eta), np.zeros(len(v))]
    w = np.sqrt(np.r_[mu_eta(eta) ** 2 / variance(mu) / tau, 1 / lam]
                * np.r_[pw, np.ones(len(v))])
    eta0 = eta
    for _ in range(maxit):
        Q, R = np.linalg.qr(T * w[:, None])
        est = np.linalg.solve(R, Q.T @ (z * w))
        w_solve = w
        beta, v = est[:X.shape[1]], est[X.shape[1]:]
        eta = X @ beta + Z @ v + off
        mu = linkinv(eta)
        d_mu = mu_eta(eta)
        z = np.r_[eta - off + (y - mu) / d_mu, np.zeros(len(v))]
        w = np.sqrt(np.r_[d_mu**2 / variance(mu) / tau, 1 / lam] * np.r_[pw, np.ones(len(v))])
        if np.sum((eta0 - eta) ** 2) < tol * np.sum(eta**2):
            break
        eta0 = eta
    hv = np.sum(Q**2, axis=1)
    assert len(hv) == n + len(v)
    return beta, v, eta, w_solve, w, hv
