"""Mixed models fitted by INLA, as R-INLA does it, with its default priors.

The integrated nested Laplace approximation (Rue, Martino & Chopin 2009, JRSS B 71,
319-392) for the chapter's ``INLA::inla`` fits: one grouping factor with an iid random
intercept (``f(g, model = "iid")``, written ``(1 | g)``) or, for a Gaussian response, a
correlated random intercept and slope (``f(g, model = "iid2d")`` plus a ``copy``, written
``(1 + x | g)``). Binomial (logit) and Poisson (log) responses take ``(1 | g)`` only.

With a Gaussian likelihood the latent field (random and fixed effects) is exactly Gaussian
given the hyperparameters theta, so ``log p(theta | y)`` and the fixed effects' conditional
posteriors are computed exactly, group by group, with the flat intercept integrated out.
Otherwise :mod:`companion.inla.laplace` gives ``log p(theta | y)`` by the Laplace
approximation and the fixed effects' conditional Gaussians with R-INLA's variational-Bayes
mean correction (its default in compact mode). The integration over theta follows
R-INLA's defaults (``int.strategy = "auto"``, compact mode), as read in its GMRFLib
sources (``approx-inference.c``, ``design.c``, ``density.c``):

1. the mode of ``log p(theta | y)`` in the internal scale (log precisions,
   ``log((1 + rho) / (1 - rho))``) and the Hessian there (central differences, step
   0.005); ``theta = mode + V L^1/2 z`` with ``V L V'`` the inverse negative Hessian;
2. a scale per axis and side, ``sqrt(1 / drop)``, from the fall ``drop`` of the log
   posterior at ``z = +-sqrt(2)`` along each axis (``step = M_SQRT2`` in
   ``GMRFLib_ai_INLA``);
3. integration points with those scales (``GMRFLib_design_grid``, ``_ccd``): for one
   hyperparameter the 11 points ``{0, +-0.5, +-1, +-1.75, +-2.5, +-3.5}``, for two the
   45-point product grid on ``{0, +-0.5, +-1.25, +-2.25}`` (corners left out), each with
   its weight; for more a central composite design on the sphere of radius ``1.1 sqrt(d)``
   with Rue et al.'s weights; each point weighs ``weight * p(theta | y)``;
4. fixed effects: the mixture of their conditional Gaussians over the points (the smallest
   weights, 0.1% in all, dropped), represented as GMRFLib does (``Density``), whose
   construction sets the printed mode and quantiles (the mode is found on a grid of
   0.23 sd); hyperparameters: for one, R-INLA's "gridsum" interpolator, the spline
   through the grid's log densities as a ``Density`` (its quantiles stop at the outer
   grid points, its mean and sd reach 10 sd further); for more, the "ccd" interpolator,
   the asymmetric Gaussian of step 2 along the line of the other hyperparameters'
   conditional means, a split normal in theta[j]; both carried to the user scale
   (precision, correlation).

Where two eigenvalues of the Hessian coincide (the two ``iid2d`` precisions, whose
posterior the symmetric Wishart prior dominates) the axes within their plane are
arbitrary; R-INLA's rounding picks some rotation, numpy's another, which moves the CCD
points: the component precisions' summaries by a few percent, fixed-effect quantiles in
their third decimal.

R-INLA's default priors, with their sources in the R-INLA repository (hrue/r-inla):

* precision of the Gaussian observations and of ``iid``: ``loggamma(1, 5e-05)``, a
  Gamma(shape 1, rate 5e-05) on the precision put on its log
  (``r-inla.org/doc/hyper/likelihood/gaussian.tex``, ``doc/hyper/latent/iid.tex``);
* ``iid2d``: ``wishart2d`` with ``param = c(4, 1, 1, 0)`` = (r, R11, R22, R12), i.e.
  ``W ~ Wishart_2(r, R^-1)`` with density proportional to
  ``|W|^((r - 3) / 2) exp(-tr(W R) / 2)`` and ``E(W) = r R^-1``, on the precision
  matrix ``W`` of (intercept, slope) (``doc/latent/iid123d.tex``,
  ``doc/hyper/latent/iid2d.tex``);
* fixed effects: ``control.fixed`` ``mean = 0``, ``prec = 0.001``, ``prec.intercept = 0``
  (``rinla/R/set.default.arguments.R``).

Left out, as negligible here: the tiny extra noise R-INLA puts on a ``copy``.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from companion.engine.design import Design, build_design
from companion.engine.formula import FormulaError, parse_formula
from companion.inla.density import Density
from companion.inla.laplace import LaplaceModel
from companion.inla.priors import (FIXED_PRECISION, GAMMA_PRIOR, INTERCEPT_PRECISION,
                                   WISHART_PRIOR)
from companion.results import POSTERIOR_COLUMNS

CCD_F0 = 1.1  # R-INLA's f0: the CCD points lie at radius f0 * sqrt(d)
GRID_LEVELS = np.array([0.0, 0.5, 1.25, 2.25])  # the two-hyperparameter grid, per axis ...
GRID_WEIGHTS = np.array([1.0, 0.646540918, 1.17894196, 1.93160554])  # ... and its weights
LINE_LEVELS = np.array([0.0, 0.5, 1.0, 1.75, 2.5, 3.5])  # the one-hyperparameter grid ...
LINE_WEIGHTS = np.array([1.0, 1.288639321, 1.431919577, 1.937929918, 1.811358205,
                         3.187537795])  # ... and its weights
COMBINE_POINTS = np.array([-5.0, -4.0, -3.5, -3.0, -2.5, -2.0, -1.5, -1.25, -1.0, -0.75, -0.5,
                           -0.25, -0.125, 0.0, 0.125, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0,
                           2.5, 3.0, 3.5, 4.0, 5.0])  # GMRFLib_density_combine
PRUNE_KEEP = 0.999  # GMRFLib_weight_prob_one
COLUMNS = ["mean", "sd", "0.025quant", "0.5quant", "0.975quant", "mode"]


@dataclass
class InlaResult:
    """Posterior summaries laid out as R-INLA's ``summary()`` prints them."""

    formula: str
    fixed: pd.DataFrame  # one row per fixed effect, COLUMNS
    hyperpar: pd.DataFrame  # one row per hyperparameter (user scale), COLUMNS
    mode: pd.Series  # posterior mode of the hyperparameters, internal scale
    n_points: int  # hyperparameter configurations integrated over
    seconds: float

    @property
    def fixef_posterior(self) -> pd.DataFrame:
        """The fixed effects' posterior under the names Bayesian fits share."""
        table = self.fixed[["mean", "sd", "0.025quant", "0.975quant"]]
        return table.set_axis(POSTERIOR_COLUMNS, axis=1)

    @property
    def fixef(self) -> pd.Series:
        """Posterior means of the fixed effects, under lme4's names."""
        return self.fixed["mean"].rename("fixef")

    def __str__(self) -> str:
        with pd.option_context("display.width", 120, "display.max_columns", 10):
            return (f"INLA fit: {self.formula}\n\nFixed effects:\n{self.fixed.round(3)}\n\n"
                    f"Model hyperparameters:\n{self.hyperpar.round(3)}\n\n"
                    f"{self.n_points} hyperparameter configurations, {self.seconds:.2f} s")


