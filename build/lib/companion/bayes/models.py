"""Bayesian fits of the chapter's sleepstudy models (section 8.1) in PyMC, sampled by nutpie.

Two counterparts of R fits of ``y ~ x + (x | g)``, one correlated random intercept and
slope per group:

* :func:`brms_fit` is ``brms::brm(Reaction ~ Days + (Days | Subject))`` with brms's
  default priors, summarised in brms's layout;
* :func:`mcmcglmm_fit` is ``MCMCglmm(Reaction ~ Days, random = ~ us(1 + Days):Subject)``
  with the chapter's ``prior1``, summarised in MCMCglmm's layout.

Both return a :class:`BayesFit`: the ``arviz.InferenceData`` and the summary table. The
posterior's ``attrs`` hold ``sampling_time`` (nutpie's sampling, in seconds) and
``wall_time`` (compiling and sampling).
"""

from __future__ import annotations

import time
from typing import NamedTuple

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from companion.engine.design import Design, build_design
from companion.engine.formula import FormulaError, parse_formula
from companion.results import lme4_name, posterior_table

BRMS_COLUMNS = ["Estimate", "Est.Error", "l-95% CI", "u-95% CI", "Rhat", "Bulk_ESS",
                "Tail_ESS"]
MCMCGLMM_COLUMNS = ["post.mean", "l-95% CI", "u-95% CI", "eff.samp"]
MAD_CONSTANT = 1.4826  # R's mad(): the median absolute deviation times this


class BayesFit(NamedTuple):
    """A sampled fit: the posterior (``arviz.InferenceData``), R's summary table in the
    mirrored package's layout, and the fixed effects' posterior under the names every
    Bayesian and INLA fit shares (:mod:`companion.results.posterior`)."""

    idata: az.InferenceData
    summary: pd.DataFrame
    fixef_posterior: pd.DataFrame

    @property
    def fixef(self) -> pd.Series:
        """Posterior means of the fixed effects, under lme4's names."""
        return self.fixef_posterior["mean"].rename("fixef")


def fixed_posterior(draws: dict[str, np.ndarray], names) -> pd.DataFrame:
    """The shared posterior table of the fixed effects ``names`` (the draws' keys),
    indexed by lme4's names."""
    table = posterior_table({name: draws[name] for name in names})
    table.index = [lme4_name(name) for name in table.index]
    return table


# --- shared ------------------------------------------------------------------------------

def one_block_design(formula: str, data: pd.DataFrame) -> Design:
    """The design of ``y ~ x + (x | g)``: an intercept and exactly one random term."""
    design = build_design(parse_formula(formula), data)
    if len(design.blocks) != 1:
        raise FormulaError(f"{formula!r} needs exactly one random term such as (x | g), "
                           f"not {len(design.blocks)}")
    if design.fixed_names[:1] != ["(Intercept)"]:
        raise FormulaError(f"{formula!r} needs a fixed intercept")
    return design


def _coords(design: Design) -> dict[str, list[str]]:
    """Names of the random-term columns (twice, for matrices) and of the group levels."""
    block = design.blocks[0]
    return {"effect": block.columns, "effect_": block.columns, "level": block.levels}


def _brms_name(column: str) -> str:
    return "Intercept" if column == "(Intercept)" else column


def _random_part(design: Design, coefficients) -> pt.TensorVariable:
    """Each row's random contribution: its group's coefficients (levels x p) times ``raw``."""
    block = design.blocks[0]
    return (block.raw * coefficients[block.codes]).sum(axis=1)


def sample_nutpie(model: pm.Model, draws: int, tune: int, chains: int, seed: int,
                  target_accept: float = 0.8, drop: tuple[str, ...] = ()
                  ) -> az.InferenceData:
    """NUTS by nutpie; the wall time (compiling and sampling) goes into the attrs.

    ``drop`` names variables whose draws are not kept (nor the warm-up). nutpie holds
    every draw of every variable while it samples, so a model with a latent variable per
    observation is then sampled two chains at a time (the two cores stay busy), with
    those draws dropped between the batches: on 2,500 observations this halves the
    memory the sampling takes.
    """
    start = time.perf_counter()
    batches = [chains] if not drop else [min(2, chains - k) for k in range(0, chains, 2)]
    parts = []
    for k, batch in enumerate(batches):
        idata = pm.sample(draws=draws, tune=tune, chains=batch, model=model,
                          nuts_sampler="nutpie", progressbar=False,
                          random_seed=seed + k, target_accept=target_accept)
        if drop:
            idata = az.InferenceData(posterior=idata.posterior.drop_vars(list(drop)),
                                     sample_stats=idata.sample_stats)
        parts.append(idata)
    idata = parts[0] if len(parts) == 1 else az.concat(parts, dim="chain", reset_dim=True)
    idata.posterior.attrs["wall_time"] = time.perf_counter() - start
    return idata


