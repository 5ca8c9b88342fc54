"""Kenward and Roger's small-sample adjustment for an LMM's fixed effects, as pbkrtest 0.5
computes it (``vcovAdj``, ``Lb_ddf``, ``KRmodcomp``) and lmerTest reports it
(``summary(fit, ddf = "Kenward-Roger")``, ``anova(fit, ddf = "Kenward-Roger")``).

The marginal covariance is linear in its parameters: ``Sigma = sum_i gamma_i G_i``, one
``G_i = Z_r (I kron E_ab) Z_r'`` per variance or covariance of each random term ``r`` and
``W^-1`` for the residual variance (``W`` the prior weights; pbkrtest uses the identity
there, the same when there are no weights). pbkrtest forms these ``n x n`` matrices; here
every quantity goes through ``q x q`` ones instead (``q`` random effects, ``n`` no longer
matters): with ``M = Lambda (Lambda'Z'WZ Lambda + I)^-1 Lambda'``,
``Sigma^-1 = sigma^-2 W (I - P)`` where ``P = Z M Z' W``, and the products
``Z' Sigma^-1 Z``, ``Z' Sigma^-1 W^-1 Sigma^-1 Z`` ... are polynomials in ``M`` and
``T = Z'WZ``. The method needs a REML fit, as in pbkrtest and lmerTest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg as la
import scipy.sparse as sp

from companion.inference.satterthwaite import t_table

SINGULAR_INFORMATION = 1e-10  # pbkrtest's switch to a pseudo-inverse of the information


@dataclass
class KenwardRogerAdjustment:
    """``vcov``: the unadjusted covariance of beta (``Phi``); ``adjusted``: pbkrtest's
    ``vcovAdj``; ``P`` and ``W``: the pieces the degrees of freedom are built from."""

    vcov: np.ndarray
    adjusted: np.ndarray
    P: list[np.ndarray]
    W: np.ndarray

    def ddf(self, L: np.ndarray) -> tuple[float, float]:
        """pbkrtest's denominator df and F scaling for the hypothesis ``L beta = 0``
        (``L``: one row per hypothesis, of full row rank)."""
        L = np.atleast_2d(L)
        q = np.linalg.matrix_rank(L)
        Phi = self.vcov
        Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
        u = [Theta @ Phi @ P @ Phi for P in self.P]
        traces = np.array([np.trace(ui) for ui in u])
        A1 = float(traces @ self.W @ traces)
        products = np.array([[np.sum(ui * uj.T) for uj in u] for ui in u])
        A2 = float(np.sum(self.W * products))
        B = (A1 + 6 * A2) / (2 * q)
        g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
        denominator = 3 * q + 2 * (1 - g)
        c1, c2, c3 = g / denominator, (q - g) / denominator, (q + 2 - g) / denominator
        V0 = 1 + c1 * B
        V0 = 0.0 if abs(V0) < 1e-10 else V0
        V1, V2 = 1 - c2 * B, 1 - c3 * B
        ratio = 0.0 if V1 == 0 else (1 - A2 / q) / V1
        rho = ratio**2 * V0 / (q * V2)
        df2 = 4 + (q + 2) / (q * rho - 1)
        scaling = 1.0 if abs(df2 - 2) < 0.01 else df2 * (1 - A2 / q) / (df2 - 2)
        return float(df2), float(scaling)


def kenward_roger(fit) -> KenwardRogerAdjustment:
    """The adjustment at the REML estimates of an lmer fit."""
    deviance = fit.devfun
    if not deviance.reml:
        raise ValueError("Kenward-Roger's method needs a REML fit (as in pbkrtest and "
                         "lmerTest); refit with reml=True, or use ddf='Satterthwaite'")
    design = deviance.design
    sigma2 = fit.sigma**2
    Z = random_effects_matrix(design.blocks, design.n)
    w = design.weights
    WZ = Z.multiply(w[:, None]).tocsc()
    T = (Z.T @ WZ).toarray()
    U = np.asarray(WZ.T @ design.X)
    Xw = design.X.T @ (w[:, None] * design.X)
    Lam = deviance.layout.lambda_matrix(fit.theta.to_numpy())
    C = la.cho_factor(Lam.T @ T @ Lam + np.eye(len(T)), lower=True)
    M = Lam @ la.cho_solve(C, Lam.T)

    N = M @ T  # the ``q x q`` image of P
    MU, NMU = M @ U, N @ (M @ U)
    TMT, TNMT = T @ N, T @ N @ N
    # Z'S Z, Z'S X, Z'S W^-1 S Z, Z'S W^-1 S X (S = Sigma^-1) and the X-side products
    A = (T - TMT) / sigma2
    Bm = (U - T @ MU) / sigma2
    A2 = (T - 2 * TMT + TNMT) / sigma2**2
    B2 = (U - 2 * T @ MU + T @ NMU) / sigma2**2
    Phi = np.linalg.inv((Xw - U.T @ MU) / sigma2)
    K2 = (Xw - 2 * U.T @ MU + U.T @ NMU) / sigma2**2
    K3 = (Xw - 3 * U.T @ MU + 3 * U.T @ NMU - U.T @ (N @ NMU)) / sigma2**3
    trace_residual = (design.n - 2 * np.trace(N) + np.sum(N * N.T)) / sigma2**2

    D = covariance_derivatives(design.blocks)
    DA = [Di @ A for Di in D]
    DB = [Di @ Bm for Di in D]
    k = len(D) + 1
    K = np.empty((k, k))
    P: list[np.ndarray] = []
    Q: dict[tuple[int, int], np.ndarray] = {}
    for i in range(len(D)):
        P.append(-(Bm.T @ DB[i]))
        for j in range(i, len(D)):
            K[i, j] = K[j, i] = np.sum(DA[i] * DA[j].T)
            Q[i, j] = DB[i].T @ A @ DB[j]
        K[i, -1] = K[-1, i] = np.sum(D[i].multiply(A2.T))
        Q[i, k - 1] = DB[i].T @ B2
    P.append(-K2)
    K[-1, -1] = trace_residual
    Q[k - 1, k - 1] = K3

    information = np.empty((k, k))
    for i in range(k):
        PhiPi = Phi @ P[i]
        for j in range(i, k):
            information[i, j] = information[j, i] = (
                K[i, j] - 2 * np.sum(Phi * Q[i, j]) + np.sum(PhiPi * (P[j] @ Phi)))
    smallest = np.min(np.abs(np.linalg.eigvalsh(information)))
    W = 2 * (np.linalg.inv(information) if smallest > SINGULAR_INFORMATION
             else np.linalg.pinv(information))
    W = (W + W.T) / 2
    Uc = np.zeros_like(Phi)
    for i in range(k):
        for j in range(i + 1, k):
            Uc += W[i, j] * (Q[i, j] - P[i] @ Phi @ P[j])
    Uc = Uc + Uc.T
    for i in range(k):
        Uc += W[i, i] * (Q[i, i] - P[i] @ Phi @ P[i])
    adjusted = Phi + 2 * Phi @ Uc @ Phi
    return KenwardRogerAdjustment(Phi, adjusted, P, W)


def random_effects_matrix(blocks, n: int) -> sp.csr_matrix:
    """``Z``, ``n x q`` and sparse: each term's columns level-major, as lme4's."""
    parts = []
    rows = np.arange(n)
    for block in blocks:
        p = block.n_columns
        cols = (block.codes[:, None] * p + np.arange(p)).ravel()
        parts.append(sp.csr_matrix((block.raw.ravel(), (np.repeat(rows, p), cols)),
                                   shape=(n, block.size)))
    return sp.hstack(parts, format="csr")


def covariance_derivatives(blocks) -> list[sp.csr_matrix]:
    """``I kron E_ab`` in the ``q x q`` space, one per element ``(a, b)``, ``a >= b``, of
    each term's covariance matrix (pbkrtest's order: term by term, lower triangle by
    column)."""
    q = sum(block.size for block in blocks)
    out, offset = [], 0
    for block in blocks:
        p, levels = block.n_columns, block.n_levels
        starts = offset + p * np.arange(levels)
        for b in range(p):
            for a in range(b, p):
                rows = np.concatenate([starts + a, starts + b]) if a != b else starts + a
                cols = np.concatenate([starts + b, starts + a]) if a != b else starts + a
                out.append(sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(q, q)))
        offset += block.size
    return out


def kenward_roger_table(fit) -> pd.DataFrame:
    """lmerTest's ``coef(summary(fit, ddf = "Kenward-Roger"))``: the adjusted SEs, the
    df of each coefficient and its t test."""
    adjustment = kenward_roger(fit)
    p = len(fit.fixef)
    df = np.array([adjustment.ddf(np.eye(p)[[j]])[0] for j in range(p)])
    return t_table(fit.fixef, np.sqrt(np.diag(adjustment.adjusted)), df)