class _Model:
    """Sufficient statistics, priors and ``log p(theta | y)`` for one random term."""

    def __init__(self, design: Design):
        block = design.blocks[0]
        y = design.y - design.offset
        raw, codes, m = block.raw, block.codes, block.n_levels
        self.p, self.group, self.fixed_names = block.n_columns, block.group, design.fixed_names
        self.n = len(y)
        self.ztz = np.zeros((m, self.p, self.p))
        np.add.at(self.ztz, codes, raw[:, :, None] * raw[:, None, :])
        self.ztx = np.zeros((m, self.p, design.X.shape[1]))
        np.add.at(self.ztx, codes, raw[:, :, None] * design.X[:, None, :])
        self.zty = np.zeros((m, self.p))
        np.add.at(self.zty, codes, raw * y[:, None])
        self.xtx, self.xty, self.yty = design.X.T @ design.X, design.X.T @ y, y @ y
        self.prior_precision = np.diag([INTERCEPT_PRECISION if name == "(Intercept)"
                                        else FIXED_PRECISION for name in self.fixed_names])
        self.dim = 2 if self.p == 1 else 4
        self.start = np.where(np.arange(self.dim) < 3, -np.log(np.var(y)), 0.0)

    def names(self) -> list[str]:
        """R-INLA's names of the hyperparameters, on the user scale."""
        if self.p == 1:
            return ["Precision for the Gaussian observations", f"Precision for {self.group}"]
        return ["Precision for the Gaussian observations",
                f"Precision for {self.group} (component 1)",
                f"Precision for {self.group} (component 2)", f"Rho1:2 for {self.group}"]

    def precision_matrix(self, theta: np.ndarray) -> np.ndarray:
        """The random effects' precision matrix ``W`` for each row of ``theta``."""
        if self.p == 1:
            return np.exp(theta[:, 1])[:, None, None]
        ta, tb, rho = np.exp(theta[:, 1]), np.exp(theta[:, 2]), np.tanh(theta[:, 3] / 2)
        scale = 1 / (1 - rho**2)
        off = -rho * np.sqrt(ta * tb) * scale
        return np.stack([np.stack([ta * scale, off], -1), np.stack([off, tb * scale], -1)], -2)

    def log_prior(self, theta: np.ndarray) -> np.ndarray:
        """Log prior density of the internal hyperparameters, up to a constant."""
        a, b = GAMMA_PRIOR
        loggamma = lambda t: a * t - b * np.exp(t)  # noqa: E731 - Gamma on exp(t), with Jacobian
        if self.p == 1:
            return loggamma(theta[:, 0]) + loggamma(theta[:, 1])
        r, r11, r22, r12 = WISHART_PRIOR
        w = self.precision_matrix(theta)
        log_1m_rho2 = -2 * _log_cosh(theta[:, 3] / 2)
        log_det_w = theta[:, 1] + theta[:, 2] - log_1m_rho2
        trace = r11 * w[:, 0, 0] + r22 * w[:, 1, 1] + 2 * r12 * w[:, 0, 1]
        # |d W / d theta| for W's three free entries: tau_a^1.5 tau_b^1.5 / (1 - rho^2)^2 / 2
        log_jacobian = 1.5 * (theta[:, 1] + theta[:, 2]) - 2 * log_1m_rho2 - np.log(2)
        return (loggamma(theta[:, 0]) + (r - 3) / 2 * log_det_w - trace / 2
                + log_jacobian)

    def conditional(self, theta: np.ndarray):
        """``log p(theta | y)`` up to a constant, and the fixed effects' Gaussian
        posterior given theta (means and variances), for each row of ``theta``."""
        tau = np.exp(theta[:, 0])
        w = self.precision_matrix(theta)
        big = w[:, None] + tau[:, None, None, None] * self.ztz  # n_theta x groups x p x p
        big_inv, log_det_big = _small_inverse(big)
        t = np.einsum("ngab,gbk->ngak", big_inv, self.ztx)
        u = np.einsum("ngab,gb->nga", big_inv, self.zty)
        schur = (self.prior_precision + tau[:, None, None] * self.xtx
                 - tau[:, None, None] ** 2 * np.einsum("gak,ngal->nkl", self.ztx, t))
        r = tau[:, None] * self.xty - tau[:, None] ** 2 * np.einsum("gak,nga->nk", self.ztx, u)
        chol = np.linalg.cholesky(schur)
        cov = np.linalg.inv(schur)
        beta = np.einsum("nkl,nl->nk", cov, r)
        quad = tau**2 * np.einsum("gb,ngb->n", self.zty, u) + np.einsum("nk,nk->n", r, beta)
        _, log_det_w = np.linalg.slogdet(w)
        loglik = (self.n / 2 * np.log(tau) - tau / 2 * self.yty
                  + len(self.ztz) / 2 * log_det_w - log_det_big.sum(1) / 2
                  - np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(1) + quad / 2)
        return loglik + self.log_prior(theta), beta, np.diagonal(cov, axis1=1, axis2=2)

    def log_posterior(self, theta: np.ndarray) -> np.ndarray:
        return self.conditional(np.atleast_2d(theta))[0]


