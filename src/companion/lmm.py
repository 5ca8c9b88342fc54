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
    u: np.ndarray  # spherical random effects
    b: np.ndarray  # random effects, Lambda u, in Z's column order
    RX: np.ndarray  # upper Cholesky factor of the Schur complement
    pwrss: float
    ldL2: float
    ldRX2: float
    factor: object  # the random-effects factor, for conditional covariances


class ProfiledDeviance:
    """The deviance (ML) or REML criterion of an LMM as a function of theta.

    ``ProfiledDeviance(design)`` picks the implementation: with one random-effect term
    the matrix ``Lambda' Z'WZ Lambda + I`` is block diagonal, one small block per level,
    and everything is done level by level in batches (no ``n x q`` or ``q x q`` matrix
    is ever formed, so a million rows and 20,000 groups fit in memory); with several terms
    the blocked factor is formed densely.
    """

    def __new__(cls, design: Design, reml: bool = True):
        if cls is ProfiledDeviance:
            cls = _OneTermDeviance if len(design.blocks) == 1 else _DenseDeviance
        return super().__new__(cls)

    def __init__(self, design: Design, reml: bool = True):
        self.design = design
        self.reml = reml
        self.layout = ThetaLayout([b.n_columns for b in design.blocks],
                                  [b.n_levels for b in design.blocks])
        w = design.weights
        X, y = design.X, design.y - design.offset
        WX = X * w[:, None]
        self.XtWX, self.XtWy = X.T @ WX, WX.T @ y
        self.ytWy = float(y @ (w * y))
        self.ldW = float(np.log(w).sum())
        self.n, self.p = X.shape
        self.evaluations = 0

    def _finish(self, theta, factor, RZX_cross, RZX_cu, cu_cu, cu_solve, ldL2) -> Solution:
        """The fixed-effect part of the solve, shared by both implementations."""
        RX = la.cholesky(self.XtWX - RZX_cross, lower=False)
        cb = la.solve_triangular(RX, self.XtWy - RZX_cu, trans="T")
        beta = la.solve_triangular(RX, cb)
        u, b = cu_solve(beta)
        pwrss = max(self.ytWy - cu_cu - cb @ cb, 0.0)
        return Solution(np.asarray(theta, dtype=float), beta, u, b, RX, pwrss, ldL2,
                        2 * np.log(np.diag(RX)).sum(), factor)

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
        except (la.LinAlgError, np.linalg.LinAlgError):
            return np.inf

    def linear_predictor(self, solution: Solution) -> np.ndarray:
        d = self.design
        return d.offset + d.X @ solution.beta + self.random_part(solution.b)

    def exact_pwrss(self, solution: Solution) -> float:
        """The penalized weighted residual sum of squares from the residuals themselves."""
        d = self.design
        residual = d.y - self.linear_predictor(solution)
        return float(d.weights @ residual**2 + solution.u @ solution.u)


class _DenseDeviance(ProfiledDeviance):
    """Several random terms: the blocked Cholesky factor formed as dense matrices."""

    def __init__(self, design: Design, reml: bool = True):
        super().__init__(design, reml)
        w = design.weights
        self.Z = design.Z
        WZ = self.Z * w[:, None]
        self.ZtWZ, self.ZtWX = self.Z.T @ WZ, self.Z.T @ (design.X * w[:, None])
        self.ZtWy = WZ.T @ (design.y - design.offset)

    def solve(self, theta: np.ndarray) -> Solution:
        Lam = self.layout.lambda_matrix(np.asarray(theta, dtype=float))
        LtZtWZL = Lam.T @ self.ZtWZ @ Lam
        L = la.cholesky(LtZtWZL + np.eye(len(LtZtWZL)), lower=True)
        RZX = la.solve_triangular(L, Lam.T @ self.ZtWX, lower=True)
        cu = la.solve_triangular(L, Lam.T @ self.ZtWy, lower=True)

        def spherical(beta):
            u = la.solve_triangular(L, cu - RZX @ beta, trans="T", lower=True)
            return u, Lam @ u

        return self._finish(theta, (L, Lam), RZX.T @ RZX, RZX.T @ cu, cu @ cu, spherical,
                            2 * np.log(np.diag(L)).sum())

    def random_part(self, b: np.ndarray) -> np.ndarray:
        return self.Z @ b

    def conditional_covariances(self, solution: Solution) -> list[np.ndarray]:
        """Per term, levels x p x p blocks of ``Lambda (L L')^-1 Lambda'`` (times sigma^2
        they are lme4's ``condVar``)."""
        L, Lam = solution.factor
        cond = Lam @ la.cho_solve((L, True), Lam.T)
        out, at = [], 0
        for block in self.design.blocks:
            p = block.n_columns
            out.append(np.stack([cond[at + k * p:at + (k + 1) * p, at + k * p:at + (k + 1) * p]
                                 for k in range(block.n_levels)]))
            at += block.size
        return out


