"""Laplace (or quadrature) deviances of GLMMs whose family has a free parameter, estimated
with ``(theta, beta)``: the parameter vector is ``(theta, beta, log p)``.

* :class:`GammaLaplace`, the Gamma with dispersion ``phi`` (glmmTMB's ``family = Gamma``):
  given ``phi`` the model is a GLMM with prior weights ``w / phi`` (shape ``w / phi``).
  The Laplace factor uses the observed information at the modes, ``I + Lambda' Z' W Z
  Lambda`` with ``W = -d^2 log f / d eta^2``, as TMB's exact Hessian does, not the
  expected (Fisher) weights lme4 uses; with the log link they differ (``W = (w / phi) y /
  mu`` against ``w / phi``) and so do the log-likelihoods, in the third decimal. The
  standard errors come from the Hessian in all parameters, as glmmTMB's ``sdreport``.
* :class:`NegativeBinomialLaplace`, the negative binomial with shape ``theta_nb``
  (``lme4::glmer.nb``): given ``theta_nb`` the model is lme4's GLMM with
  ``negative.binomial(theta_nb)``, Fisher weights and all; ``glmer.nb`` maximizes the same
  profile over ``theta_nb``. As there, the standard errors hold ``theta_nb`` fixed.

In both, ``-2 log L = D(theta, beta; p) - 2 (saturated log-likelihood at p)``, since the
saturated model depends on ``p``. The gradient is the inner exact one in ``(theta,
beta)`` for the negative binomial with one random term, numerical otherwise. With ``nagq > 1`` the
quadrature around the modes is kept as it is: it converges to the integral either way.
"""

from __future__ import annotations

import numpy as np

from companion.engine.dense import make_structure
from companion.engine.families import family as make_family
from companion.engine.laplace import LaplaceDeviance, glm_fit
from companion.engine.optimize import with_numerical_gradient

ETA_STEP = 1e-6  # central difference of mu'(eta) / V(mu) in eta
LOG_P_STEP = 1e-5  # central difference in log p