def _log_cosh(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    return x + np.log1p(np.exp(-2 * x)) - np.log(2)


def _small_inverse(m: np.ndarray):
    """Inverses and log determinants of a stack of 1 x 1 or 2 x 2 positive matrices."""
    if m.shape[-1] == 1:
        return 1 / m, np.log(m[..., 0, 0])
    a, b, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 1]
    det = a * d - b * b
    inv = np.stack([np.stack([d, -b], -1), np.stack([-b, a], -1)], -2) / det[..., None, None]
    return inv, np.log(det)


def _mode_and_covariance(model, h: float = 0.005):
    """The posterior mode of theta and the inverse negative Hessian there (central
    differences with step ``h``, R-INLA's default)."""
    d = model.dim
    tiny = np.eye(d) * 1e-5

    def gradient(t):  # of -log p(theta | y), central differences in one batch
        values = model.log_posterior(t + np.concatenate([tiny, -tiny]))
        return -(values[:d] - values[d:]) / 2e-5

    mode = optimize.minimize(lambda t: -model.log_posterior(t)[0], model.start,
                             jac=gradient, method="BFGS", options={"gtol": 1e-6}).x
    steps = np.eye(d) * h
    points = np.array([mode + a * steps[:, None] + b * steps[None]
                       for a in (1, -1) for b in (1, -1)])
    values = model.log_posterior(points.reshape(-1, d)).reshape(4, d, d)
    hessian = (values[0] - values[1] - values[2] + values[3]) / (4 * h * h)
    hessian = (hessian + hessian.T) / 2
    if np.linalg.eigvalsh(-hessian).min() <= 0:
        raise RuntimeError("the Hessian of log p(theta | y) at the mode is not negative "
                           "definite: the mode was not found")
    return mode, np.linalg.inv(-hessian)


