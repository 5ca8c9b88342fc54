"""``glmmpql``: penalized quasi-likelihood, as MASS::glmmPQL does it.

Start from the GLM without random effects; then repeat: fit a weighted linear mixed model
by ML to the working response ``eta + (y - mu) / (dmu/deta)`` with the working weights
``w (dmu/deta)^2 / V(mu)``, and recompute the working quantities from its fitted values
(random effects included). MASS stops when ``sum((eta - eta_old)^2) < 1e-6 sum(eta^2)``
or after ``niter`` fits; so do we, so that the numbers are R's. The residual standard
deviation is estimated (it is 1 only if the GLM's variance is right), and the standard
errors are printed as nlme prints an ML fit's: scaled by ``sqrt(N / (N - p))``.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd

from companion.engine.laplace import glm_fit
from companion.glmm.glmer import glmm_design
from companion.lmm.lmer import lmer
from companion.results import MixedModelResult, PqlResult


class PQLConvergenceWarning(UserWarning):
    """The PQL iterations reached ``niter`` before the linear predictor settled."""


def glmmpql(formula: str, data: pd.DataFrame, family="binomial", link: str | None = None,
            offset=None, weights=None, niter: int = 10) -> PqlResult:
    """Fit a GLMM by PQL with lme4's formula syntax (``cbind(s, f) ~ x + (1 | g)``).

    The result has the usual names; ``sigma`` is the residual SD of the last linear mixed
    model, ``se`` is nlme's printed (scaled) standard error, ``loglik`` is NaN (PQL has
    no likelihood) and ``pql_iterations`` counts the weighted fits.
    """
    design, fam, parsed = glmm_design(formula, data, family, link, offset, weights)
    y, w, X, off = design.y, design.weights, design.X, design.offset
    beta = glm_fit(X, y, w, off, fam)
    eta = off + X @ beta
    frame = design.frame.copy()
    random = " + ".join(f"({t.expr} | {t.group_name})" for t in parsed.random)
    lmm_formula = f".pql_response ~ {parsed.fixed} + {random}"
    fit = None
    for iteration in range(1, niter + 1):  # noqa: B007 - the count is reported
        mu = fam.link.linkinv(eta)
        d_mu = fam.link.mu_eta(eta)
        frame[".pql_response"] = eta - off + (y - mu) / d_mu
        working_weights = w * d_mu**2 / fam.variance(mu)
        fit = lmer(lmm_formula, frame, reml=False, weights=working_weights)
        eta_old = eta
        eta = fit.fitted.to_numpy() + off
        if np.sum((eta - eta_old) ** 2) < 1e-6 * np.sum(eta**2):
            break
    else:
        warnings.warn(f"PQL did not settle in {niter} iterations; raise niter",
                      PQLConvergenceWarning, stacklevel=2)
    n, p = X.shape
    scaled = fit.vcov * n / (n - p)  # nlme's adjustSigma for ML fits
    return _pql_result(formula, fit, scaled, fam, iteration, frame, working_weights)


def _pql_result(formula, fit: MixedModelResult, vcov, fam, iterations, frame, weights):
    working = frame[".pql_response"].to_numpy()
    standardized = (working - fit.fitted.to_numpy()) * np.sqrt(weights) / fit.sigma
    shared = {f.name: getattr(fit, f.name) for f in dataclasses.fields(MixedModelResult)}
    return PqlResult(**shared | dict(
        title="Linear mixed-effects model fit by maximum likelihood (penalized "
              f"quasi-likelihood)\n Family: {fam}",
        method="PQL", vcov=vcov, loglik=float("nan"),
        fitted=pd.Series(fam.link.linkinv(fit.fitted.to_numpy()), index=fit.fitted.index,
                         name="fitted"),
        resid=pd.Series(standardized, index=fit.fitted.index, name="resid"),
        scaled_resid=pd.Series(standardized, index=fit.fitted.index), reml_criterion=None,
        deviance=None, devfun=None, refit_ml=None, refitter=None),
        family=str(fam), link_inverse=fam.link.linkinv, iterations=iterations)