class _OneTermDeviance(ProfiledDeviance):
    """One random term: per-level p x p blocks, computed in batches."""

    def __init__(self, design: Design, reml: bool = True):
        super().__init__(design, reml)
        block = design.blocks[0]
        self.block = block
        w, y = design.weights, design.y - design.offset
        m, p, codes, raw = block.n_levels, block.n_columns, block.codes, block.raw

        def per_level(values):
            return np.bincount(codes, weights=values, minlength=m)

        self.ZtWZ = np.stack([np.stack([per_level(w * raw[:, i] * raw[:, j])
                                        for j in range(p)], -1) for i in range(p)], -2)
        self.ZtWX = np.stack([np.stack([per_level(w * raw[:, i] * design.X[:, j])
                                        for j in range(self.p)], -1) for i in range(p)], -2)
        self.ZtWy = np.stack([per_level(w * raw[:, i] * y) for i in range(p)], -1)

    def solve(self, theta: np.ndarray) -> Solution:
        T = self.layout.templates(np.asarray(theta, dtype=float))[0]
        A = T.T @ self.ZtWZ @ T + np.eye(len(T))
        L = batched_cholesky(A)
        RZX = forward_solve(L, T.T @ self.ZtWX)
        cu = forward_solve(L, (self.ZtWy @ T)[..., None])[..., 0]
        flat = RZX.reshape(-1, RZX.shape[-1])

        def spherical(beta):
            u = backward_solve(L, (cu - RZX @ beta)[..., None])[..., 0]
            return u.ravel(), (u @ T.T).ravel()

        return self._finish(theta, (L, T), flat.T @ flat, flat.T @ cu.ravel(),
                            float(np.sum(cu * cu)), spherical,
                            2 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum())

    def random_part(self, b: np.ndarray) -> np.ndarray:
        block = self.block
        return np.einsum("ij,ij->i", block.raw, b.reshape(block.n_levels, -1)[block.codes])

    def conditional_covariances(self, solution: Solution) -> list[np.ndarray]:
        L, T = solution.factor
        half = forward_solve(L, np.broadcast_to(T.T, L.shape))  # L^-1 T', level by level
        return [np.swapaxes(half, -1, -2) @ half]


# Many tiny (p x p, p small) factorizations at once: loops over p, vectorized over levels.

def batched_cholesky(A: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a stack of positive-definite matrices (m x p x p)."""
    p = A.shape[-1]
    L = np.zeros_like(A)
    for j in range(p):
        pivot = A[:, j, j] - np.sum(L[:, j, :j] ** 2, axis=-1)
        if np.any(pivot <= 0):
            raise np.linalg.LinAlgError("matrix is not positive definite")
        L[:, j, j] = np.sqrt(pivot)
        for i in range(j + 1, p):
            L[:, i, j] = (A[:, i, j] - np.sum(L[:, i, :j] * L[:, j, :j], axis=-1)) / L[:, j, j]
    return L


def forward_solve(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve ``L X = B`` for each level (L lower triangular, B m x p x r)."""
    X = np.empty(np.broadcast_shapes(L.shape[:-1], B.shape[:-1]) + B.shape[-1:])
    for i in range(L.shape[-1]):
        X[:, i] = (B[:, i] - np.einsum("mk,mkr->mr", L[:, i, :i], X[:, :i])) / L[:, i, i, None]
    return X


def backward_solve(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve ``L' X = B`` for each level (L lower triangular, B m x p x r)."""
    p = L.shape[-1]
    X = np.empty(B.shape)
    for i in reversed(range(p)):
        X[:, i] = (B[:, i] - np.einsum("mk,mkr->mr", L[:, i + 1:, i], X[:, i + 1:])) \
            / L[:, i, i, None]
    return X