def _axis_scales(model, mode, axes):
    """R-INLA's corrected scales along each axis, on its positive and negative side:
    ``sqrt(1 / drop)`` with ``drop`` the fall of log p(theta | y) at ``z = +-sqrt(2)``."""
    top = model.log_posterior(mode)[0]
    step = np.sqrt(2)
    drops = top - model.log_posterior(mode + np.concatenate([step * axes.T, -step * axes.T]))
    scales = np.where(drops > 0, step / np.sqrt(2 * np.maximum(drops, 1e-300)), 1.0)
    return scales[:model.dim], scales[model.dim:]


def _design(dim: int):
    """Integration points (standardized, before scaling) and their log weights: R-INLA's
    grids for one or two hyperparameters, its central composite design for three or four
    (the corners a full factorial, as in R-INLA's design up to four)."""
    if dim == 1:
        levels = np.concatenate([-LINE_LEVELS[:0:-1], LINE_LEVELS])
        weights = np.concatenate([LINE_WEIGHTS[:0:-1], LINE_WEIGHTS])
        return levels[:, None], np.log(weights)
    if dim == 2:
        levels = np.concatenate([-GRID_LEVELS[:0:-1], GRID_LEVELS])
        weights = np.concatenate([GRID_WEIGHTS[:0:-1], GRID_WEIGHTS])
        points = np.array(list(itertools.product(levels, repeat=2)))
        log_w = np.log(np.array(list(itertools.product(weights, repeat=2)))).sum(1)
        keep = ~np.all(np.abs(points) == GRID_LEVELS[-1], axis=1)  # no corners
        return points[keep], log_w[keep]
    corners = np.array(list(itertools.product((-1.0, 1.0), repeat=dim))) / np.sqrt(dim)
    axes = np.concatenate([np.eye(dim), -np.eye(dim)])
    f = CCD_F0 * np.sqrt(dim)
    points = f * np.concatenate([np.zeros((1, dim)), axes, corners])
    n = len(points)
    w = 1 / ((n - 1) * (1 + np.exp(-f**2 / 2) * (f**2 / dim - 1)))
    return points, np.log(np.r_[1 - (n - 1) * w, np.full(n - 1, w)])


