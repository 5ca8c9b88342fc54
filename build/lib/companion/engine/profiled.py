"""The profiled deviance of a linear mixed model, in lme4's formulation.

The random effects are ``b = Lambda(theta) u`` with ``u ~ N(0, sigma^2 I)``; for given
``theta`` the penalized least-squares problem in ``(u, beta)`` is solved through the
blocked Cholesky factor

    [ L     0  ] [ L'  RZX ]   [ Lambda' Z'WZ Lambda + I   Lambda' Z'WX ]
    [ RZX'  RX'] [ 0   RX  ] = [ X'WZ Lambda              X'WX          ]

and the deviance is profiled over ``beta`` and ``sigma``. The cross-products are formed
once; each evaluation costs one factorization of ``L`` (per level for one random term, the
blocked sparse factor of :mod:`companion.engine.blocked` for several) and one ``p x p``
factorization. Nothing is ever inverted: every step is a triangular solve.

The gradient is exact (with several terms it falls back on central differences at a
singular vector template, where ``T^-1`` does not exist).
With ``V = W^-1 + Z Lambda Lambda' Z'``, ``P`` the REML projection
``V^-1 - V^-1 X (X'V^-1 X)^-1 X'V^-1`` and ``v = Z'P y = Z'W (y - X beta - Z b)``, the
derivative along ``theta_k`` (``E_k = dLambda/dtheta_k``) is

    2 tr(Lambda' Z'PZ E_k) - 2 (n - p) v'E_k Lambda'v / pwrss   (REML)

and the same with ``V^-1`` for ``P`` and ``n`` for ``n - p`` for ML; ``Z'PZ`` comes from
the factors already computed, as ``Z'WZ - K'K - S S'`` with ``K = L^-1 Lambda'Z'WZ`` and
``S = (Z'WX - K'RZX) RX^-1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.linalg as la
from scipy.linalg import lapack

from companion.engine.dense import make_structure
from companion.engine.design import Design

LOG_2PI = np.log(2 * np.pi)


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

    @staticmethod
    def template_positions(p: int) -> tuple[np.ndarray, np.ndarray]:
        """Row and column indices of a p x p template's elements, in theta's order."""
        return _positions(p)

    def lambda_index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row, column and theta index of every non-zero element of ``Lambda``."""
        rows, cols, index = [], [], []
        at, first = 0, 0
        for p, levels in zip(self.sizes, self.levels):
            r, c = _positions(p)
            starts = at + p * np.arange(levels)[:, None]
            rows.append((starts + r).ravel())
            cols.append((starts + c).ravel())
            index.append(np.tile(first + np.arange(len(r)), levels))
            at, first = at + p * levels, first + len(r)
        return np.concatenate(rows), np.concatenate(cols), np.concatenate(index)

    def lambda_matrix(self, theta: np.ndarray) -> np.ndarray:
        """``Lambda``: block diagonal, the term's template repeated for each level."""
        return la.block_diag(*[np.kron(np.eye(levels), template) for levels, template
                               in zip(self.levels, self.templates(theta))])


