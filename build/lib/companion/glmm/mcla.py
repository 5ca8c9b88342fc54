"""Monte Carlo likelihood approximation (MCLA) for a Poisson random-intercept GLMM, as
R's ``glmm`` package (Knudson & Geyer) does it.

One sample b^(1..m) of the whole random-effect vector is drawn from a proposal h, and
the likelihood L(beta, nu) = int f(y | b; beta) phi(b; 0, nu I) db is replaced by the
importance-sampling average

    L_m(beta, nu) = 1/m sum_k f(y | b^(k); beta) phi(b^(k); 0, nu I) / h(b^(k)),

the *same* sample for every (beta, nu), so L_m is a smooth function that is maximized
like a likelihood (here BFGS on (beta, log nu); glmm uses a trust region). As in glmm the
proposal comes from a cheap pilot fit (glmm: PQL; here the Laplace fit of
:mod:`companion.glmm.ghq`): independent scaled t (``df``) around the pilot's conditional
modes with the pilot's conditional SDs. glmm samples the joint vector (here 25
dimensions), not cluster by cluster, and so does this module.

The result is random. :func:`mcla` reports the effective sample size of the importance
weights at the optimum, the usual standard errors (inverse Hessian of log L_m), and, with
``replicates > 1``, the Monte Carlo standard deviation of every estimate across
independent samples: the Monte Carlo error the comparisons are made within.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.special import logsumexp

from companion.engine.prediction import LinearPredictor
from companion.glmm.ghq import (PoissonInterceptData, glmmml, intercept_varcorr,
                                numerical_hessian)
from companion.results import ModelResult


@dataclass(repr=False)
class MclaResult(ModelResult):
    """glmm's Monte Carlo likelihood fit under the shared names: ``loglik`` is log L_m at
    the optimum (log y! included), ``nu`` the random intercept's variance."""

    formula: str
    fixef: pd.Series
    vcov: pd.DataFrame
    nu: float  # variance of the random intercept ("Variance Components" in glmm)
    nu_se: float
    loglik: float
    nobs: int
    ess: float  # effective sample size of the importance weights at the optimum
    m: int
    replicates: pd.DataFrame  # one row per independent sample (coefs and nu)
    mc_sd: pd.Series  # Monte Carlo SD of each estimate across the replicates
    varcorr: pd.DataFrame
    ranef: dict = field(default_factory=dict)  # glmm reports no conditional modes
    predictor: LinearPredictor | None = field(default=None, repr=False)
    link_inverse = staticmethod(np.exp)

    @property
    def title(self) -> str:
        return (f"Poisson GLMM fit by Monte Carlo likelihood approximation as glmm "
                f"(m = {self.m})")

    @property
    def n_params(self) -> int:
        return len(self.fixef) + 1


def _fit_one(d: PoissonInterceptData, mode, sd, m, df, rng, x0):
    q = d.q
    t = stats.t.rvs(df, size=(m, q), random_state=rng)
    b = mode[None, :] + sd[None, :] * t
    log_h = np.sum(stats.t.logpdf(t, df) - np.log(sd)[None, :], axis=1)
    sy_b = b @ d.sum_y  # sum_i sum_y_i b_ik
    eb = np.exp(b)
    b2 = np.sum(b * b, axis=1)

    def log_weights(x):
        beta, nu = x[:-1], np.exp(x[-1])
        eta = d.X @ beta + d.offset
        base = np.bincount(d.codes, weights=np.exp(eta), minlength=q)
        ye = float(d.y @ eta)
        return (ye + sy_b - eb @ base - b2 / (2 * nu) - q / 2 * np.log(2 * np.pi * nu) - log_h)

    def loglik(x):
        return float(logsumexp(log_weights(x)) - np.log(m)) + d.const

    fit = optimize.minimize(lambda x: -loglik(x), x0, method="BFGS", options={"gtol": 1e-7})
    lw = log_weights(fit.x)
    w = np.exp(lw - lw.max())
    ess = float(w.sum() ** 2 / np.sum(w * w))
    return fit.x, loglik, ess


def mcla(formula: str, data: pd.DataFrame, offset=None, m: int = 10_000, df: float = 5.0,
         seed: int = 2023, replicates: int = 1) -> MclaResult:
    """Maximize the Monte Carlo likelihood of ``y ~ x + (1 | g)`` (Poisson, log link).

    Args:
        m: the Monte Carlo sample size (glmm's ``m``; the chapter uses 10^4).
        df: degrees of freedom of the t proposal.
        seed: for ``numpy.random.default_rng``; replicate r uses ``seed + r``.
        replicates: independent samples, to measure the Monte Carlo error.
    """
    if int(m) != m or m < 10:
        raise ValueError(f"m must be an integer of at least 10, not {m!r}")
    if int(replicates) != replicates or replicates < 1:
        raise ValueError(f"replicates must be a positive integer, not {replicates!r}")
    pilot = glmmml(formula, data, offset=offset)
    d = PoissonInterceptData(formula, data, offset)
    beta, sigma = pilot.fixef.to_numpy(), pilot.sigma
    eta = d.X @ beta + d.offset
    base = np.bincount(d.codes, weights=np.exp(eta), minlength=d.q)
    mode = sigma * pilot.posterior_modes  # b = sigma u
    sd = 1 / np.sqrt(1 / sigma**2 + base * np.exp(mode))
    x0 = np.r_[beta, np.log(sigma**2)]
    rows = []
    first = None
    for r in range(int(replicates)):
        x, loglik, ess = _fit_one(d, mode, sd, int(m), df, np.random.default_rng(seed + r), x0)
        rows.append(np.r_[x[:-1], np.exp(x[-1])])
        if first is None:
            first = (x, loglik, ess)
    x, loglik, ess = first
    H = numerical_hessian(loglik, x)
    cov = np.linalg.inv(-H)
    p = d.X.shape[1]
    names = d.design.fixed_names
    nu = float(np.exp(x[-1]))
    table = pd.DataFrame(rows, columns=[*names, "nu"])
    mc_sd = table.std(ddof=1) if replicates > 1 else pd.Series(np.nan, index=table.columns)
    return MclaResult(formula=formula, fixef=pd.Series(x[:p], index=names, name="fixef"),
                      vcov=pd.DataFrame(cov[:p, :p], index=names, columns=names),
                      nu=nu, nu_se=float(nu * np.sqrt(cov[-1, -1])), loglik=float(loglik(x)),
                      nobs=len(d.y), ess=ess, m=int(m), replicates=table, mc_sd=mc_sd,
                      varcorr=intercept_varcorr(d.design.blocks[0].group, nu),
                      predictor=LinearPredictor(d.design))
