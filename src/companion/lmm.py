"""The profiled deviance of a linear mixed model, in lme4's formulation.

The random effects are ``b = Lambda(theta) u`` with ``u ~ N(0, sigma^2 I)``; for given
``theta`` the penalized least-squares problem in ``(u, beta)`` is solved through the
blocked Cholesky factor

    [ L     0  ] [ L'  RZX ]   [ Lambda' Z'WZ Lambda + I   Lambda' Z'WX ]
    [ RZX'  RX'] [ 0   RX  ] = [ X'WZ Lambda              X'WX          ]

and the deviance is profiled over ``beta`` and ``sigma``. The cross-products are formed
once; each evaluation costs one ``q x q`` and one ``p x p`` factorization. Nothing is ever
inverted: every step is a triangular solve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as la

from companion.design import Design

_LOG_2PI = np.log(2 * np.pi)


@dataclass
class ThetaLayout:
    """Where each block's lower-triangular template sits in theta (column-major, as lme4)."""

    sizes: list[int]  # columns per random term
    levels: list[int]  # levels per random term

    @property
    def n_theta(self) -> int:
        return sum(p * (p + 1) // 2 for p in self.sizes)

    def start(self) -> np.ndarray:
        """lme4's starting value: identity templates."""
        return np.concatenate([_vech(np.eye(p)) for p in self.sizes]) if self.sizes else \
            np.zeros(0)

    def lower_bounds(self) -> np.ndarray:
        """Diagonal elements are non-negative, off-diagonal ones free."""
        return np.concatenate([np.where(_vech(np.eye(p)) == 1, 0.0, -np.inf)
                               for p in self.sizes]) if self.sizes else np.zeros(0)

    def templates(self, theta: np.ndarray) -> list[np.ndarray]:
        """The lower-triangular ``T_i`` of each term."""
        out, at = [], 0
        for p in self.sizes:
            count = p * (p + 1) // 2
            out.append(_unvech(theta[at:at + count], p))
            at += count
        return out

    def lambda_matrix(self, theta: np.ndarray) -> np.ndarray:
        """``Lambda``: block diagonal, the term's template repeated for each level."""
        return la.block_diag(*[np.kron(np.eye(levels), template) for levels, template
                               in zip(self.levels, self.templates(theta))])


def _vech(matrix: np.ndarray) -> np.ndarray:
    rows, cols = np.tril_indices(matrix.shape[0])
    order = np.lexsort((rows, cols))  # column-major lower triangle
    return matrix[rows[order], cols[order]]


def _unvech(values: np.ndarray, p: int) -> np.ndarray:
    rows, cols = np.tril_indices(p)
    order = np.lexsort((rows, cols))
    out = np.zeros((p, p))
    out[rows[order], cols[order]] = values
    return out


@dataclass
class Solution:
    """Everything the penalized least-squares solve gives at one theta."""

    theta: np.ndarray
    beta: np.ndarray
    u: np.ndarray
    L: np.ndarray  # lower Cholesky factor of Lambda' Z'WZ Lambda + I
    RX: np.ndarray  # upper Cholesky factor of the Schur complement
    Lam: np.ndarray
    pwrss: float
    ldL2: float
    ldRX2: float


class ProfiledDeviance:
    """The deviance (ML) or REML criterion of an LMM as a function of theta."""

    def __init__(self, design: Design, reml: bool = True):
        self.design = design
        self.reml = reml
        self.layout = ThetaLayout([b.n_columns for b in design.blocks],
                                  [b.n_levels for b in design.blocks])
        w = design.weights
        Z, X = design.Z, design.X
        y = design.y - design.offset
        WZ, WX = Z * w[:, None], X * w[:, None]
        self.ZtWZ, self.ZtWX, self.XtWX = Z.T @ WZ, Z.T @ WX, X.T @ WX
        self.ZtWy, self.XtWy = WZ.T @ y, WX.T @ y
        self.ytWy = float(y @ (w * y))
        self.ldW = float(np.log(w).sum())
        self.n, self.p = X.shape
        self.evaluations = 0

    def solve(self, theta: np.ndarray) -> Solution:
        """Solve the penalized least-squares problem at ``theta``."""
        Lam = self.layout.lambda_matrix(np.asarray(theta, dtype=float))
        LtZtWZL = Lam.T @ self.ZtWZ @ Lam
        L = la.cholesky(LtZtWZL + np.eye(len(LtZtWZL)), lower=True)
        RZX = la.solve_triangular(L, Lam.T @ self.ZtWX, lower=True)
        RX = la.cholesky(self.XtWX - RZX.T @ RZX, lower=False)
        cu = la.solve_triangular(L, Lam.T @ self.ZtWy, lower=True)
        cb = la.solve_triangular(RX, self.XtWy - RZX.T @ cu, trans="T")
        beta = la.solve_triangular(RX, cb)
        u = la.solve_triangular(L, cu - RZX @ beta, trans="T", lower=True)
        pwrss = max(self.ytWy - cu @ cu - cb @ cb, 0.0)
        return Solution(np.asarray(theta, dtype=float), beta, u, L, RX, Lam, pwrss,
                        2 * np.log(np.diag(L)).sum(), 2 * np.log(np.diag(RX)).sum())

    def objective(self, solution: Solution, reml: bool | None = None) -> float:
        """-2 log-likelihood (ML) or the REML criterion, as lme4 reports them; ``reml``
        overrides the criterion the deviance was made for."""
        reml = self.reml if reml is None else reml
        dof = self.n - self.p if reml else self.n
        value = solution.ldL2 - self.ldW + dof * (1 + _LOG_2PI + np.log(solution.pwrss / dof))
        return value + solution.ldRX2 if reml else value

    def __call__(self, theta) -> float:
        self.evaluations += 1
        try:
            return self.objective(self.solve(theta))
        except la.LinAlgError:
            return np.inf

    def exact_pwrss(self, solution: Solution) -> float:
        """The penalized weighted residual sum of squares from the residuals themselves."""
        d = self.design
        eta = d.offset + d.X @ solution.beta + d.Z @ (solution.Lam @ solution.u)
        return float(d.weights @ (d.y - eta) ** 2 + solution.u @ solution.u)
