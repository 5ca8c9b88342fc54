"""The chapter's INLA fits (``INLA::inla`` with ``iid`` and ``iid2d`` random effects):
``companion.inla.inla`` (module ``model``), R-INLA's default priors (``priors``), the
Laplace approximation for non-Gaussian families (``laplace``) and the posterior
densities (``density``)."""

from companion.inla.model import COLUMNS, InlaResult, inla
from companion.inla.priors import (FIXED_PRECISION, GAMMA_PRIOR, INTERCEPT_PRECISION,
                                   WISHART_PRIOR)

__all__ = ["COLUMNS", "FIXED_PRECISION", "GAMMA_PRIOR", "INTERCEPT_PRECISION", "InlaResult",
           "WISHART_PRIOR", "inla"]
