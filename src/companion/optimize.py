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


def minimize_deviance(objective, start: np.ndarray, lower: np.ndarray,
                      rtol: float = 1e-9) -> OptimizationRecord:
    """Minimize within lower bounds by quasi-Newton (L-BFGS-B) on exact gradients.

    ``objective(x)`` returns the value and its gradient (wrap a plain function with
    :func:`with_numerical_gradient`). The projected gradient is driven below ``rtol``
    times the starting value (a deviance's gradient scales with it), much tighter than
    lme4's stopping rule, so the optimum is the one R reaches with tight settings.
    """
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    evaluations = 0

    def counted(x):
        nonlocal evaluations
        evaluations += 1
        return objective(x)

    scale = max(1.0, abs(objective(start)[0]))
    if not np.isfinite(scale):
        raise ValueError("the criterion is not finite at the starting values")
    options = {"ftol": 1e-15, "gtol": rtol * scale, "maxiter": 1000}
    found = minimize(counted, start, jac=True, method="L-BFGS-B", bounds=bounds,
                     options=options)
    for _ in range(3):  # leave a boundary that is a saddle, not a minimum
        inside = _better_inside(counted, found.x, found.fun, lower)
        if inside is None:
            break
        found = minimize(counted, inside, jac=True, method="L-BFGS-B", bounds=bounds,
                         options=options)
    x = np.maximum(found.x, lower)
    value, gradient = objective(x)
    # At the last digits the line search can stall ("ABNORMAL"): that is convergence
    # when the projected gradient is already negligible.
    projected = np.where((x <= lower) & (gradient > 0), 0.0, gradient)
    stalled = "ABNORMAL" in str(found.message) and np.max(np.abs(projected), initial=0) < 1e2 * rtol * scale
    converged = bool(found.success or stalled) and np.isfinite(value)
    return OptimizationRecord("L-BFGS-B", np.asarray(start, float), x, evaluations,
                              converged, np.asarray(gradient, float), str(found.message))


def _better_inside(objective, x, value, lower):
    """A standard deviation's gradient vanishes at zero (the deviance depends on its
    square), so a quasi-Newton step that lands on the bound stops there even when the
    bound is a maximum along that direction. Probe inwards; return a better point."""
    at_bound = np.flatnonzero(np.isfinite(lower) & (x - lower <= 1e-10))
    for i in at_bound:
        for step in (1e-3, 1e-2, 1e-1, 0.5):
            trial = x.copy()
            trial[i] = lower[i] + step
            if objective(trial)[0] < value - 1e-10 * (1 + abs(value)):
                return trial
    return None


def with_numerical_gradient(fun, lower: np.ndarray, step: float = 1e-6):
    """``x -> (fun(x), gradient)`` by central differences (one-sided at a bound), for
    criteria without an exact gradient."""
    def objective(x):
        x = np.asarray(x, dtype=float)
        value, grad = fun(x), np.zeros_like(x)
        for i in range(len(x)):
            h = step * max(1.0, abs(x[i]))
            up, down = x.copy(), x.copy()
            up[i] += h
            if x[i] - h >= lower[i]:
                down[i] -= h
                grad[i] = (fun(up) - fun(down)) / (2 * h)
            else:
                grad[i] = (fun(up) - value) / h
        return value, grad

    return objective


def check_optimum(objective, record: OptimizationRecord, lower: np.ndarray,
                  tol: float = 2e-3, hessian: np.ndarray | None = None) -> None:
    """lme4's checks: a boundary (singular) fit, and the gradient scaled by the Hessian
    (the Newton step still to go), with ``objective`` as for :func:`minimize_deviance`;
    pass the ``hessian`` when it is already known."""
    x = record.final
    at_bound = np.isfinite(lower) & (x - lower < 1e-4)
    if at_bound.any():
        warnings.warn("boundary (singular) fit: a variance is estimated at zero or a "
                      "correlation at +-1 (lme4: see help('isSingular'))",
                      SingularFitWarning, stacklevel=3)
    free = ~at_bound
    if not free.any():
        return
    if hessian is None:
        hessian = _hessian(objective, x, record.gradient)
    hessian = hessian[np.ix_(free, free)]
    try:
        scaled = np.linalg.solve(hessian, record.gradient[free])
    except np.linalg.LinAlgError:
        scaled = record.gradient[free]
    worst = float(np.max(np.abs(scaled)))
    if not record.converged or worst > tol:
        warnings.warn(f"Model failed to converge with max|grad| = {worst:.3g} (tol = {tol}); "
                      f"the optimizer said: {record.message}", ConvergenceWarning,
                      stacklevel=3)


def _hessian(objective, x: np.ndarray, gradient: np.ndarray, step: float = 1e-5) -> np.ndarray:
    """Forward differences of the gradient, symmetrized."""
    n = len(x)
    h = step * np.maximum(1.0, np.abs(x))
    hessian = np.zeros((n, n))
    for i in range(n):
        up = x.copy()
        up[i] += h[i]
        hessian[:, i] = (objective(up)[1] - gradient) / h[i]
    return (hessian + hessian.T) / 2


def value_hessian(fun, x: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """The Hessian of a plain function by central second differences (error ~ step^2)."""
    n = len(x)
    steps = step * np.maximum(1.0, np.abs(x))
    eye = np.diag(steps)
    center = fun(x)
    out = np.zeros((n, n))
    for i in range(n):
        out[i, i] = (fun(x + eye[i]) - 2 * center + fun(x - eye[i])) / steps[i] ** 2
        for j in range(i):
            out[i, j] = out[j, i] = (fun(x + eye[i] + eye[j]) - fun(x + eye[i] - eye[j])
                                     - fun(x - eye[i] + eye[j]) + fun(x - eye[i] - eye[j])
                                     ) / (4 * steps[i] * steps[j])
    return out
