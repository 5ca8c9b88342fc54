"""The chapter's Bayesian nonlinear mixed model (section 8.3.3) in PyMC, sampled by nutpie.

``brms::brm(bf(height ~ Asym + (R0 - Asym) * exp(-exp(lrc) * age), R0 + lrc ~ 1,
Asym ~ 1 + (1 | Seed), nl = TRUE), prior = lob_prior)``: the asymptotic regression with a
random asymptote per seed, and the chapter's informative priors with their bounds:

* ``Asym_Intercept ~ normal(101, 0.1)`` on ``[100, 102]``;
* ``R0_Intercept ~ normal(-8, 1)`` above -10, ``lrc_Intercept ~ normal(-3, 3)`` above -9;
* ``sigma ~ normal(3, 0.2)`` above 0 (brms bounds every ``sigma`` at 0);
* ``sd(Asym_Intercept)``: brms's default, a half ``student_t(3, 0, s)`` with ``s =
  max(2.5, round(mad(height), 1))`` (:func:`companion.bayes.models.brms_default_priors`).

The seed effects are non-centred, ``r = sd * z``, as brms writes them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm

from companion.bayes.models import (BayesFit, brms_default_priors, brms_table, fixed_posterior,
                                    sample_nutpie)
from companion.engine.validate import check_model_data

CHAPTER_PRIORS = {"Asym": (101.0, 0.1, 100.0, 102.0), "R0": (-8.0, 1.0, -10.0, None),
                  "lrc": (-3.0, 3.0, -9.0, None), "sigma": (3.0, 0.2, 0.0, None)}


def brms_asymptotic_model(data: pd.DataFrame, response: str = "height", covariate: str = "age",
                          group: str = "Seed", priors: dict | None = None) -> pm.Model:
    """The model above; ``priors`` maps each of Asym, R0, lrc, sigma to ``(mean, sd, lower,
    upper)`` of a (truncated) normal, the chapter's by default."""
    priors = CHAPTER_PRIORS | (priors or {})
    check_model_data(data, [response, covariate])
    y = data[response].to_numpy(float)
    x = data[covariate].to_numpy(float)
    groups = pd.Categorical(data[group])
    sd_scale = brms_default_priors(y)["scale"]
    with pm.Model(coords={"level": list(groups.categories)}) as model:
        def bounded(name):
            mean, sd, lower, upper = priors[name]
            return pm.TruncatedNormal(name, mu=mean, sigma=sd, lower=lower, upper=upper)

        asym, r0, lrc, sigma = (bounded(name) for name in ("Asym", "R0", "lrc", "sigma"))
        sd = pm.HalfStudentT("sd_Asym", nu=3, sigma=sd_scale)
        z = pm.Normal("z", 0.0, 1.0, dims="level")
        r = pm.Deterministic("r_Asym", sd * z, dims="level")
        asym_row = asym + r[groups.codes]
        mu = asym_row + (r0 - asym_row) * pm.math.exp(-pm.math.exp(lrc) * x)
        pm.Normal("y", mu=mu, sigma=sigma, observed=y)
    return model


def brms_asymptotic_draws(idata) -> dict[str, np.ndarray]:
    """The draws of brms's summary rows, named as brms names them."""
    post = idata.posterior
    return {"sd(Asym_Intercept)": post["sd_Asym"].values,
            "R0_Intercept": post["R0"].values, "lrc_Intercept": post["lrc"].values,
            "Asym_Intercept": post["Asym"].values, "sigma": post["sigma"].values}


def brms_asymptotic_fit(data: pd.DataFrame, draws: int = 1000, tune: int = 1000,
                        chains: int = 4, seed: int = 20232023, **model_args) -> BayesFit:
    """Fit :func:`brms_asymptotic_model` with nutpie; the summary is in brms's layout."""
    idata = sample_nutpie(brms_asymptotic_model(data, **model_args), draws, tune, chains,
                          seed)
    samples = brms_asymptotic_draws(idata)
    fixed = fixed_posterior(samples, ["Asym_Intercept", "R0_Intercept", "lrc_Intercept"])
    fixed.index = ["Asym", "R0", "lrc"]  # nlme's and nlmer's names of the parameters
    return BayesFit(idata, brms_table(samples), fixed)
