"""The blocked sparse Cholesky factor of ``Lambda' Z'WZ Lambda + I`` for any list of
random-effects terms: crossed, nested, partially crossed, scalar or vector.

The columns of ``Z`` are split, as MixedModels.jl does, into the first term (lme4 puts the
term with the most levels first) and the rest. ``Z0'WZ0`` is block diagonal, one
``p0 x p0`` block per level, so its factor ``L00`` is too and is computed level by level;
the cross block ``L10 = Lambda_r' Z_r'WZ0 Lambda_0 L00^-T`` keeps the sparsity of
``Z_r'WZ0``; only the rest, whose levels are few in the designs mixed models meet (items
beside subjects, schools above classes), is factored as a dense matrix:

    [ L00   0  ] [ L00'  L10' ]   [ A00 + I   A10'    ]
    [ L10  L11 ] [  0    L11' ] = [ A10       A11 + I ],   A = Lambda' Z'WZ Lambda.

The cost per factorization is that of the sparse product ``L10 L10'`` and a dense Cholesky
of the rest's size, whatever the number of rows and of the first term's levels.
:class:`CrossProducts` holds ``Z'WZ``, ``Z'WX`` and ``Z'Wy`` for one weight vector (formed
once for an LMM, once per PIRLS iteration for a GLMM); :class:`BlockedFactor` is the factor
at one theta, with its triangular solves, log-determinant and conditional covariances.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from companion.engine.threads import all_blas_threads


class RandomEffectsStructure:
    """``Z`` of a list of random-effects blocks (``design.blocks``, in lme4's order), as the
    first term's codes and values and a sparse matrix for the rest."""

    def __init__(self, blocks, n: int):
        first, rest = blocks[0], blocks[1:]
        self.n = n
        self.m0, self.p0 = first.n_levels, first.n_columns
        self.codes0, self.raw0 = first.codes, np.asarray(first.raw, dtype=float)
        self.q0 = self.m0 * self.p0
        self.rest_sizes = [b.n_columns for b in rest]
        self.rest_levels = [b.n_levels for b in rest]
        self.q_rest = sum(b.size for b in rest)
        self.rest_codes = [b.codes for b in rest]
        self.rest_raw = [np.asarray(b.raw, dtype=float) for b in rest]
        self.rest_starts = np.cumsum([0] + [b.size for b in rest])
        self.Z0 = _term_matrix(self.codes0, self.raw0, self.m0, n)
        self.Zr = self.rest_matrix(rest, n)

    def _index_cross_products(self) -> None:
        """Where each row's contributions to ``Z_r'WZ_0`` (sparse, its pattern fixed by
        the grouping) and ``Z_r'WZ_r`` (dense) fall, so that each weight vector costs two
        ``bincount``s. Every row of ``Z0`` and ``Zr`` stores all its entries (zeros too)."""
        n, q0, qr = self.n, self.q0, self.q_rest
        cols0, vals0 = self.Z0.indices.reshape(n, -1), self.Z0.data.reshape(n, -1)
        colsr, valsr = self.Zr.indices.reshape(n, -1), self.Zr.data.reshape(n, -1)
        keys = (colsr[:, :, None] * q0 + cols0[:, None, :]).ravel()
        self._A10_keys, self._A10_position = np.unique(keys, return_inverse=True)
        self._A10_values = (valsr[:, :, None] * vals0[:, None, :]).reshape(n, -1)
        rows = self._A10_keys // q0
        self._A10_indptr = np.searchsorted(rows, np.arange(qr + 1))
        self._A10_indices = self._A10_keys % q0
        self._A11_position = (colsr[:, :, None] * qr + colsr[:, None, :]).ravel()
        self._A11_values = (valsr[:, :, None] * valsr[:, None, :]).reshape(n, -1)

    def product_on_pattern(self, Q: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``(Q H)`` at the non-zeros of ``H``, a sparse matrix with the pattern of
        ``Z_r'WZ_0`` and the given ``values`` (first term scalar): each entry is the dot
        product of a row of ``Q`` with ``H``'s column over that column's few non-zeros,
        far fewer operations than the dense product."""
        if not hasattr(self, "_pair_first"):
            self._index_column_pairs()
        products = Q.ravel()[self._pair_q] * values[self._pair_second]
        return np.bincount(self._pair_first, weights=products,
                           minlength=len(self._A10_keys))

    def _index_column_pairs(self) -> None:
        """Every pair of non-zeros of ``Z_r'WZ_0`` in one column: their positions and the
        flat index of ``Q`` at their rows."""
        indices = self._A10_indices
        rows = np.repeat(np.arange(self.q_rest), np.diff(self._A10_indptr))
        order = np.argsort(indices, kind="stable")  # the non-zeros column by column
        counts = np.bincount(indices, minlength=self.q0)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        per = counts[indices[order]]  # each non-zero's column size
        first = np.repeat(np.arange(len(order)), per)
        offset = np.arange(len(first)) - np.repeat(np.cumsum(per) - per, per)
        second = starts[indices[order]][first] + offset
        self._pair_first, self._pair_second = order[first], order[second]
        self._pair_q = rows[self._pair_first] * self.q_rest + rows[self._pair_second]

    def rest_matrix(self, rest, n: int):
        """The terms after the first as one sparse ``n x q_rest`` matrix."""
        return sp.hstack([_term_matrix(b.codes, np.asarray(b.raw, dtype=float),
                                       b.n_levels, n) for b in rest], format="csr") \
            if rest else sp.csr_matrix((n, 0))

    @property
    def q(self) -> int:
        return self.q0 + self.q_rest

    def multiply(self, b: np.ndarray) -> np.ndarray:
        """``Z b`` for ``b`` in Z's column order (first term, then the rest)."""
        b0 = b[:self.q0].reshape(self.m0, self.p0)
        first = np.einsum("ij,ij->i", self.raw0, b0[self.codes0]) if self.p0 > 1 \
            else self.raw0[:, 0] * b0[self.codes0, 0]
        return first + self.rest_multiply(b[self.q0:])

    def transpose_multiply(self, r: np.ndarray) -> np.ndarray:
        """``Z' r`` for a vector or a matrix ``r`` with one row per observation."""
        r = np.asarray(r, dtype=float)
        return np.concatenate([self.Z0.T @ r, self.rest_transpose_multiply(r)], axis=0)

    def cross_products(self, w: np.ndarray, X: np.ndarray | None = None,
                       y: np.ndarray | None = None) -> CrossProducts:
        """``Z'WZ`` (by blocks) for the weights ``w``, and ``Z'WX`` and ``Z'Wy`` when ``X``
        and ``y`` are given."""
        m0, p0 = self.m0, self.p0
        raw0, codes0 = self.raw0, self.codes0
        A00 = np.empty((m0, p0, p0))
        for i in range(p0):
            for j in range(i, p0):
                A00[:, i, j] = A00[:, j, i] = np.bincount(
                    codes0, weights=w * raw0[:, i] * raw0[:, j], minlength=m0)
        A10, A11 = self.rest_cross_products(w)
        if X is None:
            return CrossProducts(A00, A10, A11)
        ZtWxy = self.transpose_multiply(np.column_stack([X, y]) * w[:, None])
        return CrossProducts(A00, A10, A11, ZtWxy[:, :-1], ZtWxy[:, -1])

    # -- the rest of Z, as a sparse matrix (companion.engine.dense overrides these) --------------
    def rest_multiply(self, b_rest: np.ndarray) -> np.ndarray:
        """``Z_r b_r``: the terms after the first times their effects."""
        return self.Zr @ b_rest

    def rest_transpose_multiply(self, r: np.ndarray) -> np.ndarray:
        """``Z_r' r``."""
        return self.Zr.T @ r

    def rest_cross_products(self, w: np.ndarray):
        """``Z_r'WZ_0`` (sparse) and ``Z_r'WZ_r`` (dense)."""
        if not self.q_rest:
            return sp.csr_matrix((0, self.q0)), np.zeros((0, 0))
        if not hasattr(self, "_A10_keys"):
            self._index_cross_products()
        A10 = np.bincount(self._A10_position, weights=(w[:, None] * self._A10_values).ravel(),
                          minlength=len(self._A10_keys))
        A11 = np.bincount(self._A11_position, weights=(w[:, None] * self._A11_values).ravel(),
                          minlength=self.q_rest**2)
        return sp.csr_matrix((A10, self._A10_indices, self._A10_indptr),
                             shape=(self.q_rest, self.q0)), A11.reshape(self.q_rest, -1)


    def relative_covariance(self, templates: list[np.ndarray]) -> RelativeCovariance:
        return RelativeCovariance(self, templates)

    def factor(self, cross: CrossProducts, lam: RelativeCovariance) -> BlockedFactor:
        return BlockedFactor(self, cross, lam)


def _term_matrix(codes: np.ndarray, raw: np.ndarray, levels: int, n: int) -> sp.csr_matrix:
    """One term's indicator-times-values matrix, ``n x (levels p)``, its columns level by
    level. Every row stores all ``p`` entries, zeros included, so the pattern depends on the
    grouping only."""
    p = raw.shape[1]
    columns = (codes[:, None] * p + np.arange(p)).ravel()
    return sp.csr_matrix((raw.ravel(), columns, np.arange(0, n * p + 1, p)),
                         shape=(n, levels * p))


@dataclass
class CrossProducts:
    """``Z'WZ`` as its first-term blocks ``A00`` (levels x p0 x p0), the sparse ``A10``
    (rest x first) and the dense ``A11``; ``Z'WX`` and ``Z'Wy`` in Z's column order."""

    A00: np.ndarray
    A10: sp.csr_matrix
    A11: np.ndarray
    ZtWX: np.ndarray | None = None
    ZtWy: np.ndarray | None = None

    def multiply(self, b: np.ndarray) -> np.ndarray:
        """``Z'WZ b`` for a vector or matrix ``b`` in Z's column order, from the blocks
        (no pass over the rows)."""
        m0, p0 = self.A00.shape[:2]
        q0 = m0 * p0
        b0, b1 = b[:q0], b[q0:]
        first = (self.A00 @ b0.reshape(m0, p0, -1)).reshape(b0.shape) + self.A10.T @ b1
        return np.concatenate([first, self.A10 @ b0 + self.A11 @ b1], axis=0)


def _block_diagonal(blocks: np.ndarray) -> sp.csr_matrix:
    """A sparse block-diagonal matrix from ``m x p x p`` blocks."""
    m, p, _ = blocks.shape
    return sp.bsr_matrix((blocks, np.arange(m), np.arange(m + 1)),
                         shape=(m * p, m * p)).tocsr()


def rest_lambda(templates: list[np.ndarray], levels: list[int]) -> sp.csr_matrix:
    """``Lambda`` of the terms after the first: each template repeated for each level."""
    if not templates:
        return sp.csr_matrix((0, 0))
    return sp.block_diag([_block_diagonal(np.broadcast_to(t, (m,) + t.shape))
                          for t, m in zip(templates, levels)], format="csr")


class RelativeCovariance:
    """``Lambda`` at one theta: the first term's template, and the rest as a sparse matrix."""

    def __init__(self, structure: RandomEffectsStructure, templates: list[np.ndarray]):
        self.structure = structure
        self.T0 = templates[0]
        self.rest = templates[1:]
        self.Lambda_r = rest_lambda(templates[1:], structure.rest_levels)

    def multiply(self, u: np.ndarray) -> np.ndarray:
        """``Lambda u`` for a vector or matrix ``u`` in Z's column order."""
        q0 = self.structure.q0
        return np.concatenate([self.first_multiply(u[:q0]), self.rest_multiply(u[q0:])])

    def transpose_multiply(self, r: np.ndarray) -> np.ndarray:
        """``Lambda' r``."""
        q0 = self.structure.q0
        return np.concatenate([self.first_multiply(r[:q0], True),
                               self.rest_multiply(r[q0:], True)])

    def first_multiply(self, r0: np.ndarray, transpose: bool = False) -> np.ndarray:
        """The first term's rows times its template (or its transpose), level by level."""
        s = self.structure
        if s.p0 == 1:
            return self.T0[0, 0] * r0
        part = r0.reshape(s.m0, s.p0, -1)
        return ((self.T0.T if transpose else self.T0) @ part).reshape(r0.shape)

    def rest_multiply(self, r: np.ndarray, transpose: bool = False) -> np.ndarray:
        """The other terms' rows times ``Lambda_r`` (or its transpose)."""
        return (self.Lambda_r.T if transpose else self.Lambda_r) @ r


class BlockedFactor:
    """``L`` with ``L L' = Lambda' Z'WZ Lambda + I`` at one theta (see the module's text)."""

    def __init__(self, structure: RandomEffectsStructure, cross: CrossProducts,
                 lam: RelativeCovariance):
        self.structure = structure
        self.lam = lam
        T0 = lam.T0
        self.T0 = T0
        p0 = structure.p0
        L00 = lower_cholesky(T0.T @ cross.A00 @ T0 + np.eye(p0))
        self.L00 = L00
        self.L00_inv = np.linalg.inv(L00) if p0 > 1 else 1 / L00
        self.on_pattern = False
        self.L10, rest = self.rest_blocks(cross, lam)
        schur = rest + np.eye(structure.q_rest) - _dense(self.L10 @ self.L10.T)
        with _threads_for(structure.q_rest):
            L11, info = lapack.dpotrf(schur, lower=1, clean=1) if structure.q_rest \
                else (schur, 0)
        if info:
            raise np.linalg.LinAlgError("Lambda'Z'WZ Lambda + I is not positive definite")
        self.L11 = L11
        self.log_det = 2 * (np.log(np.diagonal(L00, axis1=1, axis2=2)).sum()
                            + np.log(np.diag(L11)).sum())

    def rest_blocks(self, cross: CrossProducts, lam: RelativeCovariance):
        """``L10 = Lambda_r' A10 Lambda_0 L00^-T`` (sparse) and ``Lambda_r' A11 Lambda_r``."""
        s, T0 = self.structure, lam.T0
        if s.p0 == 1 and all(len(t) == 1 for t in lam.rest):  # Lambda is diagonal
            d = lam.Lambda_r.diagonal()
            A10 = cross.A10.tocsr()
            rows = np.repeat(np.arange(A10.shape[0]), np.diff(A10.indptr))
            values = A10.data * d[rows] * (T0[0, 0] / self.L00[A10.indices, 0, 0])
            self.on_pattern = True  # L10's entries are Z_r'WZ_0's, in its order
            return sp.csr_matrix((values, A10.indices, A10.indptr), shape=A10.shape), \
                cross.A11 * np.outer(d, d)
        A10 = lam.Lambda_r.T @ cross.A10 @ _block_diagonal(
            np.broadcast_to(T0, (s.m0, s.p0, s.p0)))
        L10 = (A10 @ _block_diagonal(np.swapaxes(self.L00_inv, 1, 2))).tocsr()
        rest = lam.rest_multiply(lam.rest_multiply(cross.A11, True).T, True) \
            if s.q_rest else np.zeros((0, 0))
        return L10, rest

    # -- triangular solves ---------------------------------------------------------------
    def solve_lower(self, r: np.ndarray) -> np.ndarray:
        """``L^-1 r`` for a vector or matrix ``r`` (q rows)."""
        s = self.structure
        shape = r.shape[1:]
        r0 = r[:s.q0].reshape((s.m0, s.p0, -1))
        x0 = (self.L00_inv @ r0).reshape((s.q0,) + shape)
        x1 = r[s.q0:] - self.L10 @ x0
        if s.q_rest:
            x1 = lapack.dtrtrs(self.L11, x1, lower=1)[0]
        return np.concatenate([x0, x1], axis=0)

    def solve_upper(self, c: np.ndarray) -> np.ndarray:
        """``L'^-1 c``."""
        s = self.structure
        shape = c.shape[1:]
        x1 = c[s.q0:]
        if s.q_rest:
            x1 = lapack.dtrtrs(self.L11, x1, lower=1, trans=1)[0]
        r0 = (c[:s.q0] - self.L10.T @ x1).reshape((s.m0, s.p0, -1))
        x0 = (np.swapaxes(self.L00_inv, 1, 2) @ r0).reshape((s.q0,) + shape)
        return np.concatenate([x0, x1], axis=0)

    # -- conditional covariances ---------------------------------------------------------
    def inverse_parts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``C = (L L')^-1`` as the first term's diagonal blocks (levels x p0 x p0), the
        rest x first block and the rest's dense block. The rest x first block is sparse
        for a scalar first term: its entries where ``Z_r'Z_0`` is non-zero, the only
        ones a row of the data touches (the leverages); dense otherwise."""
        s = self.structure
        first = np.swapaxes(self.L00_inv, 1, 2) @ self.L00_inv
        if not s.q_rest:
            return first, np.zeros((0, s.q0)), np.zeros((0, 0))
        Q = inverse_from_cholesky(self.L11)
        # (LL')^-1_00 = L00^-T L00^-1 + H'QH and (LL')^-1_10 = -QH, with H = L10 L00^-1
        p0 = s.p0
        if self.on_pattern:  # H is L10 with its columns scaled, on the pattern of Z_r'Z_0
            L10 = self.L10
            H_data = L10.data / self.L00[L10.indices, 0, 0]
            QH = s.product_on_pattern(Q, H_data)  # QH where H is non-zero, in its order
            extra = np.bincount(L10.indices, weights=H_data * QH, minlength=s.m0)
            C10 = sp.csr_matrix((-QH, L10.indices, L10.indptr), shape=L10.shape)
            return first + extra[:, None, None], C10, Q
        H = (self.L10 @ _block_diagonal(self.L00_inv)).tocsc()
        QH = (H.T @ Q).T  # dense q_rest x q0
        extra = np.empty((s.m0, p0, p0))
        for a in range(p0):
            for b in range(p0):
                extra[:, a, b] = np.asarray(H[:, a::p0].multiply(QH[:, b::p0]).sum(axis=0))[0]
        return first + extra, -QH, Q

    def inverse_level_blocks(self) -> list[np.ndarray]:
        """Per term, the ``levels x p x p`` diagonal blocks of ``(L L')^-1``."""
        first, _, Q = self.inverse_parts()
        return inverse_level_blocks(first, Q, self.structure)

    def conditional_covariances(self, blocks) -> list[np.ndarray]:
        """Per term, ``levels x p x p`` blocks of ``Lambda (L L')^-1 Lambda'`` (times
        sigma^2, lme4's ``condVar``)."""
        templates = [self.T0] + list(self.lam.rest)
        return [T @ C @ T.T for T, C in zip(templates, self.inverse_level_blocks())]


LARGE_DENSE = 400  # a dense block this large is factored with every BLAS thread


def _threads_for(size: int):
    """Every BLAS thread for a dense factorisation of ``size`` rows, if it is large."""
    return all_blas_threads() if size >= LARGE_DENSE else contextlib.nullcontext()


def _entries(matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``matrix[rows[k], cols[k]]`` for a dense or a sparse matrix."""
    if sp.issparse(matrix):
        return np.asarray(matrix[rows, cols]).ravel()
    return matrix[rows, cols]


def _dense(matrix) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else matrix


def inverse_from_cholesky(L: np.ndarray) -> np.ndarray:
    """``(L L')^-1`` from the lower Cholesky factor ``L`` (LAPACK's potri, a third of the
    work of inverting ``L`` and multiplying)."""
    with _threads_for(len(L)):
        inverse, info = lapack.dpotri(np.tril(L), lower=1)  # fills the lower triangle only
    if info:
        raise np.linalg.LinAlgError("the Cholesky factor is singular")
    full = inverse + inverse.T
    full[np.diag_indices(len(full))] /= 2
    return full


def lower_cholesky(blocks: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a stack of symmetric positive definite blocks."""
    if blocks.shape[-1] == 1:
        if np.any(blocks <= 0):
            raise np.linalg.LinAlgError("a diagonal block is not positive definite")
        return np.sqrt(blocks)
    return np.linalg.cholesky(blocks)


def inverse_level_blocks(first: np.ndarray, Q: np.ndarray, structure) -> list[np.ndarray]:
    """Per term, the ``levels x p x p`` diagonal blocks of ``(L L')^-1``, from the first
    term's blocks and the rest's dense block ``Q``."""
    out = [first]
    for k, (p, m) in enumerate(zip(structure.rest_sizes, structure.rest_levels)):
        index = structure.rest_starts[k] + np.arange(m * p).reshape(m, p)
        out.append(Q[index[:, :, None], index[:, None, :]])
    return out


def leverages(structure, lam, parts) -> np.ndarray:
    """``z_i' Lambda (L L')^-1 Lambda' z_i`` for every row ``i``, from
    :meth:`BlockedFactor.inverse_parts` (``parts``) and the relative covariance ``lam``."""
    first, C10, Q = parts
    s = structure
    zeta0 = s.raw0 @ lam.T0  # row i: z_i' T0, the first term's part of Lambda' z_i
    out = np.einsum("ia,iab,ib->i", zeta0, first[s.codes0], zeta0)
    rest = []  # each rest column of Lambda' z_i: its position and values
    for k, (codes, raw, T) in enumerate(zip(s.rest_codes, s.rest_raw, lam.rest)):
        zeta = raw @ T
        p = T.shape[0]
        rest += [(s.rest_starts[k] + codes * p + j, zeta[:, j]) for j in range(p)]
    first_index = s.codes0 * s.p0
    for a, (index, values) in enumerate(rest):
        for j in range(s.p0):
            out += 2 * values * zeta0[:, j] * _entries(C10, index, first_index + j)
        out += values * values * Q[index, index]
        for other, other_values in rest[a + 1:]:
            out += 2 * values * other_values * Q[index, other]
    return out
