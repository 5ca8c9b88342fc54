"""Gauss-Hermite quadrature for a Poisson GLMM with one random intercept, as ``glmmML``.

``glmmML::glmmML(y ~ x, family = poisson, offset = ..., cluster = g, method, n.points)``
maximizes over (beta, sigma) the log-likelihood sum_i log int phi(u) prod_j
Poisson(y_ij | exp(x_ij beta + sigma u)) du. glmmML's C code (``fun.c``, ``update``)
evaluates each cluster's integral *adaptively*: it finds the mode u_hat of the log
integrand g, takes s_hat = (-g''(u_hat))^-1/2 and uses the nodes u_hat + sqrt(2) s_hat z_k;
``method = "Laplace"`` (glmmML's default, the chapter's call) is the one-node case. Its
standard errors are the inverse Hessian of that log-likelihood in (beta, sigma), sigma on
its own scale. ``adaptive=False`` gives plain (non-adaptive) Gauss-Hermite, nodes
sqrt(2) z_k around 0, which is *not* what glmmML does: with 100 Poisson counts per cluster
the integrand is far narrower than N(0, 1) and a few fixed nodes miss it (see
:func:`ghq_loglik`), so it needs many more nodes.

glmmML's printed "Residual deviance" is -2 (loglik - loglik of the saturated Poisson
model), as its ``P_poisson`` leaves out log(y!) and the chapter's 2770 shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import gammaln, xlogy

from companion.engine.families import family
from companion.engine.laplace import glm_fit
from companion.engine.prediction import LinearPredictor
from companion.glmm.glmer import glmm_design
from companion.results import ModelResult
from companion.results.protocol import VARCORR_COLUMNS


@dataclass(repr=False)
class GhqResult(ModelResult):
    """glmmML's fit under the shared names; ``sigma`` is the random intercept's SD and
    ``ranef`` its posterior modes. ``deviance`` and ``glmmml_aic`` are glmmML's printed
    residual deviance and AIC (``deviance + 2 (p + 1)``), which leave out the saturated
    log-likelihood that ``loglik`` (and so ``aic``) keeps."""

    formula: str
    fixef: pd.Series
    vcov: pd.DataFrame
    sigma: float
    sigma_se: float
    loglik: float  # full Poisson log-likelihood (log y! included)
    deviance: float  # glmmML's "Residual deviance"
    nobs: int
    n_points: int
    adaptive: bool
    varcorr: pd.DataFrame
    ranef: dict
    predictor: LinearPredictor | None = field(default=None, repr=False)
    link_inverse = staticmethod(np.exp)

    @property
    def title(self) -> str:
        how = (f"{'adaptive ' if self.adaptive else ''}Gauss-Hermite quadrature, "
               f"{self.n_points} node{'s' if self.n_points > 1 else ''}")
        return f"Poisson GLMM fit by maximum likelihood as glmmML ({how})"

    @property
    def n_params(self) -> int:
        return len(self.fixef) + 1

    @property
    def df_resid(self) -> int:
        return self.nobs - self.n_params

    @property
    def glmmml_aic(self) -> float:
        return self.deviance + 2 * self.n_params

    @property
    def posterior_modes(self) -> np.ndarray | None:
        """The random intercepts' modes on the standard-normal scale (glmmML's); None
        for plain (non-adaptive) quadrature, which finds no modes."""
        if not self.ranef:
            return None
        table = next(iter(self.ranef.values()))
        return table.iloc[:, 0].to_numpy() / self.sigma


class PoissonInterceptData:
    """A Poisson (log link) model with one random intercept, ready for its integrals."""

    def __init__(self, formula, data, offset):
        design, fam, _ = glmm_design(formula, data, "poisson", offset=offset)
        if fam.link.name != "log" or len(design.blocks) != 1 or design.blocks[0].n_columns != 1:
            raise ValueError("ghq fits a Poisson (log link) model with one random intercept, "
                             "e.g. y ~ x + (1 | g)")
        self.design = design
        self.X, self.y, self.offset = design.X, design.y, design.offset
        self.codes = design.blocks[0].codes
        self.q = design.blocks[0].n_levels
        self.sum_y = np.bincount(self.codes, weights=self.y, minlength=self.q)
        self.const = -np.sum(gammaln(self.y + 1))
        self.saturated = np.sum(xlogy(self.y, self.y) - self.y) + self.const


def _log_integrand(d: PoissonInterceptData, ye, base, sigma, u):
    """g_i(u) = log phi(u) + sum_j [y (eta + sigma u) - exp(eta + sigma u)] (no log y!),
    for nodes u of shape (q, K)."""
    return (-0.5 * np.log(2 * np.pi) - u**2 / 2 + ye[:, None] + d.sum_y[:, None] * sigma * u
            - base[:, None] * np.exp(sigma * u))


def ghq_loglik(params, d: PoissonInterceptData, n_points: int = 1, adaptive: bool = True,
               return_modes: bool = False):
    """The (A)GHQ log-likelihood at params = (beta..., sigma), log y! included."""
    beta, sigma = np.asarray(params[:-1]), float(params[-1])
    eta = d.X @ beta + d.offset
    base = np.bincount(d.codes, weights=np.exp(eta), minlength=d.q)  # sum exp(eta)
    ye = np.bincount(d.codes, weights=d.y * eta, minlength=d.q)  # sum y eta
    z, w = np.polynomial.hermite.hermgauss(n_points)
    if adaptive:
        u = np.zeros(d.q)  # Newton on g'(u) = -u + sigma (sum y - base e^{sigma u})
        for _ in range(100):
            e = base * np.exp(sigma * u)
            grad = -u + sigma * (d.sum_y - e)
            hess = -1 - sigma**2 * e
            step = grad / hess
            u = u - step
            if np.max(np.abs(step)) < 1e-12:
                break
        s_hat = 1 / np.sqrt(1 + sigma**2 * base * np.exp(sigma * u))
        nodes = u[:, None] + np.sqrt(2) * s_hat[:, None] * z[None, :]
        g = _log_integrand(d, ye, base, sigma, nodes)
        logw = np.log(w) + z**2
        terms = g + logw[None, :]
        top = terms.max(axis=1)
        per = np.log(np.sqrt(2) * s_hat) + top + np.log(np.exp(terms - top[:, None]).sum(1))
    else:
        u = None
        nodes = np.broadcast_to(np.sqrt(2) * z, (d.q, n_points))
        g = _log_integrand(d, ye, base, sigma, nodes) + 0.5 * np.log(2 * np.pi) + nodes**2 / 2
        terms = g + np.log(w / np.sqrt(np.pi))[None, :]
        top = terms.max(axis=1)
        per = top + np.log(np.exp(terms - top[:, None]).sum(1))
    total = float(per.sum()) + d.const
    return (total, u) if return_modes else total


def numerical_hessian(f, x, h=1e-4):
    """Central second differences of ``f`` at ``x`` with one absolute step ``h``."""
    k = len(x)
    H = np.zeros((k, k))
    for i in range(k):
        for j in range(i, k):
            ei, ej = np.eye(k)[i] * h, np.eye(k)[j] * h
            H[i, j] = H[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej)
                                 + f(x - ei - ej)) / (4 * h * h)
    return H


def glmmml(formula: str, data: pd.DataFrame, offset=None, n_points: int = 1,
           adaptive: bool = True, start_sigma: float = 0.5) -> GhqResult:
    """Fit ``y ~ x + (1 | g)`` (Poisson, log link) by maximizing the (A)GHQ likelihood.

    Args:
        formula: lme4 syntax with one random intercept; ``offset(log(o))`` allowed.
        n_points: quadrature nodes; 1 with ``adaptive=True`` is glmmML's default Laplace.
        adaptive: glmmML's adaptive nodes (True), or plain Gauss-Hermite around 0.
    """
    if int(n_points) != n_points or n_points < 1:
        raise ValueError(f"n_points must be a positive integer, not {n_points!r}")
    if not adaptive and n_points < 2:
        raise ValueError("non-adaptive quadrature with one node ignores the random effect; "
                         "use more nodes")
    d = PoissonInterceptData(formula, data, offset)
    beta0 = glm_fit(d.X, d.y, np.ones_like(d.y), d.offset, family("poisson"))
    x0 = np.r_[beta0, start_sigma]

    def objective(x):
        if x[-1] <= 0:
            return np.inf
        return -ghq_loglik(x, d, n_points, adaptive)

    fit = optimize.minimize(objective, x0, method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-10, "maxiter": 20000,
                                     "maxfev": 40000})
    fit = optimize.minimize(objective, fit.x, method="BFGS", options={"gtol": 1e-8})
    x = fit.x
    H = numerical_hessian(lambda v: ghq_loglik(v, d, n_points, adaptive), x)
    cov = np.linalg.inv(-H)
    loglik, modes = ghq_loglik(x, d, n_points, adaptive, return_modes=True)
    p = d.X.shape[1]
    names = d.design.fixed_names
    sigma = float(x[p])
    block = d.design.blocks[0]
    return GhqResult(
        formula=formula, fixef=pd.Series(x[:p], index=names, name="fixef"),
        vcov=pd.DataFrame(cov[:p, :p], index=names, columns=names), sigma=sigma,
        sigma_se=float(np.sqrt(cov[p, p])), loglik=loglik,
        deviance=-2 * (loglik - d.saturated), nobs=len(d.y), n_points=int(n_points),
        adaptive=adaptive, varcorr=intercept_varcorr(block.group, sigma**2),
        ranef={} if modes is None else {block.group: pd.DataFrame(
            {"(Intercept)": sigma * modes}, index=pd.Index(block.levels, name=block.group))},
        predictor=LinearPredictor(d.design))


def intercept_varcorr(group: str, variance: float) -> pd.DataFrame:
    """lme4's tidy variance table of one random intercept."""
    return pd.DataFrame([(group, "(Intercept)", None, variance, np.sqrt(variance))],
                        columns=VARCORR_COLUMNS)
