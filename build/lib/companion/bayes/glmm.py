"""Bayesian fits of the chapter's GLMMs (sections 8.2, ``cbpp``, and 8.4, ``sim_data``).

* :func:`brms_glmm_fit` is ``brms::brm(incidence | trials(size) ~ period + (1 | herd),
  family = binomial)``, written for bambi as ``p(incidence, size) ~ period + (1 | herd)``,
  or ``brm(y ~ x1 + x2 + (1 | g) + offset(log(o)), family = poisson)``, with brms's
  default priors for a non-identity link, summarised in brms's layout;
* :func:`mcmcglmm_glmm_fit` is ``MCMCglmm(cbind(s, f) ~ x, random = ~g, family =
  "multinomial2")`` (or ``family = "poisson"``) with the chapter's ``prior2`` (residual variance fixed at 1) in PyMC,
  summarised in MCMCglmm's layout, and :func:`c2_rescaled` applies the chapter's c2
  adjustment to its draws.

Both sample with nutpie, 4 chains of 1000 draws after 1000 warm-up iterations (brms's
defaults; MCMCglmm itself keeps 1000 draws of one chain).
"""

from __future__ import annotations

import warnings

import bambi as bmb
import numpy as np
import pandas as pd
import pymc as pm

from companion.bayes.models import (BayesFit, brms_table, fixed_posterior, mcmcglmm_table,
                                    sample_nutpie)
from companion.engine.formula import FormulaError
from companion.engine.validate import check_model_data
from companion.glmm.glmer import glmm_design

BRMS_LOGIT_SCALE = 2.5  # brms's Student-t(3, 0, 2.5) defaults when the link is not identity
# Diggle et al.'s constant for the logit: E[logit^-1(x + e)] ~ logit^-1(x / sqrt(1 + c2 v))
# for e ~ N(0, v); the chapter divides MCMCglmm's draws by it.
C2 = (16 * np.sqrt(3) / (15 * np.pi)) ** 2
CODA_COLUMNS = ["Mean", "SD", "2.5%", "25%", "50%", "75%", "97.5%"]


# --- brms through bambi ------------------------------------------------------------------

def brms_glmm_model(formula: str, data: pd.DataFrame, family: str = "binomial") -> bmb.Model:
    """bambi's GLMM (``family`` "binomial" or "poisson", canonical link) with brms's
    default priors for a link that is not the identity.

    brms (``get_prior``) gives the intercept of the model with centred predictors a
    ``student_t(3, 0, 2.5)``, the slopes flat priors and each group-level SD a half
    ``student_t(3, 0, 2.5)``; bambi also centres the predictors (``center_predictors``)
    and reports the uncentred intercept, as brms does.
    """
    if family not in ("binomial", "poisson"):
        raise ValueError(f"family must be 'binomial' or 'poisson', not {family!r}")
    check_model_data(data, formula=formula)
    model = bmb.Model(formula, data, family=family)
    model.set_priors(
        priors={"Intercept": bmb.Prior("StudentT", nu=3, mu=0, sigma=BRMS_LOGIT_SCALE)},
        common=bmb.Prior("Flat"),
        group_specific=bmb.Prior("Normal", mu=0, sigma=bmb.Prior(
            "HalfStudentT", nu=3, sigma=BRMS_LOGIT_SCALE)))
    return model


def _parent(model: bmb.Model):
    """The component of the response's mean (bambi's distributional component ``p``)."""
    return model.components[model.family.likelihood.parent]


def brms_glmm_draws(model: bmb.Model, idata) -> dict[str, np.ndarray]:
    """The draws of each row of brms's summary: ``sd(Intercept)`` of each group term,
    then the fixed effects with R's names (``period2`` for bambi's ``period[2]``)."""
    post = idata.posterior
    draws = {}
    for name in _parent(model).group_specific_terms:
        expression = name.split("|")[0]
        draws[f"sd({'Intercept' if expression == '1' else expression})"] = \
            post[f"{name}_sigma"].values
    draws["Intercept"] = post["Intercept"].values
    for name in _parent(model).common_terms:
        values = post[name]
        if values.ndim == 2:
            draws[name] = values.values
            continue
        dim = values.dims[-1]
        for level in values[dim].values:
            draws[f"{name}{level}"] = values.sel({dim: level}).values
    return draws


def brms_glmm_fit(formula: str, data: pd.DataFrame, family: str = "binomial",
                  draws: int = 1000, tune: int = 1000, chains: int = 4,
                  seed: int = 20232023) -> BayesFit:
    """Fit :func:`brms_glmm_model` with nutpie; the summary is in brms's layout."""
    model = brms_glmm_model(formula, data, family)
    idata = model.fit(draws=draws, tune=tune, chains=chains, random_seed=seed,
                      inference_method="nutpie", progressbar=False)
    samples = brms_glmm_draws(model, idata)
    fixed = [name for name in samples if not name.startswith("sd(")]
    return BayesFit(idata, brms_table(samples), fixed_posterior(samples, fixed))


# --- MCMCglmm's multinomial2 ---------------------------------------------------------------

