"""The frequentist engine shared by every fitter, in lme4's formulation: a formula and
data become a design (``formula``, ``contrasts``, ``design``), the random effects a sparse
or blocked system (``blocked``, ``dense``), and the system a deviance in the relative
covariance factor theta: profiled for LMMs (``profiled``), Laplace or adaptive
Gauss-Hermite by PIRLS for GLMMs (``laplace``, ``dispersion``, ``families``), minimized
and checked by ``optimize``. Nothing here imports from the rest of the package."""
