"""Bayesian mixed models with PyMC (sampled by nutpie) in the chapter's brms and MCMCglmm
formulations: LMMs (``models``), GLMMs (``glmm``) and the nonlinear growth model
(``nlmm``). Importing this package loads PyMC."""

from companion.bayes.glmm import brms_glmm_fit, mcmcglmm_glmm_fit
from companion.bayes.models import BayesFit, brms_fit, mcmcglmm_fit
from companion.bayes.nlmm import brms_asymptotic_fit

__all__ = ["BayesFit", "brms_asymptotic_fit", "brms_fit", "brms_glmm_fit", "mcmcglmm_fit",
           "mcmcglmm_glmm_fit"]
