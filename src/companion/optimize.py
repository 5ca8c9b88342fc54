"""Minimize a deviance over bounded parameters, and check the optimum as lme4 does."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import minimize

from companion.results import OptimizationRecord


class ConvergenceWarning(UserWarning):
    """The optimizer stopped where the deviance's scaled gradient is not yet zero."""


class SingularFitWarning(UserWarning):
    """A variance was estimated at zero (or a correlation at +-1): a boundary fit."""


def minimize_deviance(fun, start: np.ndarray, lower: np.ndarray) -> OptimizationRecord:
    """Quasi-Newton (L-BFGS-B) to get close, then the derivative-free trust-region method
    COBYQA (Powell's successor to lme4's BOBYQA) to settle tightly, within the bounds."""
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    evaluations = 0

    def counted(x):
        nonlocal evaluations
        evaluations += 1
        return fun(x)

    first = minimize(counted, start, method="L-BFGS-B", bounds=bounds,
                     options={"ftol": 1e-12, "gtol": 1e-8, "maxiter": 2000})
    final = minimize(counted, first.x, method="COBYQA", bounds=bounds,
                     options={"initial_tr_radius": 1e-3, "final_tr_radius": 1e-9,
                              "maxfev": 5000})
    best = final if final.fun <= first.fun else first
    x = np.maximum(best.x, lower)
    gradient = _gradient(fun, x, lower)
    converged = bool(final.success or first.success) and np.isfinite(best.fun)
    return OptimizationRecord("L-BFGS-B + COBYQA", np.asarray(start, float), x, evaluations,
                              converged, gradient, str(final.message))


def _gradient(fun, x: np.ndarray, lower: np.ndarray, step: float = 1e-5) -> np.ndarray:
    """Central differences (one-sided at a bound)."""
    grad = np.zeros_like(x)
    for i in range(len(x)):
        h = step * max(1.0, abs(x[i]))
        up, down = x.copy(), x.copy()
        up[i] += h
        if x[i] - h >= lower[i]:
            down[i] -= h
            grad[i] = (fun(up) - fun(down)) / (2 * h)
        else:
            grad[i] = (fun(up) - fun(x)) / h
    return grad


def check_optimum(fun, record: OptimizationRecord, lower: np.ndarray,
                  tol: float = 2e-3) -> None:
    """lme4's checks: a boundary (singular) fit, and the gradient scaled by the Hessian."""
    x = record.final
    at_bound = np.isfinite(lower) & (x - lower < 1e-4)
    if at_bound.any():
        warnings.warn("boundary (singular) fit: a variance is estimated at zero or a "
                      "correlation at +-1 (lme4: see help('isSingular'))",
                      SingularFitWarning, stacklevel=3)
    free = ~at_bound
    if not free.any():
        return
    hessian = _hessian(fun, x, lower)[np.ix_(free, free)]
    try:
        scaled = np.linalg.solve(hessian, record.gradient[free])
    except np.linalg.LinAlgError:
        scaled = record.gradient[free]
    worst = float(np.max(np.abs(scaled)))
    if not record.converged or worst > tol:
        warnings.warn(f"Model failed to converge with max|grad| = {worst:.3g} (tol = {tol}); "
                      f"the optimizer said: {record.message}", ConvergenceWarning,
                      stacklevel=3)


def _hessian(fun, x: np.ndarray, lower: np.ndarray, step: float = 1e-4) -> np.ndarray:
    n = len(x)
    h = step * np.maximum(1.0, np.abs(x))
    hessian = np.zeros((n, n))
    base = _gradient(fun, x, lower)
    for i in range(n):
        up = x.copy()
        up[i] += h[i]
        hessian[:, i] = (_gradient(fun, up, lower) - base) / h[i]
    return (hessian + hessian.T) / 2