@lru_cache(maxsize=None)
def _positions(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each template element, in theta's (column-major) order."""
    rows, cols = np.tril_indices(p)
    order = np.lexsort((rows, cols))
    return rows[order], cols[order]


def _vech(matrix: np.ndarray) -> np.ndarray:
    rows, cols = _positions(matrix.shape[0])
    return matrix[rows, cols]


def _unvech(values: np.ndarray, p: int) -> np.ndarray:
    out = np.zeros((p, p))
    out[_positions(p)] = values
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
    the blocked factor of :mod:`companion.engine.blocked`, its off-diagonal blocks dense or
    sparse (:func:`companion.engine.dense.make_structure`; ``dense=True`` or ``False`` forces
    the choice, for tests and benchmarks).
    """

    def __new__(cls, design: Design | None = None, reml: bool = True,
                dense: bool | None = None):  # no arguments when unpickled: cls is final
        if cls is ProfiledDeviance:
            cls = _OneTermDeviance if len(design.blocks) == 1 else _BlockedDeviance
        return super().__new__(cls)

    def __init__(self, design: Design, reml: bool = True, dense: bool | None = None):
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
        if self.p == 0:  # no fixed effects (profiling a model's only one)
            LX, cb, beta = np.zeros((0, 0)), np.zeros(0), np.zeros(0)
        else:
            LX, info = lapack.dpotrf(self.XtWX - RZX_cross, lower=1)  # RX', lower triangular
            if info:
                raise np.linalg.LinAlgError("the fixed-effects cross-product is not positive "
                                            "definite")
            cb = lapack.dtrtrs(LX, self.XtWy - RZX_cu, lower=1)[0]
            beta = lapack.dtrtrs(LX, cb, lower=1, trans=1)[0]
        u, b = cu_solve(beta)
        pwrss = max(self.ytWy - cu_cu - cb @ cb, 0.0)
        return Solution(np.asarray(theta, dtype=float), beta, u, b, LX.T, pwrss, ldL2,
                        2 * np.log(np.diag(LX)).sum(), factor)

    def _dof(self, reml: bool | None = None) -> int:
        return self.n - self.p if (self.reml if reml is None else reml) else self.n

    def value_and_gradient(self, theta) -> tuple[float, np.ndarray]:
        """The criterion and its exact gradient in theta (for the optimizer)."""
        self.evaluations += 1
        try:
            solution = self.solve(theta)
        except np.linalg.LinAlgError:
            return np.inf, np.zeros(len(theta))
        return self.objective(solution), self.gradient(solution)

    def objective(self, solution: Solution, reml: bool | None = None) -> float:
        """-2 log-likelihood (ML) or the REML criterion, as lme4 reports them; ``reml``
        overrides the criterion the deviance was made for."""
        reml = self.reml if reml is None else reml
        dof = self._dof(reml)
        value = solution.ldL2 - self.ldW + dof * (1 + LOG_2PI + np.log(solution.pwrss / dof))
        return value + solution.ldRX2 if reml else value

    def __call__(self, theta) -> float:
        self.evaluations += 1
        try:
            return self.objective(self.solve(theta))
        except np.linalg.LinAlgError:
            return np.inf

    def linear_predictor(self, solution: Solution) -> np.ndarray:
        d = self.design
        return d.offset + d.X @ solution.beta + self.random_part(solution.b)

    def exact_pwrss(self, solution: Solution) -> float:
        """The penalized weighted residual sum of squares from the residuals themselves."""
        d = self.design
        residual = d.y - self.linear_predictor(solution)
        return float(d.weights @ residual**2 + solution.u @ solution.u)


class _BlockedDeviance(ProfiledDeviance):
    """Several random terms: the blocked factor of :mod:`companion.engine.blocked`."""

    def __init__(self, design: Design, reml: bool = True, dense: bool | None = None):
        super().__init__(design, reml)
        self.structure = make_structure(design.blocks, self.n, dense)
        self.cross = self.structure.cross_products(design.weights, design.X,
                                                   design.y - design.offset)
        self.lower = self.layout.lower_bounds()

    def solve(self, theta: np.ndarray) -> Solution:
        theta = np.asarray(theta, dtype=float)
        lam = self.structure.relative_covariance(self.layout.templates(theta))
        factor = self.structure.factor(self.cross, lam)
        RZX = factor.solve_lower(lam.transpose_multiply(self.cross.ZtWX))
        cu = factor.solve_lower(lam.transpose_multiply(self.cross.ZtWy))

        def spherical(beta):
            u = factor.solve_upper(cu - RZX @ beta)
            return u, lam.multiply(u)

        return self._finish(theta, factor, RZX.T @ RZX, RZX.T @ cu, cu @ cu, spherical,
                            factor.log_det)

    def gradient(self, solution: Solution) -> np.ndarray:
        """The exact gradient (the module's formula) from the diagonal blocks of
        ``(L L')^-1``: per term, ``sum_l (Z'PZ)_ll T = T^-T (m I - sum_l [(L L')^-1]_ll)``
        minus, for REML, ``sum_l S_l (T'S_l)'``. A singular vector template (a boundary
        fit) has no ``T^-T``; there the gradient is by central differences."""
        templates = self.layout.templates(solution.theta)
        if any(len(t) > 1 and np.min(np.abs(np.diag(t))) < 1e-10 for t in templates):
            return self._central_differences(solution)
        d, cross, factor = self.design, self.cross, solution.factor
        v = cross.ZtWy - cross.ZtWX @ solution.beta - cross.multiply(solution.b)  # Z'W r
        reml = self.reml and self.p
        if reml:
            S, LtS = self._reml_columns(solution)
        grads, at = [], 0
        for block, T, inverse in zip(d.blocks, templates, factor.inverse_level_blocks()):
            m, p = block.n_levels, block.n_columns
            rows = slice(at, at + m * p)
            M = m * np.eye(p) - inverse.sum(axis=0)
            if p == 1:
                first = M / T if T[0, 0] != 0 else np.zeros((1, 1))
            else:
                first = np.linalg.solve(T.T, M)
            V, U = v[rows].reshape(m, p), solution.u[rows].reshape(m, p)
            G = 2 * first - 2 * self._dof() * V.T @ U / solution.pwrss
            if reml:
                G -= 2 * np.einsum("lrk,lsk->rs", S[rows].reshape(m, p, -1),
                                   LtS[rows].reshape(m, p, -1))
            grads.append(G[self.layout.template_positions(p)])
            at += m * p
        return np.concatenate(grads)

    def _reml_columns(self, solution: Solution) -> tuple[np.ndarray, np.ndarray]:
        """``S = (Z'WX - Z'WZ Lambda L^-T RZX) RX^-1`` and ``Lambda' S``."""
        factor = solution.factor
        back = factor.lam.multiply(factor.solve_upper(self._rzx(solution)))
        H = self.cross.ZtWX - self.cross.multiply(back)
        S = lapack.dtrtrs(solution.RX, H.T, trans=1)[0].T
        return S, factor.lam.transpose_multiply(S)

    def _rzx(self, solution: Solution) -> np.ndarray:
        """``RZX = L^-1 Lambda' Z'WX`` at the solution's factor."""
        factor = solution.factor
        return factor.solve_lower(factor.lam.transpose_multiply(self.cross.ZtWX))

    def _central_differences(self, solution: Solution) -> np.ndarray:
        theta = solution.theta
        value = self.objective(solution)
        grad = np.zeros_like(theta)
        for i in range(len(theta)):
            h = 1e-6 * max(1.0, abs(theta[i]))
            up = theta.copy()
            up[i] += h
            if theta[i] - h >= self.lower[i]:
                down = theta.copy()
                down[i] -= h
                grad[i] = (self.objective(self.solve(up))
                           - self.objective(self.solve(down))) / (2 * h)
            else:
                grad[i] = (self.objective(self.solve(up)) - value) / h
        return grad

    def random_part(self, b: np.ndarray) -> np.ndarray:
        return self.structure.multiply(b)

    def conditional_covariances(self, solution: Solution) -> list[np.ndarray]:
        """Per term, levels x p x p blocks of ``Lambda (L L')^-1 Lambda'`` (times sigma^2
        they are lme4's ``condVar``)."""
        return solution.factor.conditional_covariances(self.design.blocks)


class _OneTermDeviance(ProfiledDeviance):
    """One random term: per-level p x p blocks, computed in batches."""

    def __init__(self, design: Design, reml: bool = True, dense: bool | None = None):
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
                                        for j in range(self.p)], -1) for i in range(p)], -2) \
            if self.p else np.zeros((m, p, 0))  # no fixed effects: profiling the only one
        self.ZtWy = np.stack([per_level(w * raw[:, i] * y) for i in range(p)], -1)
        self.cross = np.concatenate([self.ZtWX, self.ZtWy[..., None], self.ZtWZ], axis=-1)
        self.ZtWZ_total = self.ZtWZ.sum(axis=0)
        self.positions = self.layout.template_positions(p)

    def solve(self, theta: np.ndarray) -> Solution:
        T = self.layout.templates(np.asarray(theta, dtype=float))[0]
        L = np.linalg.cholesky(T.T @ self.ZtWZ @ T + np.eye(len(T)))  # one per level
        # One solve for RZX = L^-1 T'Z'WX, cu = L^-1 T'Z'Wy and K = L^-1 T'Z'WZ (gradient).
        solved = np.linalg.solve(L, T.T @ self.cross)
        px = self.p
        RZX, cu, K = solved[..., :px], solved[..., px], solved[..., px + 1:]
        flat = RZX.reshape(RZX.shape[0] * RZX.shape[1], px)

        def spherical(beta):
            u = np.linalg.solve(np.swapaxes(L, 1, 2), (cu - RZX @ beta)[..., None])[..., 0]
            return u.ravel(), (u @ T.T).ravel()

        return self._finish(theta, (L, T, RZX, K), flat.T @ flat, flat.T @ cu.ravel(),
                            float(np.sum(cu * cu)), spherical,
                            2 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum())

    def gradient(self, solution: Solution) -> np.ndarray:
        _, T, RZX, K = solution.factor
        m, p = self.ZtWy.shape
        ZtPZ = self.ZtWZ_total - np.einsum("mki,mkj->ij", K, K)  # summed over levels
        if self.reml and self.p:
            H = self.ZtWX - np.swapaxes(K, 1, 2) @ RZX
            S = lapack.dtrtrs(solution.RX, H.reshape(m * p, self.p).T, trans=1)[0] \
                .reshape(-1, m, p)
            ZtPZ -= np.einsum("kmi,kmj->ij", S, S)
        b = solution.b.reshape(m, p)
        v = self.ZtWy - self.ZtWX @ solution.beta - (self.ZtWZ @ b[..., None])[..., 0]
        G = 2 * (T.T @ ZtPZ).T - 2 * self._dof() * (v.T @ v) @ T / solution.pwrss
        return G[self.positions]

    def random_part(self, b: np.ndarray) -> np.ndarray:
        block = self.block
        return np.einsum("ij,ij->i", block.raw, b.reshape(block.n_levels, -1)[block.codes])

    def conditional_covariances(self, solution: Solution) -> list[np.ndarray]:
        L, T = solution.factor[:2]
        half = np.linalg.solve(L, np.broadcast_to(T.T, L.shape))  # L^-1 T', level by level
        return [np.swapaxes(half, -1, -2) @ half]