# --- brms ----------------------------------------------------------------------------------

def brms_default_priors(y: np.ndarray) -> dict[str, float]:
    """Location and scale of brms's default Student-t(3) priors for an identity link.

    brms (``def_scale_prior.brmsterms``, R/priors.R) takes ``location = round(median(y),
    1)`` and ``scale = max(2.5, round(mad(y), 1))``; for sleepstudy's ``Reaction`` this
    is ``student_t(3, 288.7, 59.3)``, as ``get_prior`` prints.
    """
    median = np.median(y)
    mad = MAD_CONSTANT * np.median(np.abs(y - median))
    return {"location": round(float(median), 1), "scale": max(2.5, round(float(mad), 1))}


def brms_model(formula: str, data: pd.DataFrame) -> pm.Model:
    """The Stan model ``brm(formula, data)`` writes, with brms's default priors.

    As brms (2.13 and later) sets them up (``set_prior`` and ``default_prior``/``get_prior``
    documentation; ``def_scale_prior.brmsterms`` in brms's R/priors.R; NEWS 2.13.0:
    "Reduce minimal scale of several default priors from 10 to 2.5"):

    * the fixed-effect columns other than the intercept are centred; ``Intercept``, the
      intercept of the centred model, has ``student_t(3, round(median(y), 1), s)``;
    * the slopes ``b`` have flat (improper) priors;
    * each group-level SD has ``student_t(3, 0, s)`` truncated at 0 (half-t);
    * the group-level correlation matrix has ``lkj(1)`` (``lkj_corr_cholesky(1)``);
    * ``sigma`` has ``student_t(3, 0, s)`` truncated at 0;

    with ``s = max(2.5, round(mad(y), 1))``; for sleepstudy ``s = 59.3`` and the
    intercept's location is 288.7. The group effects are non-centred, ``r = (diag(sd) L
    z)'`` with ``z ~ N(0, 1)``; ``b_Intercept``, the intercept of the original
    (uncentred) model that brms reports, is ``Intercept - mean(X) . b``.
    """
    design = one_block_design(formula, data)
    prior = brms_default_priors(design.y)
    means = design.X[:, 1:].mean(axis=0)
    p = design.blocks[0].n_columns
    with pm.Model(coords=_coords(design) | {"slope": design.fixed_names[1:]}) as model:
        intercept = pm.StudentT("Intercept", nu=3, mu=prior["location"], sigma=prior["scale"])
        b = pm.Flat("b", dims="slope")
        chol, corr, sd = pm.LKJCholeskyCov(
            "L", n=p, eta=1.0, sd_dist=pm.HalfStudentT.dist(nu=3, sigma=prior["scale"],
                                                            shape=p))
        pm.Deterministic("sd", sd, dims="effect")
        pm.Deterministic("cor", corr, dims=("effect", "effect_"))
        z = pm.Normal("z", 0.0, 1.0, dims=("effect", "level"))
        r = pm.Deterministic("r", (chol @ z).T, dims=("level", "effect"))
        pm.Deterministic("b_Intercept", intercept - pt.dot(means, b))
        sigma = pm.HalfStudentT("sigma", nu=3, sigma=prior["scale"])
        mu = intercept + pt.dot(design.X[:, 1:] - means, b) + _random_part(design, r)
        pm.Normal("y", mu=mu, sigma=sigma, observed=design.y)
    return model


def brms_draws(idata: az.InferenceData) -> dict[str, np.ndarray]:
    """The draws (chain x draw) of each row of brms's summary, named as brms names them."""
    post = idata.posterior
    effects = [str(e) for e in post["effect"].values]
    draws = {f"sd({_brms_name(e)})": post["sd"].sel(effect=e) for e in effects}
    for i, first in enumerate(effects):
        for second in effects[i + 1:]:
            name = f"cor({_brms_name(first)},{_brms_name(second)})"
            draws[name] = post["cor"].sel(effect=first, effect_=second)
    draws["Intercept"] = post["b_Intercept"]
    draws |= {str(s): post["b"].sel(slope=s) for s in post["slope"].values}
    draws["sigma"] = post["sigma"]
    return {name: x.values for name, x in draws.items()}


def brms_summary(idata: az.InferenceData) -> pd.DataFrame:
    """brms's ``summary()``: group-level SDs and correlations, fixed effects, sigma; the
    mean, sd, 2.5% and 97.5% quantiles, rank-normalised R-hat, bulk and tail ESS."""
    return brms_table(brms_draws(idata))


