"""The blocked Cholesky factor of :mod:`companion.blocked` with dense off-diagonal blocks,
for models whose terms after the first have few levels.

The split is the same: the first term's block of ``Lambda' Z'WZ Lambda + I`` is block
diagonal (one ``p0 x p0`` block per level) and is factored level by level; the rest is
dense. What differs is the cross block ``L10`` (rest x first): here a dense array, so an
evaluation is a handful of BLAS calls on small arrays instead of sparse products whose
overhead (tens of microseconds each) dominates small models. ``Z'WZ``'s blocks are formed
by ``bincount`` over the rows (never an ``n x q`` matrix). :func:`make_structure` chooses
between the two by the cost of the dense product ``L10 L10'`` and the fill of ``L10``.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

from companion.blocked import (CrossProducts, RandomEffectsStructure, inverse_from_cholesky,
                               inverse_level_blocks, lower_cholesky)

SMALL_FLOPS = 1e6  # a dense L10 L10' this cheap is always the faster
LARGE_FLOPS = 1e8  # ... and one this costly never is
DENSE_FILL = 0.1  # between the two, dense when at least this share of L10 is non-zero


def make_structure(blocks, n: int, dense: bool | None = None):
    """The random effects' structure for the blocked factor: dense off-diagonal blocks
    when the dense product ``L10 L10'`` is cheap, or affordable and ``L10`` is not sparse
    (subjects who all see the same few items); sparse ones otherwise (an observation-level
    term beside a few grouping factors, thousands of levels in several terms). ``dense``
    forces the choice."""
    if dense is None:
        first, rest = blocks[0], blocks[1:]
        flops = sum(b.size for b in rest) ** 2 * first.size
        if flops <= SMALL_FLOPS or flops > LARGE_FLOPS:
            dense = flops <= SMALL_FLOPS
        else:
            filled = sum(len(np.unique(first.codes * b.n_levels + b.codes)) * b.n_columns
                         for b in rest) * first.n_columns
            dense = filled >= DENSE_FILL * first.size * sum(b.size for b in rest)
    if dense:
        return DenseStructure(blocks, n)
    return RandomEffectsStructure(blocks, n)


class DenseStructure:
    """``Z`` of a list of random-effects blocks (lme4's order): the first term's codes and
    values, and the other terms' codes and values, with dense cross-products."""

    def __init__(self, blocks, n: int):
        first, rest = blocks[0], blocks[1:]
        self.n = n
        self.m0, self.p0 = first.n_levels, first.n_columns
        self.codes0, self.raw0 = first.codes, np.asarray(first.raw, dtype=float)
        self.q0 = self.m0 * self.p0
        self.rest_sizes = [b.n_columns for b in rest]
        self.rest_levels = [b.n_levels for b in rest]
        self.rest_codes = [b.codes for b in rest]
        self.rest_raw = [np.asarray(b.raw, dtype=float) for b in rest]
        self.rest_starts = np.cumsum([0] + [b.size for b in rest])
        self.q_rest = int(self.rest_starts[-1])
        # every column of the rest of Z: its position among the rest's effects, its values
        self._rest_columns = [(self.rest_starts[k] + codes * p + j, raw[:, j])
                              for k, (codes, raw, p) in enumerate(zip(
                                  self.rest_codes, self.rest_raw, self.rest_sizes))
                              for j in range(p)]

    @property
    def q(self) -> int:
        return self.q0 + self.q_rest

    def multiply(self, b: np.ndarray) -> np.ndarray:
        """``Z b`` for ``b`` in Z's column order (first term, then the rest)."""
        b0 = b[:self.q0].reshape(self.m0, self.p0)
        out = np.einsum("ij,ij->i", self.raw0, b0[self.codes0]) if self.p0 > 1 \
            else self.raw0[:, 0] * b0[self.codes0, 0]
        rest = b[self.q0:]
        for index, values in self._rest_columns:
            out = out + values * rest[index]
        return out

    def transpose_multiply(self, r: np.ndarray) -> np.ndarray:
        """``Z' r`` for a vector ``r`` or a matrix with one row per observation."""
        r = np.asarray(r, dtype=float)
        if r.ndim == 2:
            return np.column_stack([self.transpose_multiply(c) for c in r.T]) \
                if r.shape[1] else np.zeros((self.q, 0))
        first = np.stack([np.bincount(self.codes0, weights=r * self.raw0[:, j],
                                      minlength=self.m0) for j in range(self.p0)], -1)
        rest = np.zeros(self.q_rest)
        for index, values in self._rest_columns:
            rest += np.bincount(index, weights=r * values, minlength=self.q_rest)
        return np.concatenate([first.ravel(), rest])

    def cross_products(self, w: np.ndarray, X: np.ndarray | None = None,
                       y: np.ndarray | None = None) -> CrossProducts:
        """``Z'WZ`` by blocks (the first term's per level, the rest dense) for the weights
        ``w``, and ``Z'WX`` and ``Z'Wy`` when ``X`` and ``y`` are given."""
        m0, p0, q0, qr = self.m0, self.p0, self.q0, self.q_rest
        A00 = np.empty((m0, p0, p0))
        for i in range(p0):
            for j in range(i, p0):
                A00[:, i, j] = A00[:, j, i] = np.bincount(
                    self.codes0, weights=w * self.raw0[:, i] * self.raw0[:, j], minlength=m0)
        A10 = np.zeros(qr * q0)
        A11 = np.zeros(qr * qr)
        for index, values in self._rest_columns:
            wv = w * values
            for j in range(p0):
                A10 += np.bincount(index * q0 + self.codes0 * p0 + j,
                                   weights=wv * self.raw0[:, j], minlength=qr * q0)
            for other, other_values in self._rest_columns:
                A11 += np.bincount(index * qr + other, weights=wv * other_values,
                                   minlength=qr * qr)
        cross = CrossProducts(A00, A10.reshape(qr, q0), A11.reshape(qr, qr))
        if X is not None:
            ZtWxy = self.transpose_multiply(np.column_stack([X, y]) * w[:, None])
            cross.ZtWX, cross.ZtWy = ZtWxy[:, :-1], ZtWxy[:, -1]
        return cross

    def relative_covariance(self, templates: list[np.ndarray]) -> DenseRelativeCovariance:
        return DenseRelativeCovariance(self, templates)

    def factor(self, cross: CrossProducts, lam: DenseRelativeCovariance) -> DenseBlockedFactor:
        return DenseBlockedFactor(self, cross, lam)


class DenseRelativeCovariance:
    """``Lambda`` at one theta, applied term by term (each template repeated per level)."""

    def __init__(self, structure: DenseStructure, templates: list[np.ndarray]):
        self.structure = structure
        self.T0 = templates[0]
        self.rest = templates[1:]

    def rest_multiply(self, r: np.ndarray, transpose: bool = False) -> np.ndarray:
        s = self.structure
        out = np.empty(r.shape)
        if not len(r):
            return out
        flat = r.reshape(len(r), -1)
        for k, (T, m, p) in enumerate(zip(self.rest, s.rest_levels, s.rest_sizes)):
            rows = slice(s.rest_starts[k], s.rest_starts[k + 1])  # this term's effects
            if p == 1:
                out[rows] = T[0, 0] * r[rows]
            else:
                part = flat[rows].reshape(m, p, -1)
                out[rows] = ((T.T if transpose else T) @ part).reshape(out[rows].shape)
        return out

    def first_multiply(self, r0: np.ndarray, transpose: bool = False) -> np.ndarray:
        s = self.structure
        if s.p0 == 1:
            return self.T0[0, 0] * r0
        part = r0.reshape(s.m0, s.p0, -1)
        return ((self.T0.T if transpose else self.T0) @ part).reshape(r0.shape)

    def multiply(self, u: np.ndarray) -> np.ndarray:
        """``Lambda u`` for a vector or matrix ``u`` in Z's column order."""
        q0 = self.structure.q0
        return np.concatenate([self.first_multiply(u[:q0]), self.rest_multiply(u[q0:])])

    def transpose_multiply(self, r: np.ndarray) -> np.ndarray:
        """``Lambda' r``."""
        q0 = self.structure.q0
        return np.concatenate([self.first_multiply(r[:q0], True),
                               self.rest_multiply(r[q0:], True)])


class DenseBlockedFactor:
    """``L`` with ``L L' = Lambda' Z'WZ Lambda + I`` at one theta: ``L00`` per level,
    ``L10`` and ``L11`` dense (see :mod:`companion.blocked` for the algebra)."""

    def __init__(self, structure: DenseStructure, cross: CrossProducts,
                 lam: DenseRelativeCovariance):
        self.structure, self.lam, self.T0 = structure, lam, lam.T0
        s, T0 = structure, lam.T0
        self.L00 = lower_cholesky(T0.T @ cross.A00 @ T0 + np.eye(s.p0))
        self.L00_inv = np.linalg.inv(self.L00) if s.p0 > 1 else 1 / self.L00
        # L10 = Lambda_r' A10 Lambda_0 L00^-T, the last two level by level
        A10 = lam.rest_multiply(cross.A10, transpose=True).reshape(s.q_rest, s.m0, s.p0)
        A10 = A10 @ T0 if s.p0 > 1 else A10 * T0[0, 0]
        self.L10 = _per_level_right(A10, np.swapaxes(self.L00_inv, 1, 2)).reshape(
            s.q_rest, s.q0)
        half = lam.rest_multiply(cross.A11, transpose=True)
        schur = lam.rest_multiply(half.T, transpose=True) - self.L10 @ self.L10.T
        schur[np.diag_indices(s.q_rest)] += 1
        L11, info = lapack.dpotrf(schur, lower=1, clean=1) if s.q_rest else (schur, 0)
        if info:
            raise np.linalg.LinAlgError("Lambda'Z'WZ Lambda + I is not positive definite")
        self.L11 = L11
        self.log_det = 2 * (np.log(np.diagonal(self.L00, axis1=1, axis2=2)).sum()
                            + np.log(np.diag(L11)).sum())

    def solve_lower(self, r: np.ndarray) -> np.ndarray:
        """``L^-1 r`` for a vector or matrix ``r`` (q rows)."""
        s = self.structure
        r0 = r[:s.q0].reshape((s.m0, s.p0, -1))
        x0 = (self.L00_inv @ r0).reshape((s.q0,) + r.shape[1:])
        x1 = r[s.q0:] - self.L10 @ x0
        if s.q_rest:
            x1 = lapack.dtrtrs(self.L11, x1, lower=1)[0]
        return np.concatenate([x0, x1], axis=0)

    def solve_upper(self, c: np.ndarray) -> np.ndarray:
        """``L'^-1 c``."""
        s = self.structure
        x1 = c[s.q0:]
        if s.q_rest:
            x1 = lapack.dtrtrs(self.L11, x1, lower=1, trans=1)[0]
        r0 = (c[:s.q0] - self.L10.T @ x1).reshape((s.m0, s.p0, -1))
        x0 = (np.swapaxes(self.L00_inv, 1, 2) @ r0).reshape((s.q0,) + c.shape[1:])
        return np.concatenate([x0, x1], axis=0)

    def inverse_parts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``C = (L L')^-1`` as the first term's diagonal blocks (levels x p0 x p0), the
        dense rest x first block and the dense rest x rest block."""
        s = self.structure
        first = np.swapaxes(self.L00_inv, 1, 2) @ self.L00_inv
        if not s.q_rest:
            return first, np.zeros((0, s.q0)), np.zeros((0, 0))
        Q = inverse_from_cholesky(self.L11)
        # H = L10 L00^-1; C_00 = L00^-T L00^-1 + H'QH; C_10 = -QH
        H = _per_level_right(self.L10.reshape(s.q_rest, s.m0, s.p0), self.L00_inv)
        QH = (Q @ H.reshape(s.q_rest, s.q0)).reshape(H.shape)
        first = first + np.einsum("xli,xlj->lij", H, QH)
        return first, -QH.reshape(s.q_rest, s.q0), Q

    def inverse_level_blocks(self) -> list[np.ndarray]:
        """Per term, the ``levels x p x p`` diagonal blocks of ``(L L')^-1``."""
        first, _, Q = self.inverse_parts()
        return inverse_level_blocks(first, Q, self.structure)

    def conditional_covariances(self, blocks) -> list[np.ndarray]:
        """Per term, ``levels x p x p`` blocks of ``Lambda (L L')^-1 Lambda'``."""
        templates = [self.T0] + list(self.lam.rest)
        return [T @ C @ T.T for T, C in zip(templates, self.inverse_level_blocks())]


def _per_level_right(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A[:, l] @ B[l]`` for every level ``l``: ``A`` is rows x levels x p, ``B`` levels
    x p x p."""
    if B.shape[-1] == 1:
        return A * B[:, 0, :]
    return np.einsum("xlj,ljk->xlk", A, B)
