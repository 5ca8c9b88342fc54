"""The linear mixed model that approximates a nonlinear mixed model at one point, in
nlme's parametrization.

``w = X beta + Z b + e`` with one grouping factor: ``b_i ~ N(0, sigma^2 A)`` for each
group ``i``, ``e ~ N(0, sigma^2 I)``. nlme's parameters ``x`` describe the relative
precision ``P = A^-1``: pdLogChol writes ``P = R'R`` (``R`` upper triangular) and ``x`` is
``log diag R`` followed by ``R``'s upper off-diagonal elements by columns; pdDiag writes
``P = diag(exp(2 x))``.

The criterion is lme4's profiled deviance (``companion.engine.profiled``), written with the
precision as nlme writes it: per group the Cholesky factor of ``C_i = Z_i'Z_i + P``
(lme4's ``log|L_i L_i'|`` is ``log|C_i| - log|P|``), then that of the fixed effects' Schur
complement, bordered by the working response so that its last diagonal element is
``sqrt(pwrss)``. Everything is batched over the groups from their cross-products, formed
once. The deviance's gradient in ``A`` is ``Z'PZ - dof V / pwrss`` (the diagonal blocks
of ``Z'V^-1 Z`` or its REML version, summed; ``V = sum_i v_i v_i'``,
``v_i = Z_i'(w - X beta - Z_i b_i)``), carried to ``x`` by the chain rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

_LOG_2PI = np.log(2 * np.pi)


@cache
def _upper(q: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the strict upper triangle, by columns (R's order)."""
    rows, cols = np.triu_indices(q, 1)
    order = np.lexsort((rows, cols))
    return rows[order], cols[order]


@dataclass(frozen=True)
class CovarianceForm:
    """pdLogChol (``diag=False``) or pdDiag for ``q`` random effects."""

    q: int
    diag: bool

    @property
    def n_parameters(self) -> int:
        return self.q if self.diag else self.q * (self.q + 1) // 2

    def factor(self, x: np.ndarray) -> np.ndarray:
        """``R`` with ``P = R'R``."""
        R = np.diag(np.exp(x[:self.q]))  # noqa: N806
        if not self.diag:
            R[_upper(self.q)] = x[self.q:]
        return R

    def covariance(self, x: np.ndarray) -> np.ndarray:
        """``A = P^-1``."""
        R = self.factor(x)  # noqa: N806
        return np.linalg.inv(R.T @ R)

    def parameters(self, A: np.ndarray) -> np.ndarray:  # noqa: N803
        """``x`` for the relative covariance ``A`` (its diagonal only, for pdDiag)."""
        if self.diag:
            return -0.5 * np.log(np.diag(A))
        R = np.linalg.cholesky(np.linalg.inv(A)).T  # noqa: N806
        return np.concatenate([np.log(np.diag(R)), R[_upper(self.q)]])

    def chain(self, x: np.ndarray, dA: np.ndarray) -> np.ndarray:  # noqa: N803
        """A criterion's gradient in ``x`` from its gradient ``dA`` in ``A``."""
        R = self.factor(x)  # noqa: N806
        A = np.linalg.inv(R.T @ R)  # noqa: N806
        if self.diag:
            return -2 * np.diag(A) * np.diag(dA)
        dR = -2 * R @ (A @ dA @ A)  # noqa: N806 - through P = R'R and A = P^-1
        return np.concatenate([np.diag(dR) * np.diag(R), dR[_upper(self.q)]])


@dataclass
class Solution:
    """The penalized least-squares solution at one ``x``."""

    x: np.ndarray
    C: np.ndarray  # groups x q x q: Z_i'Z_i + P
    solved: np.ndarray  # per group, L_i^-1 [Z'X, Z'w, Z'Z] with L_i L_i' = C_i
    LS: np.ndarray  # lower Cholesky factor of the bordered Schur complement
    beta: np.ndarray
    b: np.ndarray  # groups x q
    pwrss: float
    ldL2: float  # lme4's log|L L'|: sum of log|C_i| less m log|P|