def _split_scales(j, cov, axes, pos, neg):
    """Scales below and above the mode of R-INLA's marginal of theta[j]: the asymmetric
    Gaussian in z along the line of the others' conditional means given theta[j], which
    is a split normal in theta[j]."""
    u = np.linalg.solve(axes, cov[:, j] / cov[j, j])  # change of z per unit of theta[j]
    down = 1 / np.sqrt(np.sum((u / np.where(u < 0, pos, neg)) ** 2))
    up = 1 / np.sqrt(np.sum((u / np.where(u > 0, pos, neg)) ** 2))
    return down, up


def _hyper_summary(m: float, down: float, up: float, is_rho: bool) -> list[float]:
    """Summaries on the user scale (exp(t), or tanh(t / 2) for a correlation) of the split
    normal with mode ``m`` and scales ``down`` and ``up`` on the internal scale t."""
    back = (lambda t: np.tanh(t / 2)) if is_rho else np.exp
    left = down / (down + up)  # P(t < m)
    s = np.linspace(0, 12, 6001)
    half = 2 * stats.norm.pdf(s)  # each half's density in s = |t - m| / scale
    moments = [left * np.trapezoid(back(m - down * s) ** k * half, s)
               + (1 - left) * np.trapezoid(back(m + up * s) ** k * half, s) for k in (1, 2)]
    mean, sd = moments[0], np.sqrt(max(moments[1] - moments[0] ** 2, 0.0))
    quantiles = [m + down * stats.norm.ppf(q / (2 * left)) if q < left
                 else m + up * stats.norm.ppf(1 - (1 - q) / (2 * (1 - left)))
                 for q in (0.025, 0.5, 0.975)]
    # the user-scale density is the split normal divided by |d user / d t|
    log_slope = (lambda t: np.log((1 - np.tanh(t / 2) ** 2) / 2)) if is_rho else (lambda t: t)
    minus_log_density = lambda t: (0.5 * ((t - m) / np.where(t < m, down, up)) ** 2  # noqa: E731
                                   + log_slope(t))
    mode = optimize.minimize_scalar(minus_log_density, bounds=(m - 6 * down, m + 6 * up),
                                    method="bounded", options={"xatol": 1e-10}).x
    return [mean, sd, *back(np.array(quantiles)), float(back(mode))]


def _fixed_summary(weights, means, variances) -> list[float]:
    """Summaries of R-INLA's marginal of one fixed effect: the mixture of its conditional
    Gaussians over the integration points (the smallest weights, 0.1% in all, left out),
    represented as in ``GMRFLib_density_combine``: its log density at 27 points within
    +-5 sd of the mixture's mean, as a :class:`companion.inla.density.Density`."""
    order = np.argsort(weights)[::-1]
    kept = order[:np.searchsorted(np.cumsum(weights[order]), PRUNE_KEEP) + 1]
    weights, means = weights[kept] / weights[kept].sum(), means[kept]
    sds = np.sqrt(variances[kept])
    mean = weights @ means
    sd = np.sqrt(weights @ (sds**2 + means**2) - mean**2)
    density = weights @ stats.norm.pdf(mean + sd * COMBINE_POINTS, means[:, None], sds[:, None])
    return Density(COMBINE_POINTS, np.log(density), mean, sd).user_summary()


