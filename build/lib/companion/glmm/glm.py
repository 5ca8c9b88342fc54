"""``glm``: a generalized linear model without random effects, by IRLS (R's ``glm``), for
the baselines the chapter compares the mixed models with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from companion.engine.binomial import binomial_response
from companion.engine.design import build_design
from companion.engine.families import check_response, family as make_family
from companion.engine.formula import parse_formula
from companion.engine.laplace import glm_fit
from companion.engine.prediction import LinearPredictor
from companion.results import ModelResult, empty_varcorr


@dataclass(repr=False)
class GlmResult(ModelResult):
    """A GLM fit under the shared names; ``deviance`` is R's residual deviance."""

    formula: str
    family: str
    fixef: pd.Series
    vcov: pd.DataFrame
    loglik: float
    deviance: float
    nobs: int
    link_inverse: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)
    predictor: LinearPredictor | None = field(default=None, repr=False)
    varcorr: pd.DataFrame = field(default_factory=empty_varcorr)
    ranef: dict = field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"Generalized linear model fit by maximum likelihood (IRLS)\n Family: {self.family}"

    @property
    def n_params(self) -> int:
        return len(self.fixef)


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
                     fam.loglik(y, mu, w), float(fam.dev_resid(y, mu, w).sum()), design.n,
                     link_inverse=fam.link.linkinv, predictor=LinearPredictor(design))
