"""The Laplace (and adaptive Gauss-Hermite) deviance of a GLMM, in lme4's formulation.

For parameters ``phi = (theta, beta)`` the conditional modes ``u`` of the spherical random
effects minimize ``h(u) = sum of deviance residuals + u'u`` (penalized iteratively
reweighted least squares, PIRLS, run to convergence, not stopped early as lme4 does), and

    D(theta, beta) = h(u) + log |L|^2,     L L' = Lambda' Z'WZ Lambda + I,

with ``W`` the IRLS (Fisher) weights at the modes. ``-D/2`` plus the saturated model's
log-likelihood is the Laplace approximation to the log-likelihood. With one scalar random
term, ``nagq > 1`` replaces each group's Laplace factor by adaptive Gauss-Hermite
quadrature around the mode.

With one random term the modes decouple by level and everything is done level by level;
with several, each PIRLS step is solved with the blocked factor of
:mod:`companion.engine.blocked`. The gradient in ``phi`` is exact either way (the derivative of
``log|L|`` through the modes comes from the implicit function theorem).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as la
from numpy.polynomial.hermite_e import hermegauss

from companion.engine.blocked import leverages
from companion.engine.dense import make_structure
from companion.engine.design import Design
from companion.engine.families import Family, start_mu
from companion.engine.optimize import with_numerical_gradient
from companion.engine.profiled import ThetaLayout


class PirlsError(RuntimeError):
    """The conditional modes could not be found."""


def newton_with_halving(evaluate, newton_step, x: np.ndarray, tol: float):
    """Minimize by Newton-type steps, halving a step where the criterion went up.

    ``evaluate(x)`` returns a tuple whose last item is the criterion: one number, or one
    per level (then each level's step is halved on its own, the first axis of ``x``).
    ``newton_step(x, state)`` gives the step to subtract. Returns ``x`` and its state.
    """
    state = evaluate(x)
    for _ in range(200):
        step = newton_step(x, state)
        for _ in range(30):
            trial = evaluate(x - step)
            worse = np.asarray(trial[-1] > state[-1] + 1e-12 * (1 + np.abs(state[-1])))
            if not worse.any():
                break
            worse = worse.reshape(worse.shape + (1,) * (step.ndim - worse.ndim))
            step = np.where(worse, step / 2, step)
        else:
            raise PirlsError("step halving failed to reduce the deviance")
        x, state = x - step, trial
        if np.abs(step).max() < tol * (1 + np.abs(x).max()):
            return x, state
    raise PirlsError("the modes did not converge in 200 iterations")


class LaplaceDeviance:
    """``D(phi)`` for ``phi = (theta, beta)``; ``LaplaceDeviance(design, family)`` picks the
    per-level implementation for one random term and the blocked one otherwise (its
    off-diagonal blocks dense or sparse as :func:`companion.engine.dense.make_structure` decides,
    or as ``dense`` forces)."""

    def __new__(cls, design: Design | None = None, fam: Family | None = None, nagq: int = 1,
                dense: bool | None = None):  # no arguments when unpickled: cls is final
        if cls is LaplaceDeviance:
            if len(design.blocks) > 1:
                cls = _BlockedLaplace
            else:
                cls = _ScalarLaplace if design.blocks[0].n_columns == 1 else _OneTermLaplace
        return super().__new__(cls)

    def __init__(self, design: Design, fam: Family, nagq: int = 1,
                 dense: bool | None = None):
        self.design, self.family, self.nagq = design, fam, nagq
        self.layout = ThetaLayout([b.n_columns for b in design.blocks],
                                  [b.n_levels for b in design.blocks])
        self.n_theta = self.layout.n_theta
        self.y, self.w, self.X = design.y, design.weights, design.X
        self.offset = design.offset
        self._logit = fam.name == "binomial" and fam.link.name == "logit"
        # With a canonical link the scoring steps are Newton steps, which converge
        # quadratically: a step of 1e-7 leaves u good to ~1e-14. Otherwise convergence is
        # linear and the steps must get much smaller.
        self._pirls_tol = 1e-7 if fam.is_canonical else 1e-12
        self.evaluations = 0
        if nagq > 1:
            nodes, weights = hermegauss(nagq)
            self.nodes, self.log_node_weights = nodes, np.log(weights / np.sqrt(2 * np.pi))

    # -- parameters --------------------------------------------------------------------
    def start(self) -> np.ndarray:
        """lme4's start: identity templates, and beta from the GLM without random effects."""
        return np.concatenate([self.layout.start(), glm_fit(self.X, self.y, self.w,
                                                             self.offset, self.family)])

    def lower_bounds(self) -> np.ndarray:
        return np.concatenate([self.layout.lower_bounds(), np.full(self.X.shape[1], -np.inf)])

    def fixed_effects_scale(self, theta, beta) -> np.ndarray:
        """``RX`` (upper triangular) of the PIRLS system at ``(theta, beta)`` with the
        modes at zero:
        ``RX'RX`` is the fixed effects' curvature once the random effects have taken
        their share (the GLM's ``X'WX`` overstates an intercept's beside a random
        intercept), the scale on which an optimizer sees the fixed effects evenly."""
        fam = self.family
        eta = self.offset + self.X @ beta
        weights = self.w * fam.link.mu_eta(eta) ** 2 / fam.variance(fam.link.linkinv(eta))
        structure = make_structure(self.design.blocks, len(self.y))
        lam = structure.relative_covariance(self.layout.templates(theta))
        return _JointSystem(structure, lam, self.X, weights).RX

    def split(self, phi):
        phi = np.asarray(phi, dtype=float)
        return phi[:self.n_theta], phi[self.n_theta:]

    # -- per-observation family quantities ----------------------------------------------
    def _moments(self, eta):
        fam = self.family
        mu = fam.link.linkinv(eta)
        if self._logit:  # dmu/deta = V(mu) = mu (1 - mu)
            var = mu * (1 - mu)
            return mu, var, var
        return mu, fam.link.mu_eta(eta), fam.variance(mu)

    def _derivatives(self, s):
        """Per observation, the first and second derivatives of the deviance residual in
        eta (``g1``, ``g2``) and the derivative of the IRLS weight in eta (``dW``)."""
        fam, y, w = self.family, self.y, self.w
        mu, d_mu, var = s["mu"], s["d_mu"], s["var"]
        W = w * d_mu**2 / var
        if self._logit:  # canonical: the exact and Fisher weights agree
            g2, dW = 2 * W, w * var * (1 - 2 * mu)
        else:
            d2_mu = fam.link.mu_eta2(s["eta"])
            dvar = fam.variance_deriv(mu)
            g2 = 2 * W - 2 * w * (y - mu) * (d2_mu * var - d_mu**2 * dvar) / var**2
            dW = w * (2 * d_mu * d2_mu * var - d_mu**3 * dvar) / var**2
        return -2 * w * (y - mu) * d_mu / var, g2, dW

    def __call__(self, phi) -> float:
        self.evaluations += 1
        try:
            return self.deviance(self.solve(phi))
        except (np.linalg.LinAlgError, PirlsError, FloatingPointError):
            return np.inf

    @property
    def exact_gradient(self) -> bool:
        """Whether :meth:`value_and_gradient` is exact (one random term, Laplace)."""
        return self.nagq == 1 and hasattr(self, "gradient")

    def value_and_gradient(self, phi):
        """The deviance and its gradient; an infinite deviance where the modes cannot be
        found (a wild trial point of the optimizer, which then steps back)."""
        if not self.exact_gradient:
            return with_numerical_gradient(self, self.lower_bounds())(phi)
        self.evaluations += 1
        try:
            state = self.solve(phi)
            return self.deviance(state), self.gradient(state)
        except (np.linalg.LinAlgError, PirlsError, FloatingPointError):
            return np.inf, np.zeros(len(phi))

    def saturated_loglik(self) -> float:
        """log-likelihood of the saturated model, the constant between ``-D/2`` and lme4's
        ``logLik``."""
        return self.family.loglik(self.y, self.y, self.w) if self.family.name != "binomial" \
            else self.family.loglik(self.y, np.clip(self.y, 1e-300, 1 - 1e-16), self.w)


class _OneTermLaplace(LaplaceDeviance):
    """One random term: the modes, the Laplace factors and the gradient level by level."""

    def __init__(self, design: Design, fam: Family, nagq: int = 1,
                 dense: bool | None = None):
        super().__init__(design, fam, nagq)
        block = design.blocks[0]
        if nagq > 1 and block.n_columns != 1:
            raise ValueError(f"adaptive Gauss-Hermite quadrature (nagq = {nagq}) needs a "
                             "single scalar random effect, such as (1 | g); this model has "
                             f"({block.term.expr} | {block.group}); use nagq = 1 (Laplace)")
        self.codes, self.raw = block.codes, block.raw
        self.m, self.p = block.n_levels, block.n_columns
        self.positions = self.layout.template_positions(self.p)
        self._u = np.zeros((self.m, self.p))  # warm start for the modes

    def _random_part(self, b):  # z_i' b_g(i) for every row, b levels x p
        if self.p == 1:
            return self.raw[:, 0] * b[self.codes, 0]
        return np.einsum("ij,ij->i", self.raw, b[self.codes])

    def _per_level(self, values):
        return np.bincount(self.codes, weights=values, minlength=self.m)

    def _vector_sums(self, values):  # sum over each level of values_i z_i -> m x p
        if self.p == 1:
            return self._per_level(values * self.raw[:, 0])[:, None]
        return np.stack([self._per_level(values * self.raw[:, k]) for k in range(self.p)], -1)

    def _matrix_sums(self, values):  # sum over each level of values_i z_i z_i' -> m x p x p
        if self.p == 1:
            return self._per_level(values * self.raw[:, 0] ** 2)[:, None, None]
        p, out = self.p, np.empty((self.m, self.p, self.p))
        for i in range(p):
            for j in range(i, p):
                out[:, i, j] = out[:, j, i] = self._per_level(values * self.raw[:, i]
                                                              * self.raw[:, j])
        return out

    def _solve(self, M, v):
        if self.p == 1:
            return v / M[:, :, 0]
        return np.linalg.solve(M, v[..., None])[..., 0]

    def _solve_matrix(self, M, B):
        if self.p == 1:
            return B / M
        return np.linalg.solve(M, np.broadcast_to(B, M.shape[:1] + B.shape[-2:]))

    def solve(self, phi) -> dict:
        """The conditional modes by per-level Fisher scoring with step halving."""
        theta, beta = self.split(phi)
        T = self.layout.templates(theta)[0]
        fixed = self.offset + self.X @ beta
        y, w, fam = self.y, self.w, self.family
        u = self._u.copy()
        eye = np.eye(self.p)

        def evaluate(u):
            eta = fixed + self._random_part(u @ T.T)
            mu, d_mu, var = self._moments(eta)
            dev = fam.dev_resid(y, mu, w)
            h = self._per_level(dev) + (u * u).sum(axis=1)
            return eta, mu, d_mu, var, dev, h

        def newton_step(u, state):
            _, mu, d_mu, var, _, _ = state
            score = self._vector_sums(-w * (y - mu) * d_mu / var) @ T + u  # half gradient
            M = T.T @ self._matrix_sums(w * d_mu**2 / var) @ T + eye
            return self._solve(M, score)

        u, (eta, mu, d_mu, var, dev, h) = newton_with_halving(evaluate, newton_step, u,
                                                                self._pirls_tol)
        if not np.all(np.isfinite(h)):
            raise PirlsError("non-finite deviance at the conditional modes")
        self._u = u
        W = w * d_mu**2 / var
        M = T.T @ self._matrix_sums(W) @ T + eye
        return {"theta": theta, "beta": beta, "T": T, "u": u, "eta": eta, "mu": mu,
                "d_mu": d_mu, "var": var, "dev": dev, "W": W, "M": M, "h": h}

    def _logdets(self, M):
        if self.p == 1:
            return np.log(M[:, 0, 0])
        return 2 * np.log(np.diagonal(np.linalg.cholesky(M), axis1=1, axis2=2)).sum(axis=1)

    def deviance(self, s) -> float:
        laplace = s["h"] + self._logdets(s["M"])
        if self.nagq == 1:
            return float(np.sum(laplace))
        return float(np.sum(laplace) - 2 * np.sum(self._quadrature_correction(s)))

    def _quadrature_correction(self, s):
        """log of the quadrature sum around the mode, per group (scalar effects)."""
        T, u0 = s["T"][0, 0], s["u"][:, 0]
        scale = 1 / np.sqrt(s["M"][:, 0, 0])
        fixed = s["eta"] - self.raw[:, 0] * T * u0[self.codes]
        terms = []
        for z, log_weight in zip(self.nodes, self.log_node_weights):
            u = u0 + scale * z
            mu = self.family.link.linkinv(fixed + self.raw[:, 0] * T * u[self.codes])
            h = self._per_level(self.family.dev_resid(self.y, mu, self.w)) + u * u
            terms.append(log_weight - (h - s["h"] - z * z) / 2)
        terms = np.array(terms)
        top = terms.max(axis=0)
        return top + np.log(np.exp(terms - top).sum(axis=0))

    def gradient(self, s) -> np.ndarray:
        """Exact dD/dphi: the partial derivatives at the modes, plus log|L|'s dependence
        on the modes through the implicit function theorem."""
        fam, y, w = self.family, self.y, self.w
        T, u, M, W = s["T"], s["u"], s["M"], s["W"]
        mu, d_mu, var = s["mu"], s["d_mu"], s["var"]
        d2_mu = fam.link.mu_eta2(s["eta"])
        dvar = fam.variance_deriv(mu)
        g1 = -2 * w * (y - mu) * d_mu / var  # d dev / d eta
        g2 = 2 * W - 2 * w * (y - mu) * (d2_mu * var - d_mu**2 * dvar) / var**2
        dW = w * (2 * d_mu * d2_mu * var - d_mu**3 * dvar) / var**2
        ZT = self.raw @ T  # row i: z_i' T
        TMT = T @ self._solve_matrix(M, T.T)  # T M^-1 T' per level
        q = np.einsum("ij,ijk,ik->i", self.raw, TMT[self.codes], self.raw)
        c = dW * q
        rho = self._vector_sums(c) @ T  # d log|L| / d u_g
        H = T.T @ self._matrix_sums(g2) @ T + 2 * np.eye(self.p)
        s_g = self._solve(H, rho)
        a = np.einsum("ij,ij->i", ZT, s_g[self.codes])
        e = g1 + c - g2 * a
        grad_beta = self.X.T @ e
        A = self._matrix_sums(W)
        N = self._solve_matrix(M, T.T @ A)
        G = self._vector_sums(g1)
        rows, cols = self.positions
        uc = u[self.codes]
        grad_theta = np.array([
            np.sum(e * self.raw[:, r] * uc[:, c_]) + 2 * N[:, c_, r].sum()
            - np.sum(s_g[:, c_] * G[:, r]) for r, c_ in zip(rows, cols)])
        return np.concatenate([grad_theta, grad_beta])

    def conditional_covariances(self, s) -> list[np.ndarray]:
        """Per level ``T M^-1 T'`` (lme4's condVar for a GLMM, scale 1)."""
        T = s["T"]
        return [T @ self._solve_matrix(s["M"], T.T)]

    def random_effects(self, s) -> np.ndarray:
        return (s["u"] @ s["T"].T).ravel()


class _ScalarLaplace(_OneTermLaplace):
    """One scalar random term, such as ``(1 | g)``: the same computation as
    :class:`_OneTermLaplace` written with vectors instead of 1 x 1 blocks, because the
    fitters spend their time here."""

    def solve(self, phi) -> dict:
        theta, beta = self.split(phi)
        t = float(theta[0])
        fixed = self.offset + self.X @ beta
        y, w, fam, z, codes = self.y, self.w, self.family, self.raw[:, 0], self.codes
        zt, z2t2 = z * t, (z * t) ** 2
        per_level = self._per_level
        u = self._u[:, 0].copy()

        def evaluate(u):
            eta = fixed + zt * u[codes]
            mu, d_mu, var = self._moments(eta)
            dev = fam.dev_resid(y, mu, w)
            return eta, mu, d_mu, var, dev, per_level(dev) + u * u

        def newton_step(u, state):
            _, mu, d_mu, var, _, _ = state
            ratio = w * d_mu / var
            score = per_level(zt * ratio * (mu - y)) + u  # half the gradient of h
            return score / (1 + per_level(z2t2 * ratio * d_mu))

        u, (eta, mu, d_mu, var, dev, h) = newton_with_halving(evaluate, newton_step, u,
                                                                self._pirls_tol)
        if not np.isfinite(h).all():
            raise PirlsError("non-finite deviance at the conditional modes")
        self._u = u[:, None]
        W = w * d_mu**2 / var
        M = 1 + per_level(z2t2 * W)
        return {"theta": theta, "beta": beta, "T": np.array([[t]]), "u": u[:, None],
                "eta": eta, "mu": mu, "d_mu": d_mu, "var": var, "dev": dev, "W": W,
                "M": M[:, None, None], "h": h}

    def gradient(self, s) -> np.ndarray:
        fam, y, w, z, codes = self.family, self.y, self.w, self.raw[:, 0], self.codes
        t, u, M, W = s["T"][0, 0], s["u"][:, 0], s["M"][:, 0, 0], s["W"]
        mu, d_mu, var = s["mu"], s["d_mu"], s["var"]
        if self._logit:  # canonical: the exact and Fisher weights agree
            g2 = 2 * W
            dW = w * var * (1 - 2 * mu)
        else:
            d2_mu = fam.link.mu_eta2(s["eta"])
            dvar = fam.variance_deriv(mu)
            g2 = 2 * W - 2 * w * (y - mu) * (d2_mu * var - d_mu**2 * dvar) / var**2
            dW = w * (2 * d_mu * d2_mu * var - d_mu**3 * dvar) / var**2
        g1 = -2 * w * (y - mu) * d_mu / var
        per_level = self._per_level
        zt = z * t
        c = dW * zt**2 / M[codes]
        s_g = t * per_level(z * c) / (t * t * per_level(g2 * z * z) + 2)
        e = g1 + c - g2 * zt * s_g[codes]
        grad_t = (e * z * u[codes]).sum() + 2 * (t * per_level(W * z * z) / M).sum() \
            - (s_g * per_level(z * g1)).sum()
        return np.concatenate([[grad_t], self.X.T @ e])


class _BlockedLaplace(LaplaceDeviance):
    """Several random terms: PIRLS on the whole vector of modes, each Newton step solved
    with the blocked factor of :mod:`companion.engine.blocked` (dense or sparse off-diagonal
    blocks, :mod:`companion.engine.dense`)."""

    def __init__(self, design: Design, fam: Family, nagq: int = 1,
                 dense: bool | None = None):
        if nagq > 1:
            raise ValueError(f"adaptive Gauss-Hermite quadrature (nagq = {nagq}) needs a "
                             "single scalar random effect; this model has "
                             f"{len(design.blocks)} random terms; use nagq = 1 (Laplace)")
        super().__init__(design, fam, nagq)
        self.structure = make_structure(design.blocks, len(self.y), dense)
        self._u = np.zeros(self.structure.q)
        self._beta = glm_fit(self.X, self.y, self.w, self.offset, fam)  # warm start

    def solve(self, phi) -> dict:
        theta, beta = self.split(phi)
        structure = self.structure
        lam = structure.relative_covariance(self.layout.templates(theta))
        fixed = self.offset + self.X @ beta
        y, w, fam = self.y, self.w, self.family

        def evaluate(u):
            eta = fixed + structure.multiply(lam.multiply(u))
            mu, d_mu, var = self._moments(eta)
            dev = fam.dev_resid(y, mu, w)
            return eta, mu, d_mu, var, dev, float(dev.sum() + u @ u)

        def factor_at(d_mu, var):
            return structure.factor(structure.cross_products(w * d_mu**2 / var), lam)

        def newton_step(u, state):
            _, mu, d_mu, var, _, _ = state
            factor = factor_at(d_mu, var)
            half_gradient = lam.transpose_multiply(
                structure.transpose_multiply(-w * (y - mu) * d_mu / var)) + u
            return factor.solve_upper(factor.solve_lower(half_gradient))

        u, (eta, mu, d_mu, var, dev, h) = newton_with_halving(evaluate, newton_step,
                                                                self._u.copy(), self._pirls_tol)
        if not np.isfinite(h):
            raise PirlsError("non-finite deviance at the conditional modes")
        self._u = u
        return {"theta": theta, "beta": beta, "lam": lam, "u": u, "eta": eta, "mu": mu,
                "d_mu": d_mu, "var": var, "dev": dev, "factor": factor_at(d_mu, var),
                "h": h}

    def deviance(self, s) -> float:
        return float(s["h"] + s["factor"].log_det)

    def gradient(self, s) -> np.ndarray:
        """The exact gradient, the one-term formula for the whole vector of modes: with
        ``C = (L L')^-1``, the leverages ``q_i = z_i' Lambda C Lambda' z_i``, ``c = dW q``,
        ``s = H^-1 Lambda'Z'c`` (``H`` the Hessian of ``h`` in ``u``) and
        ``e = g1 + c - g2 Z Lambda s``: ``d/dbeta = X'e`` and, along ``theta_k`` with
        ``E_k = dLambda/dtheta_k``, ``e'Z E_k u + 2 tr(C Lambda'Z'WZ E_k) - (Z'g1)'E_k s``,
        where ``tr(C Lambda'Z'WZ E_k)`` is read off ``T^-T (m I - sum_l C_ll)``. At a
        singular vector template (no ``T^-1``) the gradient is by central differences."""
        structure, factor, lam, u = self.structure, s["factor"], s["lam"], s["u"]
        templates = self.layout.templates(s["theta"])
        if _singular_vector_template(templates):
            return self._central_differences(s)
        g1, g2, dW = self._derivatives(s)
        parts = factor.inverse_parts()
        c = dW * leverages(structure, lam, parts)
        rho = lam.transpose_multiply(structure.transpose_multiply(c))
        if self.family.is_canonical:  # g2 = 2 W, so H = 2 L L'
            s_g = factor.solve_upper(factor.solve_lower(rho)) / 2
        else:
            try:
                curvature = structure.factor(structure.cross_products(g2 / 2), lam)
            except np.linalg.LinAlgError:  # h is not convex in u here
                return self._central_differences(s)
            s_g = curvature.solve_upper(curvature.solve_lower(rho)) / 2
        e = g1 + c - g2 * structure.multiply(lam.multiply(s_g))
        return np.concatenate([self._theta_gradient(templates, factor, e, g1, u, s_g),
                               self.X.T @ e])

    def _central_differences(self, s) -> np.ndarray:
        phi = np.concatenate([s["theta"], s["beta"]])
        return with_numerical_gradient(self, self.lower_bounds())(phi)[1]

    def fixed_effects_stage(self, theta, gradient: bool = False):
        """lme4's ``nAGQ = 0`` deviance at ``theta``: the fixed effects found by PIRLS
        with the modes (one penalized least-squares problem in ``x = (u, beta)``). Returns
        the deviance, those fixed effects and ``RX`` (upper triangular, ``RX'RX`` the
        fixed effects' part of the PIRLS system, which scales them for the next stage),
        and with ``gradient=True`` also the deviance's exact gradient in ``theta``: the
        Laplace formula of :meth:`gradient` with ``s`` solved from the joint Hessian of
        ``h`` in ``(u, beta)`` (``beta`` moves with ``theta`` here) and
        ``e = g1 + c - g2 (Z Lambda s_u + X s_beta)``."""
        theta = np.asarray(theta, dtype=float)
        structure, X = self.structure, self.X
        templates = self.layout.templates(theta)
        lam = structure.relative_covariance(templates)
        y, w, fam = self.y, self.w, self.family
        q = structure.q

        def evaluate(x):
            eta = self.offset + X @ x[q:] + structure.multiply(lam.multiply(x[:q]))
            mu, d_mu, var = self._moments(eta)
            dev = fam.dev_resid(y, mu, w)
            return eta, mu, d_mu, var, dev, float(dev.sum() + x[:q] @ x[:q])

        def newton_step(x, state):
            _, mu, d_mu, var, _, _ = state
            g = -w * (y - mu) * d_mu / var
            system = _JointSystem(structure, lam, X, w * d_mu**2 / var)
            return system.solve(np.concatenate([
                lam.transpose_multiply(structure.transpose_multiply(g)) + x[:q], X.T @ g]))

        x, (eta, mu, d_mu, var, dev, h) = newton_with_halving(
            evaluate, newton_step, np.concatenate([self._u, self._beta]), self._pirls_tol)
        if not np.isfinite(h):
            raise PirlsError("non-finite deviance at the conditional modes")
        self._u, self._beta = x[:q], x[q:]
        system = _JointSystem(structure, lam, X, w * d_mu**2 / var)
        value = h + system.factor.log_det
        if not gradient:
            return value, x[q:], system.RX
        if _singular_vector_template(templates):
            grad = with_numerical_gradient(lambda t: self.fixed_effects_stage(t)[0],
                                           self.layout.lower_bounds())(theta)[1]
            return value, x[q:], system.RX, grad
        g1, g2, dW = self._derivatives({"eta": eta, "mu": mu, "d_mu": d_mu, "var": var})
        c = dW * leverages(structure, lam, system.factor.inverse_parts())
        rho = np.concatenate([lam.transpose_multiply(structure.transpose_multiply(c)),
                              X.T @ c])
        curvature = system if fam.is_canonical else \
            _JointSystem(structure, lam, X, g2 / 2)  # g2 = 2 W for a canonical link
        s_x = curvature.solve(rho) / 2
        e = g1 + c - g2 * (structure.multiply(lam.multiply(s_x[:q])) + X @ s_x[q:])
        grad = self._theta_gradient(templates, system.factor, e, g1, x[:q], s_x[:q])
        return value, x[q:], system.RX, grad

    def _theta_gradient(self, templates, factor, e, g1, u, s_u) -> np.ndarray:
        """Along each ``theta_k``: ``e'Z E_k u + 2 tr(C Lambda'Z'WZ E_k) - (Z'g1)'E_k s``,
        the trace read off ``T^-T (m I - sum_l C_ll)`` (see :meth:`gradient`)."""
        Zte, Ztg1 = self.structure.transpose_multiply(np.column_stack([e, g1])).T
        grads, at = [], 0
        for T, inverse in zip(templates, factor.inverse_level_blocks()):
            m, p = inverse.shape[:2]
            M = m * np.eye(p) - inverse.sum(axis=0)
            if p == 1:
                trace = M / T if T[0, 0] != 0 else np.zeros((1, 1))
            else:
                trace = np.linalg.solve(T.T, M)
            rows = slice(at, at + m * p)

            def outer(left, right):
                return left[rows].reshape(m, p).T @ right[rows].reshape(m, p)

            G = outer(Zte, u) + 2 * trace - outer(Ztg1, s_u)
            grads.append(G[self.layout.template_positions(p)])
            at += m * p
        return np.concatenate(grads)

    def conditional_covariances(self, s) -> list[np.ndarray]:
        return s["factor"].conditional_covariances(self.design.blocks)

    def random_effects(self, s) -> np.ndarray:
        return s["lam"].multiply(s["u"])


class _JointSystem:
    """The PIRLS system in ``(u, beta)`` for one weight vector, ``[[L L', Lambda'Z'WX],
    [X'WZ Lambda, X'WX]]``, factored as ``L``, ``RZX = L^-1 Lambda'Z'WX`` and ``RX``."""

    def __init__(self, structure, lam, X, weights):
        cross = structure.cross_products(weights, X, np.zeros(len(weights)))
        self.factor = structure.factor(cross, lam)
        self.RZX = self.factor.solve_lower(lam.transpose_multiply(cross.ZtWX))
        self.RX = np.linalg.cholesky(X.T @ (X * weights[:, None]) - self.RZX.T @ self.RZX).T
        self.q = structure.q

    def solve(self, r: np.ndarray) -> np.ndarray:
        """The system's solution for the right-hand side ``r = (r_u, r_beta)``."""
        factor, RZX, RX, q = self.factor, self.RZX, self.RX, self.q
        c_u = factor.solve_lower(r[:q])
        c_b = la.solve_triangular(RX, r[q:] - RZX.T @ c_u, trans="T")
        d_beta = la.solve_triangular(RX, c_b)
        return np.concatenate([factor.solve_upper(c_u - RZX @ d_beta), d_beta])


def _singular_vector_template(templates) -> bool:
    """Whether a vector term's template has a zero on its diagonal (no ``T^-1``)."""
    return any(len(t) > 1 and np.min(np.abs(np.diag(t))) < 1e-10 for t in templates)


def glm_fit(X, y, w, offset, fam: Family, tol: float = 1e-10) -> np.ndarray:
    """Fixed effects of the GLM without random effects, by IRLS from R's ``mustart``."""
    mu = start_mu(fam, y, w)
    eta = fam.link.linkfun(mu)
    beta = np.zeros(X.shape[1])
    for _ in range(100):
        d_mu = fam.link.mu_eta(eta)
        var = fam.variance(fam.link.linkinv(eta))
        weights = w * d_mu**2 / var
        working = eta - offset + (y - fam.link.linkinv(eta)) / d_mu
        WX = X * weights[:, None]
        new = np.linalg.solve(X.T @ WX, WX.T @ working)
        eta = offset + X @ new
        if np.max(np.abs(new - beta)) < tol * (1 + np.max(np.abs(new))):
            return new
        beta = new
    return beta