def inla(formula: str, data: pd.DataFrame, family: str = "gaussian", ntrials=None,
         offset=None) -> InlaResult:
    """Fit ``y ~ fixed + (1 | g)`` or ``y ~ fixed + (1 + x | g)`` as R-INLA does with its
    default priors and integration: ``f(g, model = "iid")``, or ``f(g, model = "iid2d")``
    with the second column a ``copy`` of the second component.

    Args:
        formula: an lme4 formula with exactly one random term of one or two columns (one,
            ``(1 | g)``, for a binomial or Poisson likelihood).
        data: a DataFrame (factors as pandas Categoricals).
        family: ``"gaussian"``, ``"binomial"`` (logit link; the response counts the
            successes) or ``"poisson"`` (log link).
        ntrials: the binomial trials (R-INLA's ``Ntrials``): a column name or an array;
            binomial only, where it is required.
        offset: added to the linear predictor (a column name or an array), besides any
            ``offset(...)`` in the formula.
    """
    started = time.perf_counter()
    if family not in ("gaussian", "binomial", "poisson"):
        raise ValueError(f"family {family!r} is not supported: only 'gaussian' (a linear "
                         "mixed model), 'binomial' and 'poisson' are")
    if family == "binomial" and ntrials is None:
        raise ValueError("family 'binomial' needs ntrials, the number of trials of each "
                         "row (a column name or an array), as R-INLA's Ntrials")
    if family != "binomial" and ntrials is not None:
        raise ValueError(f"ntrials is for family 'binomial' only, not {family!r}")
    design = build_design(parse_formula(formula), data, offset=_column(data, offset))
    if len(design.blocks) != 1 or design.blocks[0].n_columns > (2 if family == "gaussian"
                                                                else 1):
        terms = ", ".join(f"({b.term.expr} | {b.group})" for b in design.blocks) or "none"
        raise FormulaError("inla() supports exactly one random term with one or two "
                           "columns, as (1 | g) (model 'iid') or (1 + x | g) (model "
                           "'iid2d'; with a gaussian family only); the formula has these "
                           f"random terms: {terms}")
    if family == "gaussian":
        model = _Model(design)
    else:
        trials = _column(data, ntrials)
        model = LaplaceModel(design, family, None if trials is None
                             else trials[data.index.get_indexer(design.rows)])
    mode, cov = _mode_and_covariance(model)
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    axes = eigenvectors * np.sqrt(eigenvalues)  # theta = mode + axes @ z
    pos, neg = _axis_scales(model, mode, axes)
    points, log_w = _design(model.dim)
    theta = mode + (points * np.where(points > 0, pos, neg)) @ axes.T
    logpost, beta, var = model.conditional(theta)
    weights = np.exp(logpost + log_w - (logpost + log_w).max())
    weights /= weights.sum()
    fixed = [_fixed_summary(weights, beta[:, k], var[:, k]) for k in range(beta.shape[1])]
    if model.dim == 1:  # R-INLA's "gridsum" interpolator: the grid's own log densities
        sd = np.sqrt(cov[0, 0])
        order = np.argsort(theta[:, 0])
        standardized = (theta[order, 0] - mode[0]) / sd
        hyper = [Density(standardized, logpost[order] - logpost.max(), mode[0],
                          sd).exp_summary()]
    else:
        hyper = [_hyper_summary(mode[j], *_split_scales(j, cov, axes, pos, neg),
                                is_rho=j == 3) for j in range(model.dim)]
    internal = [name.replace("Precision", "Log precision")
                .replace("Rho1:2", "log((1 + rho) / (1 - rho))") for name in model.names()]
    return InlaResult(
        formula=formula,
        fixed=pd.DataFrame(fixed, index=model.fixed_names, columns=COLUMNS),
        hyperpar=pd.DataFrame(hyper, index=model.names(), columns=COLUMNS),
        mode=pd.Series(mode, index=internal, name="mode"),
        n_points=len(points), seconds=time.perf_counter() - started)


def _column(data: pd.DataFrame, values) -> np.ndarray | None:
    """A column of ``data`` given by its name, or an array aligned with its rows."""
    if values is None:
        return None
    if isinstance(values, str):
        if values not in data.columns:
            raise ValueError(f"{values!r} is not a column of the data")
        values = data[values]
    values = np.asarray(values, dtype=float)
    if values.shape != (len(data),):
        raise ValueError(f"expected one value per row of the data ({len(data)}), got an "
                         f"array of shape {values.shape}")
    return values