def mcmcglmm_glmm_model(formula: str, data: pd.DataFrame, family: str = "binomial",
                        drop_offset: bool = True, nu: float = 0.002,
                            V: float = 1.0, residual_variance: float = 1.0,  # noqa: N803
                            fixed_variance: float = 1e10) -> pm.Model:
    """MCMCglmm's ``family = "multinomial2"`` (``family="binomial"``) or ``"poisson"``
    model with one scalar random term and the chapter's ``prior2 = list(R = list(V = 1,
    fix = 1), G = list(G1 = list(V = 1, nu = 0.002)))``:

    * ``logit p_i = x_i b + u_g[i] + e_i``, ``s_i ~ Binomial(n_i, p_i)`` (or ``log mu_i``
      and ``y_i ~ Poisson(mu_i)``): MCMCglmm always adds an observation-level residual
      ``e_i ~ N(0, units)`` to a non-Gaussian model, and ``fix = 1`` holds ``units`` at
      ``residual_variance`` (1);
    * MCMCglmm silently drops an ``offset()`` in its fixed formula: on sim_data the
      chapter's printed intercept (1.43) is that of the model without the offset.
      ``drop_offset=True`` does the same, with a warning; ``False`` keeps the offset;
    * ``u_g ~ N(0, herd)`` with MCMCglmm's inverse-Wishart prior ``(V, nu)`` on ``herd``,
      for a scalar an inverse gamma with shape ``nu / 2`` and scale ``nu V / 2``;
    * the fixed effects have MCMCglmm's default prior ``N(0, 1e10)``.

    Both sets of effects are sampled non-centred (``u = sqrt(herd) z``), since the
    posterior of ``herd`` reaches close to zero.
    """
    if family not in ("binomial", "poisson"):
        raise ValueError(f"family must be 'binomial' or 'poisson', not {family!r}")
    design, _, parsed = glmm_design(formula, data, family)
    offset = design.offset
    if drop_offset and np.any(offset != 0):
        warnings.warn("MCMCglmm ignores offset() terms; the offset is dropped as MCMCglmm "
                      "drops it (drop_offset=False keeps it)", UserWarning, stacklevel=2)
        offset = np.zeros_like(offset)
    if len(design.blocks) != 1 or design.blocks[0].n_columns != 1:
        raise FormulaError(f"{formula!r}: the multinomial2 model here takes exactly one "
                           "scalar random term such as (1 | g)")
    block = design.blocks[0]
    group = parsed.random[0].group_name

    coords = {"fixed": design.fixed_names, "level": block.levels, "obs": np.arange(design.n)}
    with pm.Model(coords=coords) as model:
        b = pm.Normal("b", 0.0, np.sqrt(fixed_variance), dims="fixed")
        variance = pm.InverseGamma(group, alpha=nu / 2, beta=nu * V / 2)
        z = pm.Normal("z", 0.0, 1.0, dims="level")
        u = pm.Deterministic("u", pm.math.sqrt(variance) * z, dims="level")
        e = pm.Normal("e", 0.0, np.sqrt(residual_variance), dims="obs")
        eta = offset + pm.math.dot(design.X, b) + u[block.codes] * block.raw[:, 0] + e
        if family == "binomial":
            pm.Binomial("y", n=design.weights, logit_p=eta,
                        observed=np.rint(design.y * design.weights), dims="obs")
        else:
            pm.Poisson("y", mu=pm.math.exp(eta), observed=design.y, dims="obs")
    model.group_name = group
    return model


def mcmcglmm_glmm_fit(formula: str, data: pd.DataFrame, family: str = "binomial",
                      draws: int = 1000, tune: int = 1000, chains: int = 4,
                      seed: int = 20232023, **options) -> BayesFit:
    """Fit :func:`mcmcglmm_glmm_model` (``options`` passes ``drop_offset``, ``nu``,
    ``V``, ``residual_variance``) with nutpie; the summary is in MCMCglmm's layout: the
    G-structure, the fixed ``units`` (coda gives a constant chain an ESS of 0) and the
    location effects."""
    model = mcmcglmm_glmm_model(formula, data, family, **options)
    # smaller steps: at nutpie's default 0.8 about 1% of the transitions diverge where
    # the inverse-gamma prior walls off the herd variance near zero
    # keep what MCMCglmm keeps by default (pl = FALSE): not the draws of the n residuals,
    # nor the warm-up
    idata = sample_nutpie(model, draws, tune, chains, seed, target_accept=0.9, drop=("e",))
    units = options.get("residual_variance", 1.0)
    idata.posterior.attrs["residual_variance"] = units
    samples = mcmcglmm_glmm_draws(idata, model.group_name)
    table = mcmcglmm_table(samples)
    fixed_units = pd.DataFrame([[units] * 3 + [0.0]], index=["units"], columns=table.columns)
    fixed = [name for name in samples if name != model.group_name]
    return BayesFit(idata, pd.concat([table.iloc[:1], fixed_units, table.iloc[1:]]),
                    fixed_posterior(samples, fixed))


def mcmcglmm_glmm_draws(idata, group: str) -> dict[str, np.ndarray]:
    """The draws (chain x draw) of the group variance, then of the location effects."""
    post = idata.posterior
    draws = {group: post[group].values}
    draws |= {str(f): post["b"].sel(fixed=f).values for f in post["fixed"].values}
    return draws


def c2_rescaled(fit: BayesFit, group: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The chapter's adjustment of MCMCglmm's draws to the scale of a model without the
    observation-level residual: location effects divided by ``sqrt(1 + c2 units)``,
    variances by ``1 + c2 units``; each summarised as coda's ``summary`` (mean, SD,
    quantiles)."""
    units = fit.idata.posterior.attrs["residual_variance"]
    draws = mcmcglmm_glmm_draws(fit.idata, group)
    factor = 1 + C2 * units
    location = {name: x / np.sqrt(factor) for name, x in draws.items() if name != group}
    variances = {group: draws[group] / factor,
                 "units": np.full_like(draws[group], units / factor)}
    return _coda_table(location), _coda_table(variances)


def _coda_table(draws: dict[str, np.ndarray]) -> pd.DataFrame:
    rows = {name: [x.mean(), x.std(ddof=1),
                   *np.quantile(x, [0.025, 0.25, 0.5, 0.75, 0.975])]
            for name, x in draws.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=CODA_COLUMNS)
