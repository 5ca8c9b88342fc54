"""``glm``: a generalized linear model without random effects, by IRLS (R's ``glm``), for
the baselines the chapter compares the mixed models with."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from companion.engine.binomial import binomial_response
from companion.engine.design import build_design
from companion.engine.families import check_response, family as make_family
from companion.engine.formula import parse_formula
from companion.engine.laplace import glm_fit


@dataclass
class GlmResult:
    formula: str
    family: str
    fixef: pd.Series
    vcov: pd.DataFrame
    loglik: float
    deviance: float
    nobs: int

    @property
    def se(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.vcov)), index=self.fixef.index, name="se")

    @property
    def aic(self) -> float:
        return -2 * self.loglik + 2 * len(self.fixef)

    def summary(self) -> pd.DataFrame:
        z = self.fixef / self.se
        return pd.DataFrame({"Estimate": self.fixef, "Std. Error": self.se, "z value": z,
                             "Pr(>|z|)": 2 * stats.norm.sf(np.abs(z))})


def glm(formula: str, data: pd.DataFrame, family="poisson", link: str | None = None,
        offset=None, weights=None) -> GlmResult:
    """Fit a GLM (binomial or Poisson; the dispersion is 1) with R's formula syntax."""
    fam = make_family(family, link)
    parsed = parse_formula(formula)
    if parsed.random:
        raise ValueError("glm() takes no random-effects terms; use glmer() for a GLMM")
    parsed, data, weights = binomial_response(parsed, data, fam, weights)
    design = build_design(parsed, data, weights=weights, offset=offset)
    y, w, X, off = design.y, design.weights, design.X, design.offset
    check_response(fam, y, w)
    beta = glm_fit(X, y, w, off, fam)
    eta = off + X @ beta
    mu = fam.link.linkinv(eta)
    weights_irls = w * fam.link.mu_eta(eta) ** 2 / fam.variance(mu)
    names = design.fixed_names
    vcov = np.linalg.inv(X.T @ (X * weights_irls[:, None]))
    return GlmResult(formula, str(fam), pd.Series(beta, index=names, name="fixef"),
                     pd.DataFrame(vcov, index=names, columns=names),
                     fam.loglik(y, mu, w), float(fam.dev_resid(y, mu, w).sum()), design.n)
