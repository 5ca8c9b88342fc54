"""The fitting methods of the simulation study (:mod:`companion.study`), one function each.

========  ============================================================================
laplace   ``companion.glmer`` (Laplace approximation, lme4's default)
aghq      ``companion.glmer(..., nagq=11)`` (adaptive Gauss-Hermite quadrature)
pql       ``companion.glmmpql`` (MASS::glmmPQL)
reml      ``companion.glmer_reml`` (restricted Laplace; glmmTMB REML = TRUE, mgcv)
gee       statsmodels ``GEE`` with an exchangeable working correlation
inla      ``companion.inla`` (nested Laplace, R-INLA's default priors)
========  ============================================================================

Each returns ``{parameter: (estimate, se, lower, upper)}`` for ``(Intercept)``, ``x1``,
``x2`` and ``sd_g`` (the random-intercept SD), with 95% intervals: Wald for the
likelihood methods, credible for INLA, gam.vcomp's for the REML SD.

What is estimated where:

* Laplace and AGHQ give the SD's interval as glmmTMB's ``confint`` does, Wald on the log
  scale with the SE from the deviance's Hessian (lme4's profile intervals are not
  implemented for GLMMs here). PQL gives none (nlme's ``intervals`` is not implemented), so
  its SD coverage is missing.
* INLA's SD is the posterior median ``1 / sqrt(median precision)``, its interval the
  transformed precision quantiles, its "SE" the delta-method posterior SD.
* GEE estimates the *population-averaged* coefficients and no SD. Its truth
  (:func:`method_truth`) is the marginal parameter: for the log link the intercept is
  ``b0 + sd^2 / 2`` (exact), the slopes unchanged; for the logit link every coefficient is
  ``b / sqrt(1 + c^2 sd^2)``, ``c = 16 sqrt(3) / (15 pi)`` (Zeger, Liang & Albert 1988;
  an approximation).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from companion.compare.intervals import Z95, sd_wald_log
from companion.study.scenarios import Scenario

METHODS = ("laplace", "aghq", "pql", "reml", "gee", "inla")
PARAMETERS = ("(Intercept)", "x1", "x2", "sd_g")
FORMULA = "y ~ x1 + x2 + (1 | g)"


def _wald(fixef: pd.Series, se: pd.Series) -> dict[str, tuple]:
    return {name: (float(fixef[name]), float(se[name]), float(fixef[name] - Z95 * se[name]),
                   float(fixef[name] + Z95 * se[name])) for name in fixef.index}


def _group_sd(fit) -> float:
    row = fit.varcorr[fit.varcorr["group"] == "g"]
    return float(row["sdcor"].iloc[0])


def _fit_glmer(data, family, nagq=1):
    from companion.glmm.glmer import glmer

    fit = glmer(FORMULA, data, family=family, nagq=nagq, offset=np.log(data["o"].to_numpy()))
    return {**_wald(fit.fixef, fit.se), "sd_g": sd_wald_log(fit)}



def _fit_pql(data, family):
    from companion.glmm.pql import glmmpql

    fit = glmmpql(FORMULA, data, family=family, offset=np.log(data["o"].to_numpy()))
    return {**_wald(fit.fixef, fit.se), "sd_g": (_group_sd(fit), np.nan, np.nan, np.nan)}


def _fit_reml(data, family):
    from companion.glmm.glmm_reml import glmer_reml

    fit = glmer_reml(FORMULA, data, family=family, offset=np.log(data["o"].to_numpy()))
    sd = (_group_sd(fit), np.nan, np.nan, np.nan)
    if getattr(fit, "vcomp", None) is not None and len(fit.vcomp):
        row = fit.vcomp.iloc[0]
        sd = (float(row["std.dev"]), np.nan, float(row["lower"]), float(row["upper"]))
    return {**_wald(fit.fixef, fit.se), "sd_g": sd}


def _fit_gee(data, family):
    import statsmodels.api as sm

    fam = sm.families.Poisson() if family == "poisson" else sm.families.Binomial()
    exog = pd.DataFrame({"(Intercept)": 1.0, "x1": data["x1"], "x2": data["x2"]})
    model = sm.GEE(data["y"].astype(float), exog, groups=data["g"].cat.codes.to_numpy(),
                   family=fam, cov_struct=sm.cov_struct.Exchangeable(),
                   offset=np.log(data["o"].to_numpy()))
    fit = model.fit()
    return {**_wald(fit.params, fit.bse), "sd_g": (np.nan, np.nan, np.nan, np.nan)}


def _fit_inla(data, family):
    from companion.inla.model import inla

    ntrials = np.ones(len(data)) if family == "binomial" else None
    fit = inla(FORMULA, data, family=family, ntrials=ntrials,
               offset=np.log(data["o"].to_numpy()))
    out = {name: (float(row["mean"]), float(row["sd"]), float(row["0.025quant"]),
                  float(row["0.975quant"])) for name, row in fit.fixed.iterrows()}
    prec = fit.hyperpar.iloc[0]  # "Precision for g"
    sd_post = prec["sd"] / (2 * prec["mean"] ** 1.5)  # delta method, SD = precision^-1/2
    out["sd_g"] = (float(prec["0.5quant"] ** -0.5), float(sd_post),
                   float(prec["0.975quant"] ** -0.5), float(prec["0.025quant"] ** -0.5))
    return out


FITTERS: dict[str, Callable] = {
    "laplace": lambda data, family: _fit_glmer(data, family, 1),
    "aghq": lambda data, family: _fit_glmer(data, family, 11),
    "pql": _fit_pql,
    "reml": _fit_reml,
    "gee": _fit_gee,
    "inla": _fit_inla,
}


def method_truth(scenario: Scenario, method: str) -> dict[str, float]:
    """The values a method estimates: the scenario's, except GEE's marginal coefficients."""
    truth = scenario.truth()
    if method != "gee":
        return truth
    s2 = scenario.sd**2
    names = ["(Intercept)", "x1", "x2"]
    if scenario.family == "poisson":
        marginal = {**{n: truth[n] for n in names}, "(Intercept)": truth["(Intercept)"] + s2 / 2}
    else:
        c = 16 * math.sqrt(3) / (15 * math.pi)
        marginal = {n: truth[n] / math.sqrt(1 + c**2 * s2) for n in names}
    return {**marginal, "sd_g": np.nan}
