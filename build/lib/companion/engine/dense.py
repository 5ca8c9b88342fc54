"""The blocked Cholesky factor of :mod:`companion.engine.blocked` with dense off-diagonal blocks,
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

from companion.engine.blocked import (BlockedFactor, CrossProducts, RandomEffectsStructure,
                                      RelativeCovariance, inverse_from_cholesky)

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


class DenseStructure(RandomEffectsStructure):
    """``Z`` of a list of random-effects blocks (lme4's order): the first term as in
    :class:`companion.engine.blocked.RandomEffectsStructure`, the others by their codes and
    values, with dense cross-products."""

    def rest_matrix(self, rest, n: int):
        """No sparse matrix: each column of the rest of ``Z`` as its position among the
        rest's effects, row by row, and its values."""
        self.rest_columns = [(self.rest_starts[k] + b.codes * b.n_columns + j,
                              np.asarray(b.raw, dtype=float)[:, j])
                             for k, b in enumerate(rest) for j in range(b.n_columns)]
        return None

    def rest_multiply(self, b_rest: np.ndarray) -> np.ndarray:
        out = np.zeros(self.n)
        for index, values in self.rest_columns:
            out += values * b_rest[index]
        return out

    def rest_transpose_multiply(self, r: np.ndarray) -> np.ndarray:
        if r.ndim == 2:
            return np.column_stack([self.rest_transpose_multiply(c) for c in r.T]) \
                if r.shape[1] else np.zeros((self.q_rest, 0))
        out = np.zeros(self.q_rest)
        for index, values in self.rest_columns:
            out += np.bincount(index, weights=r * values, minlength=self.q_rest)
        return out

    def rest_cross_products(self, w: np.ndarray):
        """``Z_r'WZ_0`` and ``Z_r'WZ_r``, both dense, one ``bincount`` per pair of
        columns."""
        q0, p0, qr = self.q0, self.p0, self.q_rest
        A10, A11 = np.zeros(qr * q0), np.zeros(qr * qr)
        for index, values in self.rest_columns:
            wv = w * values
            for j in range(p0):
                A10 += np.bincount(index * q0 + self.codes0 * p0 + j,
                                   weights=wv * self.raw0[:, j], minlength=qr * q0)
            for other, other_values in self.rest_columns:
                A11 += np.bincount(index * qr + other, weights=wv * other_values,
                                   minlength=qr * qr)
        return A10.reshape(qr, q0), A11.reshape(qr, qr)

    def relative_covariance(self, templates: list[np.ndarray]) -> DenseRelativeCovariance:
        return DenseRelativeCovariance(self, templates)

    def factor(self, cross: CrossProducts, lam: DenseRelativeCovariance) -> DenseBlockedFactor:
        return DenseBlockedFactor(self, cross, lam)


class DenseRelativeCovariance(RelativeCovariance):
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


class DenseBlockedFactor(BlockedFactor):
    """``L`` with ``L L' = Lambda' Z'WZ Lambda + I`` at one theta: ``L00`` per level,
    ``L10`` and ``L11`` dense (see :mod:`companion.engine.blocked` for the algebra)."""

    def rest_blocks(self, cross: CrossProducts, lam: DenseRelativeCovariance):
        """``L10 = Lambda_r' A10 Lambda_0 L00^-T`` and ``Lambda_r' A11 Lambda_r``, dense."""
        s = self.structure
        A10 = lam.rest_multiply(cross.A10, transpose=True).reshape(s.q_rest, s.m0, s.p0)
        A10 = A10 @ lam.T0 if s.p0 > 1 else A10 * lam.T0[0, 0]
        L10 = _per_level_right(A10, np.swapaxes(self.L00_inv, 1, 2)).reshape(s.q_rest, s.q0)
        half = lam.rest_multiply(cross.A11, transpose=True)
        return L10, lam.rest_multiply(half.T, transpose=True)

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


def _per_level_right(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A[:, l] @ B[l]`` for every level ``l``: ``A`` is rows x levels x p, ``B`` levels
    x p x p."""
    if B.shape[-1] == 1:
        return A * B[:, 0, :]
    return np.einsum("xlj,ljk->xlk", A, B)
