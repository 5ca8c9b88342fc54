"""Satterthwaite's denominator degrees of freedom for an LMM's fixed effects, as lmerTest
computes them (``summary(fit)`` and ``coef(summary(fit, ddf = "Satterthwaite"))``).

For a contrast ``l'beta`` with variance ``v = l' C l`` (``C = vcov(beta)``), the degrees of
freedom are ``2 v^2 / (g' A g)``: ``g`` is the gradient of ``v`` in the variance parameters
``(theta, sigma)`` and ``A`` their asymptotic covariance, twice the inverse of the Hessian
of the deviance (ML, or the REML criterion) in those parameters, with ``beta`` profiled
out and ``sigma`` not. As in lmerTest, only the Hessian's positive eigenvalues enter the
inverse (a boundary fit has a null direction). Both derivatives are taken by central
differences of exact evaluations (the Hessian with Richardson's extrapolation, as
lmerTest's ``numDeriv`` does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg as la
from scipy import stats

_LOG_2PI = np.log(2 * np.pi)
HESSIAN_STEP = 0.1  # relative, the largest of the Richardson steps (numDeriv's d)
HESSIAN_LEVELS = 4  # steps halved three times (numDeriv's r)
ZERO_TOL, ZERO_STEP = 1.8e-5, 1e-4  # a parameter this near 0 gets this absolute step
JACOBIAN_STEP = 1e-5  # relative, central differences of vcov(beta)
EIGEN_TOL = 1e-8  # Hessian eigenvalues at or below this are left out, as lmerTest does


def variance_deviance(deviance, varpar: np.ndarray) -> float:
    """The deviance at ``varpar = (theta, sigma)`` with ``beta`` at its estimate given
    ``theta``: ``log|L|^2 + pwrss / sigma^2 + n log(2 pi sigma^2)``, plus
    ``log|RX|^2 - p log(2 pi sigma^2)`` for REML (lmerTest's ``devfun_vp``)."""
    theta, sigma2 = varpar[:-1], varpar[-1] ** 2
    solution = deviance.solve(theta)
    n, p = deviance.n, deviance.p
    value = solution.ldL2 + solution.pwrss / sigma2 + n * (_LOG_2PI + np.log(sigma2))
    if deviance.reml:
        value += solution.ldRX2 - p * (_LOG_2PI + np.log(sigma2))
    return float(value)


def fixed_effects_vcov(deviance, varpar: np.ndarray) -> np.ndarray:
    """``vcov(beta) = sigma^2 (RX'RX)^-1`` at ``varpar = (theta, sigma)``."""
    solution = deviance.solve(varpar[:-1])
    inverse = la.solve_triangular(solution.RX, np.eye(deviance.p))
    return varpar[-1] ** 2 * inverse @ inverse.T


def variance_parameter_covariance(deviance, varpar: np.ndarray) -> np.ndarray:
    """``A = 2 H^+``, ``H`` the Hessian of :func:`variance_deviance` at ``varpar`` (its
    positive eigenvalues only)."""
    H = deviance_hessian(deviance, varpar)
    values, vectors = np.linalg.eigh(H)
    keep = values > EIGEN_TOL
    return 2 * (vectors[:, keep] / values[keep]) @ vectors[:, keep].T


def deviance_hessian(deviance, varpar: np.ndarray) -> np.ndarray:
    """The Hessian of :func:`variance_deviance` as numDeriv's ``hessian`` takes it: central
    second differences at steps ``0.1 |x|`` halved three times, then Richardson's
    extrapolation over the four (error of order ``step^8``). Steps scale with each
    parameter: a slope's theta near 0.1 is curved on a scale of its own size, where one
    fixed step left errors near 1e-4 in the df."""
    steps = np.where(np.abs(varpar) > ZERO_TOL, HESSIAN_STEP * np.abs(varpar), ZERO_STEP)
    table = [_second_differences(deviance, varpar, steps / 2 ** level)
             for level in range(HESSIAN_LEVELS)]
    for order in range(1, HESSIAN_LEVELS):
        factor = 4.0 ** order
        table = [(factor * finer - coarser) / (factor - 1)
                 for coarser, finer in zip(table, table[1:])]
    return table[0]


def _second_differences(deviance, varpar: np.ndarray, steps: np.ndarray) -> np.ndarray:
    k = len(varpar)

    def at(*moves):
        point = np.array(varpar, dtype=float)
        for index, sign in moves:
            point[index] += sign * steps[index]
        return variance_deviance(deviance, point)

    center = at()
    H = np.empty((k, k))
    for i in range(k):
        H[i, i] = (at((i, 1)) - 2 * center + at((i, -1))) / steps[i] ** 2
        for j in range(i):
            H[i, j] = H[j, i] = (at((i, 1), (j, 1)) - at((i, 1), (j, -1))
                                 - at((i, -1), (j, 1)) + at((i, -1), (j, -1))) / (
                4 * steps[i] * steps[j])
    return H


def vcov_jacobian(deviance, varpar: np.ndarray) -> np.ndarray:
    """``d vcov(beta) / d varpar_k`` for every ``k``: ``k x p x p``."""
    out = []
    for k in range(len(varpar)):
        h = JACOBIAN_STEP * max(1.0, abs(varpar[k]))
        up, down = np.array(varpar, dtype=float), np.array(varpar, dtype=float)
        up[k] += h
        down[k] -= h
        out.append((fixed_effects_vcov(deviance, up) - fixed_effects_vcov(deviance, down))
                   / (2 * h))
    return np.array(out)


@dataclass
class Satterthwaite:
    """What Satterthwaite's df of any contrast are built from, at a fit's estimates:
    ``vcov`` of beta, its ``jacobian`` in the variance parameters and their asymptotic
    ``covariance``."""

    vcov: np.ndarray
    jacobian: np.ndarray
    covariance: np.ndarray

    def ddf(self, L: np.ndarray) -> float:
        """The df of the contrast ``L beta`` (one row): ``2 v^2 / (g' A g)``."""
        L = np.ravel(L)
        gradient = np.einsum("j,kjl,l->k", L, self.jacobian, L)
        return float(2 * (L @ self.vcov @ L) ** 2 / (gradient @ self.covariance @ gradient))


def satterthwaite(fit) -> Satterthwaite:
    """The pieces of Satterthwaite's approximation for an lmer fit."""
    deviance = fit.devfun
    varpar = np.append(fit.theta.to_numpy(), fit.sigma)
    return Satterthwaite(fixed_effects_vcov(deviance, varpar),
                         vcov_jacobian(deviance, varpar),
                         variance_parameter_covariance(deviance, varpar))


def satterthwaite_table(fit) -> pd.DataFrame:
    """R's ``coef(summary(fit, ddf = "Satterthwaite"))``: estimate, SE, df, t and the
    two-sided p-value of each fixed effect."""
    parts = satterthwaite(fit)
    p = len(fit.fixef)
    df = np.array([parts.ddf(np.eye(p)[j]) for j in range(p)])
    return t_table(fit.fixef, np.sqrt(np.diag(parts.vcov)), df)


def t_table(estimate: pd.Series, se: np.ndarray, df: np.ndarray) -> pd.DataFrame:
    """lmerTest's coefficient table: estimate, SE, df, t and the two-sided p-value."""
    t = estimate.to_numpy() / se
    return pd.DataFrame({"Estimate": estimate.to_numpy(), "Std. Error": se, "df": df,
                         "t value": t, "Pr(>|t|)": 2 * stats.t.sf(np.abs(t), df)},
                        index=estimate.index)
