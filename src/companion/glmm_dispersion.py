"""The Laplace (or quadrature) deviance of a GLMM whose family has a free dispersion: the
Gamma, with shape ``w / phi`` for prior weight ``w`` (glmmTMB's ``family = Gamma``).

Given the dispersion ``phi`` the model is a GLMM with prior weights ``w / phi``: the
conditional modes, the Laplace factor and the gradient in ``(theta, beta)`` are those of
:class:`companion.glmm.LaplaceDeviance` with those weights. The exact log-likelihood adds
the saturated model's, which depends on ``phi``:

    -2 log L(theta, beta, phi) = D(theta, beta; w / phi) - 2 sum_i log f(y_i; y_i, w_i / phi).

The parameter vector is ``(theta, beta, log phi)``.

The Laplace factor uses the observed information at the modes, ``I + Lambda' Z' W Z
Lambda`` with ``W = -d^2 log f / d eta^2``, as glmmTMB (TMB's exact Hessian) does, not the
expected (Fisher) weights that lme4 uses. With the Gamma's canonical inverse link the two
are equal; with its log link they are not (``W = (w / phi) y / mu`` against ``w / phi``)
and the log-likelihoods differ in the third decimal. The gradient is numerical. With
``nagq > 1`` the quadrature around the modes (scaled by the Fisher curvature) is kept as
it is: it converges to the integral either way.
"""

from __future__ import annotations

import numpy as np

from companion.glmm import LaplaceDeviance, PirlsError, glm_fit
from companion.optimize import with_numerical_gradient

ETA_STEP = 1e-6  # central difference of mu'(eta) / V(mu) in eta


class DispersionLaplace:
    """``-2 log L`` over ``(theta, beta, log phi)``; everything else is the inner
    deviance's, with the weights set to ``w / phi`` for the ``phi`` in hand."""

    exact_gradient = False  # numerical, through with_numerical_gradient

    def __init__(self, inner: LaplaceDeviance):
        self.inner = inner
        self.base_weights = inner.w.copy()
        self.evaluations = 0

    def __getattr__(self, name):  # layout, design, family, nagq, n_theta, random_effects ...
        return getattr(self.inner, name)

    def _use(self, log_phi: float) -> None:
        self.inner.w = self.base_weights / np.exp(log_phi)

    def start(self) -> np.ndarray:
        """The inner start, and the dispersion of the GLM without random effects
        (Pearson's chi-squared over the residual degrees of freedom, as R's ``glm``)."""
        inner = self.inner
        beta = glm_fit(inner.X, inner.y, self.base_weights, inner.offset, inner.family)
        mu = inner.family.link.linkinv(inner.offset + inner.X @ beta)
        pearson = self.base_weights * (inner.y - mu) ** 2 / inner.family.variance(mu)
        phi = pearson.sum() / max(len(mu) - len(beta), 1)
        return np.concatenate([inner.layout.start(), beta, [np.log(phi)]])

    def lower_bounds(self) -> np.ndarray:
        return np.append(self.inner.lower_bounds(), -np.inf)

    def split(self, phi):
        return self.inner.split(np.asarray(phi, float)[:-1])

    def dispersion(self, phi) -> float:
        return float(np.exp(phi[-1]))

    def solve(self, phi) -> dict:
        self._use(phi[-1])
        state = self.inner.solve(np.asarray(phi, float)[:-1])
        state["phi"], state["log_phi"] = np.asarray(phi, float)[:-1], float(phi[-1])
        return state

    def deviance(self, state) -> float:
        self._use(state["log_phi"])
        value = self.inner.deviance(state) - 2 * self.inner.saturated_loglik()
        if self.inner.nagq == 1:  # observed instead of expected information
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
        ZL = inner.design.Z @ inner.layout.lambda_matrix(theta)  # noqa: N806
        sign, log_det = np.linalg.slogdet(np.eye(ZL.shape[1]) + ZL.T @ (weights[:, None] * ZL))
        if sign <= 0:
            raise np.linalg.LinAlgError("the observed information at the modes is not "
                                        "positive definite")
        return float(log_det)

    def saturated_loglik(self) -> float:
        return 0.0  # inside deviance(), which is -2 log L itself

    def __call__(self, phi) -> float:
        self.evaluations += 1
        try:
            return self.deviance(self.solve(phi))
        except (np.linalg.LinAlgError, PirlsError, FloatingPointError):
            return np.inf

    def value_and_gradient(self, phi):
        return with_numerical_gradient(self, self.lower_bounds())(phi)