class LinearizedLmm:
    """``w = X beta + Z b + e`` for rows sorted by group (``starts``: each group's first
    row)."""

    def __init__(self, X, Z, w, starts, form: CovarianceForm):  # noqa: N803
        self.form = form
        self.n, self.p = X.shape
        self.m = len(starts)
        C = np.concatenate([X, w[:, None], Z], axis=1)  # noqa: N806
        self.ZtC = np.add.reduceat(Z[:, :, None] * C[:, None, :], starts, axis=0)
        self.ZtZ = self.ZtC[:, :, self.p + 1:]  # groups x q x q
        self.XtXw = C[:, :self.p + 1].T @ C[:, :self.p + 1]

    def solve(self, x: np.ndarray) -> Solution:
        R = self.form.factor(x)  # noqa: N806
        C = self.ZtZ + R.T @ R  # noqa: N806
        L = np.linalg.cholesky(C)  # noqa: N806
        solved = np.linalg.solve(L, self.ZtC)
        p = self.p
        RZXw = solved[..., :p + 1].reshape(-1, p + 1)  # noqa: N806
        LS = np.linalg.cholesky(self.XtXw - RZXw.T @ RZXw)  # noqa: N806
        beta = np.linalg.solve(LS[:p, :p].T, LS[p, :p])
        rhs = solved[..., p] - solved[..., :p] @ beta
        b = np.linalg.solve(np.swapaxes(L, 1, 2), rhs[..., None])[..., 0]
        ldL2 = 2 * (np.log(np.diagonal(L, axis1=1, axis2=2)).sum()
                    - self.m * np.log(np.diag(R)).sum())
        return Solution(x, C, solved, LS, beta, b, LS[p, p] ** 2, ldL2)

    def _dof(self, reml: bool) -> int:
        return self.n - self.p if reml else self.n

    def deviance(self, s: Solution, reml: bool = False) -> float:
        """-2 log-likelihood (ML) or the REML criterion, as lme4 and nlme report them."""
        dof = self._dof(reml)
        value = s.ldL2 + dof * (1 + _LOG_2PI + np.log(s.pwrss / dof))
        return value + 2 * np.log(np.diag(s.LS)[:self.p]).sum() if reml else value

    def gradient(self, s: Solution, reml: bool = False) -> np.ndarray:
        """The deviance's gradient in ``x``."""
        p, q = self.p, self.form.q
        K = s.solved[..., p + 1:].reshape(-1, q)  # noqa: N806 - L_i^-1 Z_i'Z_i, stacked
        ZtPZ = self.ZtZ.sum(0) - K.T @ K  # noqa: N806
        if reml:
            H = self.ZtC[..., :p] - np.swapaxes(s.solved[..., p + 1:], 1, 2) @ s.solved[..., :p]  # noqa: N806
            S = np.linalg.solve(s.LS[:p, :p], H.reshape(-1, p).T).reshape(p * self.m, q)  # noqa: N806
            ZtPZ -= S.T @ S
        v = (self.ZtC[..., p] - self.ZtC[..., :p] @ s.beta
             - (self.ZtZ @ s.b[..., None])[..., 0])
        dA = ZtPZ - self._dof(reml) * (v.T @ v) / s.pwrss  # noqa: N806
        return self.form.chain(s.x, dA)

    def nlme_objective(self, s: Solution) -> float:
        """nlme's C-level criterion, ``-log-likelihood`` (ML) less its constants:
        ``(log|L L'| + n log pwrss) / 2``."""
        return 0.5 * (s.ldL2 + self.n * np.log(s.pwrss))

    @staticmethod
    def conditional_covariances(s: Solution) -> np.ndarray:
        """``C_i^-1`` per group: the random effects' covariances given the data, relative
        to ``sigma^2``."""
        return np.linalg.inv(s.C)

    def em(self, x: np.ndarray, steps: int, reml: bool = False) -> np.ndarray:
        """EM steps for ``A``: the mean over groups of ``E(b_i b_i') / sigma^2``, from the
        random effects at the profiled ``beta`` and their covariances given the data,
        ``C_i^-1`` (plus the part from ``beta``'s uncertainty, for REML)."""
        p, diag = self.p, self.form.diag
        ZtXw = self.ZtC[..., :p + 1]  # noqa: N806
        A = self.form.covariance(x)  # noqa: N806
        for _ in range(steps):
            C_inv = np.linalg.inv(self.ZtZ + np.linalg.inv(A))  # noqa: N806
            G = C_inv @ ZtXw  # noqa: N806
            S = self.XtXw - ZtXw.reshape(-1, p + 1).T @ G.reshape(-1, p + 1)  # noqa: N806
            beta = np.linalg.solve(S[:p, :p], S[:p, p])
            b = G[..., p] - G[..., :p] @ beta
            if reml:
                C_inv = C_inv + G[..., :p] @ np.linalg.solve(  # noqa: N806
                    S[:p, :p], np.swapaxes(G[..., :p], 1, 2))
            pwrss = S[p, p] - S[:p, p] @ beta
            A = C_inv.mean(0) + b.T @ b * (self._dof(reml) / (self.m * pwrss))  # noqa: N806
            if diag:
                A = np.diag(np.diag(A))  # noqa: N806
        return self.form.parameters(A)

    def fixed_covariance(self, s: Solution) -> np.ndarray:
        """``(X'V^-1 X)^-1`` relative to ``sigma^2``."""
        inverse = np.linalg.inv(s.LS[:self.p, :self.p])
        return inverse.T @ inverse