def brms_table(draws: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row of brms's summary per named draws (chain x draw)."""
    rows = {name: [x.mean(), x.std(ddof=1), *np.quantile(x, [0.025, 0.975]), az.rhat(x),
                   az.ess(x, method="bulk"), az.ess(x, method="tail")]
            for name, x in draws.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=BRMS_COLUMNS)


def brms_fit(formula: str, data: pd.DataFrame, draws: int = 1000, tune: int = 1000,
             chains: int = 4, seed: int = 20232023) -> BayesFit:
    """Fit :func:`brms_model` with nutpie; the summary is in brms's layout."""
    idata = sample_nutpie(brms_model(formula, data), draws, tune, chains, seed)
    samples = brms_draws(idata)
    fixed = ["Intercept", *map(str, idata.posterior["slope"].values)]
    return BayesFit(idata, brms_table(samples), fixed_posterior(samples, fixed))


# --- MCMCglmm ------------------------------------------------------------------------------

def cholesky_log_jacobian(log_diag, p: int):
    """log |d vech(G) / d theta| for ``G = L L'``, ``L`` lower triangular with diagonal
    ``exp(log_diag)`` and free entries below it: ``p log 2 + sum_i (p - i + 2) log L_ii``
    (``i`` from 1), the map ``L -> L L'`` and the exponential together."""
    return p * np.log(2.0) + (np.arange(p + 1, 1, -1) * log_diag).sum()


def inverse_wishart_kernel(chol, log_diag, nu: float, V: np.ndarray):  # noqa: N803
    """log density, up to a constant, of MCMCglmm's inverse-Wishart prior ``(V, nu)`` at
    ``G = chol chol'``: IW with scale ``Psi = nu V`` and ``nu`` degrees of freedom,
    ``-(nu + p + 1)/2 log|G| - tr(Psi G^-1)/2``."""
    p = V.shape[0]
    root_psi = np.linalg.cholesky(nu * V)
    a = pt.linalg.solve_triangular(chol, root_psi, lower=True)  # tr(Psi G^-1) = |a|^2
    return -(nu + p + 1) * log_diag.sum() - 0.5 * (a**2).sum()


def normal_kernel(x, chol, log_diag):
    """log density, up to a constant, of the rows of ``x`` under ``N(0, chol chol')``
    (PyMC's ``MvNormal`` gives the same, but its gradient ran ~60 times slower under
    numba)."""
    e = pt.linalg.solve_triangular(chol, x.T, lower=True)
    return -0.5 * (e**2).sum() - x.shape[0] * log_diag.sum()


def mcmcglmm_model(formula: str, data: pd.DataFrame, nu: float = 0.002,
                   V: np.ndarray | None = None, residual_variance: float = 1.0,  # noqa: N803
                   fixed_variance: float = 1e10) -> pm.Model:
    """MCMCglmm's Gaussian model with ``random = ~ us(1 + x):g`` and the chapter's prior1,
    ``list(R = list(V = 1, fix = 1), G = list(G1 = list(V = diag(2), nu = 0.002)))``:

    * the residual variance is FIXED at ``residual_variance`` (1), not estimated;
    * the group covariance ``G`` (intercept, slope) has MCMCglmm's inverse-Wishart prior
      ``(V, nu)``, which is IW with scale ``nu V`` and ``nu`` degrees of freedom (``rIW``
      documentation: "the inverse scale matrix Psi = V*nu"). For ``nu = 0.002 < p - 1``
      it is improper; it enters as a ``pm.Potential`` on the Cholesky factor of ``G``
      (its log diagonal and the entries below, flat), Jacobian included;
    * the fixed effects have MCMCglmm's default prior ``N(0, 1e10 I)`` (``B$mu = 0``,
      ``B$V = I * 1e+10``, MCMCglmm's ``prior`` documentation).

    With the residual variance fixed at 1, far below the ~650 that lme4 estimates, each
    group's coefficients are pinned to that group's own least-squares line, and ``G``
    takes in all the variation between groups' lines: it is close to the sample
    covariance of the per-subject lines, larger than lme4's. The group coefficients are
    therefore sampled centred (``beta_j ~ N(b, G)``), where the data, not the prior,
    fix them; ``u_j = beta_j - b`` are the random effects. With so small a residual
    variance the data fix each ``beta_j`` within a small fraction of ``G``'s scale, so
    ``beta_j`` is written as ``c_j + C_j z_j`` (``c_j`` the group's own least-squares line,
    ``C_j C_j'`` its sampling covariance): a linear change of variables with a constant
    Jacobian, the same posterior, and NUTS no longer needs thousands of tiny steps a draw.
    """
    design = one_block_design(formula, data)
    block = design.blocks[0]
    p = block.n_columns
    V = np.eye(p) if V is None else np.asarray(V, dtype=float)  # noqa: N806
    mean_index = [design.fixed_names.index(c) for c in block.columns
                  if c in design.fixed_names]
    if len(mean_index) != p:
        raise FormulaError("every random-term column needs a fixed effect of the same name")
    rows, cols = np.tril_indices(p, -1)
    with pm.Model(coords=_coords(design) | {"fixed": design.fixed_names}) as model:
        b = pm.Normal("b", 0.0, np.sqrt(fixed_variance), dims="fixed")
        log_diag = pm.Flat("log_diag", dims="effect")
        below = pm.Flat("below_diag", shape=len(rows))
        chol = pt.set_subtensor(pt.diag(pt.exp(log_diag))[rows, cols], below)
        pm.Potential("G_prior", inverse_wishart_kernel(chol, log_diag, nu, V)
                     + cholesky_log_jacobian(log_diag, p))
        pm.Deterministic("G", chol @ chol.T, dims=("effect", "effect_"))
        center, scale = _group_least_squares(block, design.y, residual_variance)
        z = pm.Flat("z", dims=("level", "effect"))
        beta = pm.Deterministic("beta", center + (scale * z[:, None, :]).sum(axis=-1),
                                dims=("level", "effect"))
        pm.Potential("beta_prior", normal_kernel(beta - b[mean_index], chol, log_diag))
        pm.Deterministic("u", beta - b[mean_index], dims=("level", "effect"))
        others = np.setdiff1d(np.arange(len(design.fixed_names)), mean_index)
        mu = pt.dot(design.X[:, others], b[others]) + _random_part(design, beta)
        pm.Normal("y", mu=mu, sigma=np.sqrt(residual_variance), observed=design.y)
    return model


def _group_least_squares(block, y: np.ndarray, residual_variance: float):
    """Each level's least-squares coefficients on the term's columns, and the Cholesky
    factor of their covariance (a tiny ridge keeps a level with too few rows regular)."""
    m, p = block.n_levels, block.n_columns
    cross = np.zeros((m, p, p))
    np.add.at(cross, block.codes, block.raw[:, :, None] * block.raw[:, None, :])
    rhs = np.zeros((m, p))
    np.add.at(rhs, block.codes, block.raw * y[:, None])
    precision = cross / residual_variance
    ridge = 1e-8 * (1 + np.abs(precision).max())
    precision += ridge * np.eye(p)
    center = np.linalg.solve(precision, rhs[..., None] / residual_variance)[..., 0]
    return center, np.linalg.cholesky(np.linalg.inv(precision))


def mcmcglmm_draws(idata: az.InferenceData, group: str) -> dict[str, np.ndarray]:
    """The draws (chain x draw) of the G-structure, column by column and named
    ``row:col.group`` as MCMCglmm names them, then of the location effects."""
    post = idata.posterior
    effects = [str(e) for e in post["effect"].values]
    draws = {f"{row}:{col}.{group}": post["G"].sel(effect=row, effect_=col)
             for col in effects for row in effects}
    draws |= {str(f): post["b"].sel(fixed=f) for f in post["fixed"].values}
    return {name: x.values for name, x in draws.items()}


def mcmcglmm_summary(idata: az.InferenceData, group: str,
                     residual_variance: float = 1.0) -> pd.DataFrame:
    """MCMCglmm's ``summary()``: G-structure, the fixed R-structure ``units`` (coda gives
    a constant chain an ESS of 0), location effects; mean, 95% HPD interval, ESS of the
    mean."""
    table = mcmcglmm_table(mcmcglmm_draws(idata, group))
    units = pd.DataFrame([[residual_variance] * 3 + [0.0]], index=["units"],
                         columns=MCMCGLMM_COLUMNS)
    n_g = len(idata.posterior["effect"]) ** 2
    return pd.concat([table.iloc[:n_g], units, table.iloc[n_g:]])


def mcmcglmm_table(draws: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row of MCMCglmm's summary per named draws (chain x draw): the mean, the 95%
    HPD interval and the ESS of the mean."""
    rows = {name: [x.mean(), *az.hdi(x.ravel(), hdi_prob=0.95), az.ess(x, method="mean")]
            for name, x in draws.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=MCMCGLMM_COLUMNS)


def mcmcglmm_fit(formula: str, data: pd.DataFrame, draws: int = 1000, tune: int = 1000,
                 chains: int = 4, seed: int = 20232023, **prior) -> BayesFit:
    """Fit :func:`mcmcglmm_model` (``prior`` passes ``nu``, ``V`` ...) with nutpie; the
    summary is in MCMCglmm's layout."""
    model = mcmcglmm_model(formula, data, **prior)
    idata = sample_nutpie(model, draws, tune, chains, seed)
    group = parse_formula(formula).random[0].group_name
    residual = prior.get("residual_variance", 1.0)
    fixed = list(map(str, idata.posterior["fixed"].values))
    return BayesFit(idata, mcmcglmm_summary(idata, group, residual),
                    fixed_posterior(mcmcglmm_draws(idata, group), fixed))
