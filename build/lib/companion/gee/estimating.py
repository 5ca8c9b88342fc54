"""GEE with an exchangeable working correlation, as R's ``gee::gee`` and ``geepack::geeglm``.

Each mean-parameter step is statsmodels' GEE (``statsmodels.api.GEE``, the exchangeable
working correlation held at the value R would use in that step), and its naive and robust
(sandwich) covariances are statsmodels'. What differs between the two R packages is how
the scale and the correlation are estimated and when the iteration stops, and
:func:`gee_fit` reproduces each:

``style="gee"`` (``gee::gee``, defaults ``tol = 0.001``, ``maxiter = 25``)
    Starts from the GLM. Each iteration first estimates, at the current beta,
    ``phi = sum r^2 / (N - p)`` and ``alpha = sum_{i, j != k} r_ij r_ik /
    (phi (sum_i n_i (n_i - 1) - 2 p))`` (Pearson residuals ``r``; ordered pairs, so
    this is ``(unordered pairs - p)``, the same df correction as statsmodels'
    ``Exchangeable``), then takes one scoring step for beta. It stops once
    ``max |beta_old / beta_new - 1| <= tol``. The reported correlation is the one used in
    the last step (estimated at the beta *before* it); the scale is re-estimated at the
    final beta; naive variance ``phi * B^-1``, robust ``B^-1 M B^-1``.

``style="geepack"`` (``geepack::geeglm``, ``epsilon = 1e-4``, ``maxit = 25``)
    Starts from the GLM with ``alpha = 0``. Each iteration takes a beta step, then
    re-estimates ``phi = sum r^2 / N`` (no df correction) and
    ``alpha = sum_{i, j < k} r_ij r_ik / (phi * #pairs)`` (no df correction) at the new
    beta; it stops when the largest absolute change of beta, phi and alpha is at most
    ``epsilon``. So every reported quantity is at one consistent point. The standard
    errors of ``phi`` and ``alpha`` come from geepack's sandwich for the stacked
    estimating equations of (beta, phi, alpha) (Yan & Fine 2004), whose block-triangular
    "Hessian" is written out below as geepack's ``HiandGi`` builds it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.genmod.cov_struct import Exchangeable

from companion.engine.design import build_design
from companion.engine.formula import FormulaError, parse_formula
from companion.engine.prediction import LinearPredictor
from companion.results import ModelResult, empty_varcorr

STYLES = ("gee", "geepack")


@dataclass(repr=False)
class GeeResult(ModelResult):
    """A GEE fit reported the way the R package ``style`` reports it, under the shared
    names: ``vcov`` and ``se`` are the robust (sandwich) ones, ``vcov_naive`` and
    ``naive_se`` the model-based ones; estimating equations have no likelihood, so
    ``loglik``, ``aic`` and ``bic`` are NaN."""

    style: str
    formula: str
    fixef: pd.Series
    vcov: pd.DataFrame
    vcov_naive: pd.DataFrame
    nobs: int
    scale: float
    alpha: float
    iterations: int
    converged: bool
    n_clusters: int
    max_cluster_size: int
    scale_se: float | None = None  # geepack only
    alpha_se: float | None = None  # geepack only
    history: list = field(default_factory=list, repr=False)
    predictor: LinearPredictor | None = field(default=None, repr=False)
    varcorr: pd.DataFrame = field(default_factory=empty_varcorr)
    ranef: dict = field(default_factory=dict)
    loglik: float = float("nan")
    link_inverse = staticmethod(np.exp)  # the Poisson family's log link

    @property
    def title(self) -> str:
        package = "gee::gee" if self.style == "gee" else "geepack::geeglm"
        return (f"GEE fit as {package}: Poisson (log link), exchangeable working "
                f"correlation {self.alpha:.4g}, scale {self.scale:.4g}")

    @property
    def n_params(self) -> int:
        return len(self.fixef)

    @property
    def naive_se(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.vcov_naive)), index=self.fixef.index,
                         name="naive_se")

    @property
    def wald(self) -> pd.Series:
        """geepack's Wald statistics, (estimate / robust SE)^2."""
        return (self.fixef / self.se) ** 2


