"""R-INLA's default priors, shared by the Gaussian model and the Laplace approximation."""

GAMMA_PRIOR = (1.0, 5e-05)  # loggamma(shape, rate) for every precision
WISHART_PRIOR = (4.0, 1.0, 1.0, 0.0)  # wishart2d (r, R11, R22, R12)
FIXED_PRECISION, INTERCEPT_PRECISION = 0.001, 0.0  # normal priors of the fixed effects
