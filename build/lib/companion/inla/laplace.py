"""The latent field of ``companion.inla`` for a binomial (logit) or Poisson (log) likelihood.

Given theta (the log precision of the iid random intercept), the latent field
``x = (beta, u)`` is approximated by the Gaussian at its mode, found by Newton's method
(penalized IRLS, warm-started from the previous theta), with precision
``H = Q(theta) + A' W A`` there. Its mean is then corrected as R-INLA does by default in
compact mode (``control.vb`` in ``rinla/R/set.default.arguments.R``: ``enable = "auto"``,
``strategy = "mean"``; every node, as the fixed effects and an ``f()`` of at most
``f.enable.limit = 30`` levels are all corrected): with the covariance ``H^-1`` kept, the
mean minimizes the Kullback-Leibler divergence from the posterior,
``-sum_i E log p(y_i | eta_i) + x' Q x / 2``, the expectations over
``eta_i ~ N(a_i' x, a_i' H^-1 a_i)`` by 15-point Gauss-Hermite quadrature (GMRFLib's
``GMRFLib_ai_vb_correct_mean_preopt`` and ``GMRFLib_ai_vb_prepare_mean`` in
``approx-inference.c``; van Niekerk & Rue, "Low-rank variational Bayes correction to the
Laplace method", JMLR 2024). Each fixed effect's conditional posterior is then the
Gaussian with that mean and the Laplace variance (``approx-inference.c`` creates the
Gaussian, then shifts its mean). R-INLA iterates with the Hessian fixed and stops once
the step is below 0.01 standard deviations; Newton's method to convergence finds the same
point (here to 1e-6). Left out: R-INLA's safeguards, which cap a step at 5 sd and drop a
correction above 25 sd.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from companion.engine.design import Design
from companion.engine.families import check_response
from companion.engine.families import family as glm_family
from companion.inla.priors import FIXED_PRECISION, GAMMA_PRIOR, INTERCEPT_PRECISION

NEWTON_TOL = 1e-10  # largest Newton step at convergence
GH_NODES, GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(15)  # GMRFLib_INT_GHQ_POINTS
GH_WEIGHTS = GH_WEIGHTS / GH_WEIGHTS.sum()


class LaplaceModel:
    """``log p(theta | y)`` and the fixed effects' Gaussian approximation given theta for
    ``y ~ fixed + (1 | g)`` with a binomial or Poisson likelihood; the interface of
    :class:`companion.inla.model._Model`."""

    dim = 1
    start = np.array([0.0])

    def __init__(self, design: Design, family: str, ntrials: np.ndarray | None):
        block = design.blocks[0]
        self.family, self.group, self.fixed_names = family, block.group, design.fixed_names
        self.y, self.offset, self.trials = design.y, design.offset, ntrials
        _check_counts(family, self.y, ntrials)
        self.k, self.m = design.X.shape[1], block.n_levels
        self.a = np.hstack([design.X, block.z()])  # eta = a @ x + offset
        self.prior_precision = np.array([INTERCEPT_PRECISION if name == "(Intercept)"
                                         else FIXED_PRECISION for name in self.fixed_names])
        self.x = np.zeros(self.k + self.m)  # warm start: the last mode found

    def names(self) -> list[str]:
        return [f"Precision for {self.group}"]

    def log_prior(self, theta: np.ndarray) -> np.ndarray:
        a, b = GAMMA_PRIOR
        return a * theta[:, 0] - b * np.exp(theta[:, 0])

    def _mean_and_weight(self, eta: np.ndarray):
        """E(y | eta) and -d2 log p(y | eta) / d eta2, for each column of ``eta``."""
        if self.family == "binomial":
            p = special.expit(eta)
            return self.trials[:, None] * p, self.trials[:, None] * p * (1 - p)
        mu = np.exp(eta)
        return mu, mu

    def _precision(self, theta: float) -> np.ndarray:
        return np.r_[self.prior_precision, np.full(self.m, np.exp(theta))]

    def laplace(self, theta: float):
        """The mode of ``p(x | theta, y)``, ``log p(theta | y) - log p(theta)`` up to a
        constant (the Laplace approximation) and ``H^-1``."""
        q = self._precision(theta)

        def objective(x):
            eta = self.a @ x + self.offset
            mean, weight = (v[:, 0] for v in self._mean_and_weight(eta[:, None]))
            if self.family == "binomial":
                loglik = self.y @ eta - self.trials @ np.logaddexp(0, eta)
            else:
                loglik = self.y @ eta - mean.sum()
            return loglik - q @ x**2 / 2, self.a.T @ (self.y - mean) - q * x, weight

        x, (value, grad, w) = self.x, objective(self.x)
        for _ in range(100):
            step = np.linalg.solve(self.a.T @ (w[:, None] * self.a) + np.diag(q), grad)
            new = objective(x + step)
            while new[0] < value - 1e-12 and np.abs(step).max() > NEWTON_TOL:
                step /= 2
                new = objective(x + step)
            x, (value, grad, w) = x + step, new
            if np.abs(step).max() < NEWTON_TOL:
                break
        else:
            raise RuntimeError(f"no mode of the latent field at theta = {theta:.4g}")
        self.x = x
        chol = np.linalg.cholesky(self.a.T @ (w[:, None] * self.a) + np.diag(q))
        inverse = np.linalg.inv(chol)
        log_det = 2 * np.log(np.diagonal(chol)).sum()
        return x, value + self.m / 2 * theta - log_det / 2, inverse.T @ inverse

    def vb_mean(self, theta: float, x: np.ndarray, cov: np.ndarray) -> np.ndarray:
        """R-INLA's variational-Bayes correction of the mean ``x`` (covariance ``cov``)."""
        q = self._precision(theta)
        sd_eta = np.sqrt(np.einsum("ij,jk,ik->i", self.a, cov, self.a))[:, None]
        for _ in range(100):
            eta = (self.a @ x + self.offset)[:, None] + sd_eta * GH_NODES
            mean, weight = (v @ GH_WEIGHTS for v in self._mean_and_weight(eta))
            hessian = self.a.T @ (weight[:, None] * self.a) + np.diag(q)
            step = np.linalg.solve(hessian, self.a.T @ (self.y - mean) - q * x)
            x = x + step
            if np.abs(step).max() < NEWTON_TOL:
                return x
        raise RuntimeError(f"the VB mean correction did not converge at theta = {theta:.4g}")

    def conditional(self, theta: np.ndarray):
        """``log p(theta | y)`` up to a constant, and the fixed effects' Gaussian
        approximation given theta (VB-corrected means, Laplace variances), for each row."""
        logpost, beta, var = [], [], []
        for t in theta[:, 0]:
            x, value, cov = self.laplace(t)
            logpost.append(value)
            beta.append(self.vb_mean(t, x, cov)[:self.k])
            var.append(np.diagonal(cov)[:self.k])
        return np.array(logpost) + self.log_prior(theta), np.array(beta), np.array(var)

    def log_posterior(self, theta: np.ndarray) -> np.ndarray:
        theta = np.atleast_2d(theta)
        return np.array([self.laplace(t)[1] for t in theta[:, 0]]) + self.log_prior(theta)


def _check_counts(family: str, y: np.ndarray, trials: np.ndarray | None) -> None:
    """Refuse counts that are negative or not whole, and successes above the trials."""
    if family == "poisson":
        check_response(glm_family("poisson"), y, np.ones_like(y))
        return
    for name, values in (("binomial successes (the response)", y), ("ntrials", trials)):
        if not np.all(np.isfinite(values)) or np.any(values < 0) \
                or not np.allclose(values, np.rint(values)):
            raise ValueError(f"{name} must be non-negative whole numbers")
    if np.any(y > trials):
        raise ValueError(f"binomial successes exceed ntrials in {int(np.sum(y > trials))} "
                         "rows; the response counts the successes out of ntrials")
