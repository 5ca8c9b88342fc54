"""Minimize a deviance over bounded parameters, and check the optimum as lme4 does."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import OptimizeResult, minimize

ROUNDING = 1e-12  # relative: a deviance's last reliable digits after its many sums


@dataclass
class OptimizationRecord:
    """How the optimizer went: start, end, evaluations, convergence and its checks."""

    optimizer: str
    start: np.ndarray
    final: np.ndarray
    evaluations: int
    converged: bool
    gradient: np.ndarray
    message: str = ""
    # the optimizer's own approximation of the inverse Hessian, as a function of a vector
    inverse_hessian: object = field(default=None, repr=False, compare=False)


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
    scale = max(1.0, abs(objective(start)[0]))
    if not np.isfinite(scale):
        raise ValueError("the criterion is not finite at the starting values")
    tracked = _StallGuard(objective, lower, rtol * scale, 1e2 * rtol * scale)
    options = {"ftol": 1e-15, "gtol": rtol * scale, "maxiter": 1000}

    def run(x0):
        try:
            return minimize(tracked, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                            options=options)
        except _Stalled as stop:
            return OptimizeResult(x=tracked.best_x, fun=tracked.best, success=True,
                                  message=str(stop))

    found = run(start)
    for _ in range(3):  # leave a boundary that is a saddle, not a minimum
        inside = _better_inside(objective, found.x, found.fun, lower)
        if inside is None:
            break
        found = run(inside)
    x = np.maximum(found.x, lower)
    value, gradient = objective(x)
    # At the last digits the line search can stall ("ABNORMAL"): that is convergence
    # when the projected gradient is already negligible (check_optimum looks again with
    # the Hessian).
    stalled = "ABNORMAL" in str(found.message) and \
        _projected_size(x, gradient, lower) < 1e2 * rtol * scale
    converged = bool(found.success or stalled) and np.isfinite(value)
    approximation = found.get("hess_inv")
    return OptimizationRecord("L-BFGS-B", np.asarray(start, float), x, tracked.evaluations,
                              converged, np.asarray(gradient, float), str(found.message),
                              None if approximation is None else approximation.dot)


class _Stalled(Exception):
    """The optimizer has nothing left to do: the message says why."""


class _StallGuard:
    """Counts evaluations and, inside a line search that has already failed to improve,
    stops the optimizer at the first point at least as good as the best so far (up to
    rounding) whose projected gradient meets ``gtol`` (L-BFGS-B tests only the points its
    line search accepts, and at the last digits it rejects good ones on rounding noise in
    the value), or when,
    with the gradient at the best point already below ``tolerance``, four evaluations in a
    row fail to improve on it: the line search is probing differences below the
    criterion's rounding, where L-BFGS-B would spend another twenty evaluations."""

    def __init__(self, objective, lower, gtol: float, tolerance: float):
        self.objective, self.lower = objective, lower
        self.gtol, self.tolerance = gtol, tolerance
        self.evaluations, self.repeats = 0, 0
        self.best, self.best_x, self.best_gradient = np.inf, None, None

    def __call__(self, x):
        self.evaluations += 1
        value, gradient = self.objective(x)
        rounding = 1e-13 * abs(self.best) if self.best < np.inf else 0.0
        if self.repeats and value <= self.best + rounding and \
                _projected_size(x, gradient, self.lower, self.gtol) <= self.gtol:
            self.best, self.best_x = value, np.array(x, float)
            raise _Stalled("converged: projected gradient <= gtol")
        if value < self.best:
            self.best, self.best_x, self.best_gradient = value, np.array(x, float), gradient
            self.repeats = 0
        else:
            self.repeats += 1
            if self.repeats >= 4 and _projected_size(self.best_x, self.best_gradient,
                                                     self.lower) < self.tolerance:
                raise _Stalled("converged: no progress left at the last digits")
        return value, gradient


def _projected_size(x, gradient, lower, enough: float = -1.0) -> float:
    """The largest component of the gradient projected on the bounds (the plain largest
    component when that is already at most ``enough``: projection only shrinks it)."""
    largest = float(np.max(np.abs(gradient), initial=0))
    if largest <= enough:
        return largest
    projected = np.where((np.asarray(x) <= lower) & (gradient > 0), 0.0, gradient)
    return float(np.max(np.abs(projected), initial=0))


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
    if hessian is None and record.converged and not at_bound.any() and \
            record.inverse_hessian is not None:
        # the quasi-Newton approximation's Newton step: when it is a hundredth of the
        # tolerance, no error of that approximation turns it into a failure
        step = np.asarray(record.inverse_hessian(record.gradient), dtype=float)
        if np.max(np.abs(step), initial=0) < tol / 100:
            return
    if hessian is None:
        hessian = _hessian(objective, x, record.gradient)
    hessian = hessian[np.ix_(free, free)]
    try:
        scaled = np.linalg.solve(hessian, record.gradient[free])
    except np.linalg.LinAlgError:
        scaled = record.gradient[free]
    worst = float(np.max(np.abs(scaled)))
    # a line search that stalled ("ABNORMAL") where a Newton step would gain less than
    # the criterion's rounding has converged as far as the arithmetic allows
    decrease = abs(float(record.gradient[free] @ scaled)) / 2
    precision_limited = "ABNORMAL" in record.message and \
        decrease <= ROUNDING * max(1.0, abs(objective(x)[0]))
    if not (record.converged or precision_limited) or worst > tol:
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