class _ParameterLaplace:
    """``-2 log L`` over ``(theta, beta, log p)``; everything else is the inner
    deviance's, with the family's parameter set to the ``p`` in hand."""

    exact_gradient = False  # numerical, through with_numerical_gradient
    observed_information = False

    def __init__(self, inner: LaplaceDeviance):
        self.inner = inner
        self.base_weights = inner.w.copy()
        self.evaluations = 0
        self._structure = None  # the random effects' structure, for the observed log det

    def __getattr__(self, name):  # layout, design, family, nagq, n_theta, random_effects ...
        return getattr(self.inner, name)

    def _use(self, log_p: float) -> None:
        raise NotImplementedError

    def _start_parameter(self, mu: np.ndarray, n_fixed: int) -> float:
        raise NotImplementedError

    def start(self) -> np.ndarray:
        """The inner start, and the parameter's moment estimate from the GLM without
        random effects."""
        inner = self.inner
        beta = glm_fit(inner.X, inner.y, self.base_weights, inner.offset, inner.family)
        mu = inner.family.link.linkinv(inner.offset + inner.X @ beta)
        log_p = np.log(self._start_parameter(mu, len(beta)))
        return np.concatenate([inner.layout.start(), beta, [log_p]])

    def lower_bounds(self) -> np.ndarray:
        return np.append(self.inner.lower_bounds(), -np.inf)

    def split(self, phi):
        return self.inner.split(np.asarray(phi, float)[:-1])

    def parameter(self, phi) -> float:
        return float(np.exp(phi[-1]))

    def solve(self, phi) -> dict:
        self._use(phi[-1])
        state = self.inner.solve(np.asarray(phi, float)[:-1])
        state["phi"], state["log_p"] = np.asarray(phi, float)[:-1], float(phi[-1])
        return state

    def deviance(self, state) -> float:
        self._use(state["log_p"])
        value = self.inner.deviance(state) - 2 * self.inner.saturated_loglik()
        if self.observed_information and self.inner.nagq == 1:
            value += self._log_det(state, observed=True) - self._log_det(state, observed=False)
        return value

    def _log_det(self, state, observed: bool) -> float:
        """``log |I + Lambda' Z' W Z Lambda|`` at the modes, with the observed or the
        expected (Fisher) weights."""
        inner, eta, mu = self.inner, state["eta"], state["mu"]
        fam, w = inner.family, inner.w
        weights = w * fam.link.mu_eta(eta) ** 2 / fam.variance(mu)
        if observed:
            def ratio(e):
                return fam.link.mu_eta(e) / fam.variance(fam.link.linkinv(e))
            h = ETA_STEP * np.maximum(1.0, np.abs(eta))
            slope = (ratio(eta + h) - ratio(eta - h)) / (2 * h)
            weights = weights - (inner.y - mu) * w * slope
        theta, _ = inner.split(state["phi"])
        if self._structure is None:
            self._structure = make_structure(inner.design.blocks, len(inner.y))
        lam = self._structure.relative_covariance(inner.layout.templates(theta))
        try:  # the blocked factor, as PIRLS uses: no n x q matrix for many levels
            factor = self._structure.factor(self._structure.cross_products(weights), lam)
        except np.linalg.LinAlgError:
            raise np.linalg.LinAlgError("the observed information at the modes is not "
                                        "positive definite") from None
        return float(factor.log_det)

    def saturated_loglik(self) -> float:
        return 0.0  # inside deviance(), which is -2 log L itself

    __call__ = LaplaceDeviance.__call__  # this class's solve() and deviance(), inf on failure

    def value_and_gradient(self, phi):
        """The inner deviance's exact gradient in ``(theta, beta)`` where it has one and
        the Laplace factor is the inner one; a central difference in ``log p``."""
        if self.observed_information or not self.inner.exact_gradient:
            return with_numerical_gradient(self, self.lower_bounds())(phi)
        phi = np.asarray(phi, float)
        self.evaluations += 1
        self._use(phi[-1])
        value, gradient = self.inner.value_and_gradient(phi[:-1])
        if not np.isfinite(value):
            return value, np.append(gradient, 0.0)
        value -= 2 * self.inner.saturated_loglik()
        step = LOG_P_STEP * max(1.0, abs(phi[-1]))
        up, down = phi.copy(), phi.copy()
        up[-1] += step
        down[-1] -= step
        slope = (self(up) - self(down)) / (2 * step)
        self._use(phi[-1])
        return value, np.append(gradient, slope)


class GammaLaplace(_ParameterLaplace):
    """The Gamma GLMM with its dispersion ``phi``: weights ``w / phi``."""

    observed_information = True

    def _use(self, log_p: float) -> None:
        self.inner.w = self.base_weights / np.exp(log_p)

    def _start_parameter(self, mu, n_fixed) -> float:
        """Pearson's chi-squared over the residual degrees of freedom, as R's ``glm``."""
        inner = self.inner
        pearson = self.base_weights * (inner.y - mu) ** 2 / inner.family.variance(mu)
        return pearson.sum() / max(len(mu) - n_fixed, 1)


class NegativeBinomialLaplace(_ParameterLaplace):
    """The negative binomial GLMM with its shape ``theta_nb`` (variance mu + mu^2/theta_nb)."""

    def _use(self, log_p: float) -> None:
        fam = self.inner.family
        if fam.theta != np.exp(log_p):
            self.inner.family = make_family("negative_binomial", fam.link.name,
                                            float(np.exp(log_p)))

    def _start_parameter(self, mu, n_fixed) -> float:
        """The moment estimate ``n / sum((y / mu - 1)^2)`` from the GLM's means, as
        ``MASS::theta.ml`` starts (here from the negative binomial GLM at theta 1)."""
        y = self.inner.y
        return len(y) / max(np.sum((y / mu - 1) ** 2), 1e-8)