def gee_fit(formula: str, data: pd.DataFrame, groups, offset=None, style: str = "gee",
            tol: float | None = None, maxiter: int = 25) -> GeeResult:
    """Poisson (log link) GEE with an exchangeable working correlation.

    Args:
        formula: fixed effects only, e.g. ``"y ~ x1 + x2"``; ``offset(log(o))`` is allowed.
        groups: the cluster column's name, or one label per row. Clusters must be
            contiguous runs of rows, as both R packages require.
        offset: an expression on the data (``"log(o)"``), or one number per row.
        style: ``"gee"`` for ``gee::gee`` or ``"geepack"`` for ``geepack::geeglm``.
        tol: the stopping tolerance (default: the package's, 1e-3 or 1e-4).
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, not {style!r}")
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    parsed = parse_formula(formula)
    if parsed.random:
        raise FormulaError("a GEE formula has no random-effects terms; give the clusters "
                           "as groups")
    if isinstance(offset, str):
        parsed = parse_formula(f"{formula} + offset({offset})")
        offset = None
    if isinstance(groups, str):
        if groups not in data.columns:
            raise ValueError(f"groups {groups!r} is not a column of the data")
        labels = data[groups].to_numpy()
    else:
        labels = np.asarray(groups)
        if len(labels) != len(data):
            raise ValueError(f"groups has {len(labels)} labels for {len(data)} rows")
    design = build_design(parsed, data, offset=offset)
    labels = labels[data.index.get_indexer(design.rows)]
    codes, n_runs = _cluster_codes(labels)
    y, X = design.y, design.X
    if np.any(y < 0) or np.any(y != np.round(y)):
        raise ValueError("a Poisson GEE needs non-negative integer counts")
    fitter = _gee_style if style == "gee" else _geepack_style
    result = fitter(y, X, design.offset, codes, 1e-3 if tol is None and style == "gee"
                    else 1e-4 if tol is None else tol, maxiter)
    names = design.fixed_names
    fixef = pd.Series(result.pop("coef"), index=names, name="fixef")
    vcov = pd.DataFrame(result.pop("robust_cov"), index=names, columns=names)
    vcov_naive = pd.DataFrame(result.pop("naive_cov"), index=names, columns=names)
    sizes = np.bincount(codes)
    return GeeResult(style=style, formula=formula, fixef=fixef, vcov=vcov,
                     vcov_naive=vcov_naive, nobs=design.n, n_clusters=n_runs,
                     max_cluster_size=int(sizes.max()), predictor=LinearPredictor(design),
                     **result)


def _cluster_codes(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """0, 1, ... per contiguous run of equal labels (R's gee splits the rows that way)."""
    change = np.r_[True, labels[1:] != labels[:-1]]
    codes = np.cumsum(change) - 1
    n_runs = int(codes[-1]) + 1
    if n_runs != len(pd.unique(labels)):
        raise ValueError("the rows of each cluster must be contiguous: sort the data by "
                         "the groups first")
    return codes, n_runs


def _glm_start(y, X, offset) -> np.ndarray:
    return sm.GLM(y, X, family=sm.families.Poisson(), offset=offset).fit(tol=1e-12).params


def _pearson(y, X, offset, beta) -> np.ndarray:
    mu = np.exp(X @ beta + offset)
    return (y - mu) / np.sqrt(mu)


def _pair_sums(r, codes) -> tuple[float, float]:
    """sum over clusters of sum_{j<k} r_j r_k, and the number of such pairs."""
    total = np.bincount(codes, weights=r)
    squares = np.bincount(codes, weights=r * r)
    n = np.bincount(codes)
    return float(np.sum((total**2 - squares) / 2)), float(np.sum(n * (n - 1) / 2))


def _step(y, X, offset, codes, beta, alpha, steps: int = 1):
    """``steps`` (1 or 0) statsmodels GEE scoring steps from ``beta`` with the correlation
    fixed at ``alpha``: the new beta, and statsmodels' naive (without the scale) and robust
    covariances at it."""
    cov = Exchangeable()
    model = sm.GEE(y, X, groups=codes, family=sm.families.Poisson(), offset=offset,
                   cov_struct=cov, update_dep=False)
    cov.dep_params = alpha
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit(maxiter=steps, ctol=np.inf, start_params=beta, scale=1.0)
    return (np.asarray(fit.params, dtype=float), np.asarray(fit.cov_naive),
            np.asarray(fit.cov_robust))


def _gee_style(y, X, offset, codes, tol, maxiter) -> dict:
    n, p = X.shape
    beta = _glm_start(y, X, offset)
    history = []
    iterations = 0
    while True:
        r = _pearson(y, X, offset, beta)
        phi = np.sum(r * r) / (n - p)
        pairs, n_pairs = _pair_sums(r, codes)
        alpha = pairs / (phi * (n_pairs - p))
        new, _, _ = _step(y, X, offset, codes, beta, alpha)
        iterations += 1
        change = np.max(np.abs(beta / new - 1))
        history.append({"beta": new, "alpha": alpha, "phi": phi})
        beta = new
        if change <= tol or iterations >= maxiter:
            break
    r = _pearson(y, X, offset, beta)
    phi = float(np.sum(r * r) / (n - p))
    # gee: both covariances at the final beta with the R of the last step; the naive one
    # times the scale re-estimated at the final beta
    _, naive_end, robust_end = _step(y, X, offset, codes, beta, alpha, steps=0)
    naive = phi * naive_end
    return {"coef": beta, "naive_cov": naive, "robust_cov": robust_end, "scale": phi,
            "alpha": float(alpha),
            "iterations": iterations, "converged": change <= tol, "history": history}


def _geepack_style(y, X, offset, codes, tol, maxiter) -> dict:
    n, p = X.shape
    beta = _glm_start(y, X, offset)
    alpha = 0.0
    mu0 = np.exp(X @ beta)  # geese.fit's starting scale leaves the offset out
    phi = float(np.mean((y - mu0) ** 2 / mu0))
    history = []
    converged = False
    for iterations in range(1, maxiter + 1):  # noqa: B007 - reported after the loop
        new, _, _ = _step(y, X, offset, codes, beta, alpha)
        r = _pearson(y, X, offset, new)
        new_phi = float(np.mean(r * r))
        pairs, n_pairs = _pair_sums(r, codes)
        new_alpha = pairs / new_phi / n_pairs
        change = max(np.max(np.abs(new - beta)), abs(new_phi - phi), abs(new_alpha - alpha))
        beta, phi, alpha = new, new_phi, new_alpha
        history.append({"beta": beta, "alpha": alpha, "phi": phi})
        if change <= tol:
            converged = True
            break
    out = _geepack_variance(y, X, offset, codes, beta, phi, alpha)
    out.update(coef=beta, scale=phi, alpha=float(alpha), iterations=iterations,
               converged=converged, history=history)
    return out


def _geepack_variance(y, X, offset, codes, beta, phi, alpha) -> dict:
    """geepack's ``gee_var`` for Poisson/log, identity scale and correlation links.

    Per cluster: U1 = D' V^-1 r, U2 = sum (r^2 - phi) / (2 phi), U3 = sum_{j<k} (r_j r_k /
    phi - alpha); the blocks A = D'V^-1 D, B, C, D, E, F of the Hessian as geepack
    writes them (``HiandGi``), inverted block-triangularly, give the sandwich of every
    parameter."""
    p = X.shape[1]
    eta = X @ beta + offset
    mu = np.exp(eta)
    v, v_mu = mu, np.ones_like(mu)  # Poisson variance and its derivative
    D = (mu / np.sqrt(v))[:, None] * X  # InvRootV * mu_eta * X
    r = (y - mu) / np.sqrt(v)
    A = np.zeros((p, p))
    B = np.zeros((1, p))
    Dblk = np.zeros((1, p))
    C = E = F = 0.0
    L = np.zeros((p + 2, p + 2))
    for i in range(codes.max() + 1):
        rows = codes == i
        Di, ri, vi, vmi = D[rows], r[rows], v[rows], v_mu[rows]
        s = len(ri)
        Rinv = _exchangeable_inverse(s, alpha)
        A += Di.T @ Rinv @ Di / phi
        U1 = Di.T @ Rinv @ ri / phi
        C += s / (2 * phi)
        f = -2 * ri / np.sqrt(vi) - ri * ri / vi * vmi  # geepack's getS_Beta
        B += -(f @ Di)[None, :] / (2 * phi)
        U2 = np.sum(ri * ri - phi) / (2 * phi)
        total = ri.sum()
        z_sum = (total**2 - np.sum(ri * ri)) / 2 / phi
        n_pairs = s * (s - 1) / 2
        U3 = z_sum - n_pairs * alpha
        F += n_pairs
        a = vmi / np.sqrt(vi)  # geepack's getZ_Beta, summed over pairs j < k
        zbeta = (-(s - 1) * (ri @ Di) - 0.5 * ((a * ri * (total - ri)) @ Di)) / phi
        Dblk += -zbeta[None, :]
        E += z_sum / phi  # minus getZ_Gamma summed: z_jk / phi
        u = np.r_[U1, U2, U3]
        L += np.outer(u, u)
    Ai = np.linalg.inv(A)
    Ci = 1 / C
    Bi = -Ci * B @ Ai
    Fi = 1 / F
    Ei = -Fi * E * Ci
    Dinv = -Fi * (Dblk @ Ai + E * Bi)
    L11, L12, L13 = L[:p, :p], L[:p, p:p + 1], L[:p, p + 1:]
    L22, L23, L33 = L[p, p], L[p, p + 1], L[p + 1, p + 1]
    vbeta = Ai @ L11 @ Ai
    vgamma = (Bi @ L11 + Ci * L12.T) @ Bi.T + (Bi @ L12 + Ci * L22) * Ci
    valpha = ((Dinv @ L11 + Ei * L12.T + Fi * L13.T) @ Dinv.T
              + (Dinv @ L12 + Ei * L22 + Fi * L23) * Ei
              + (Dinv @ L13 + Ei * L23 + Fi * L33) * Fi)
    return {"naive_cov": Ai, "robust_cov": vbeta, "scale_se": float(np.sqrt(vgamma.item())),
            "alpha_se": float(np.sqrt(valpha.item()))}


def _exchangeable_inverse(s: int, alpha: float) -> np.ndarray:
    """(1 - alpha) I + alpha J, inverted in closed form."""
    a = 1 / (1 - alpha)
    b = -alpha / ((1 - alpha) * (1 + (s - 1) * alpha))
    return a * np.eye(s) + b * np.ones((s, s))
