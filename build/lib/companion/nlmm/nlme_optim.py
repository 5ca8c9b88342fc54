"""The two minimizers behind the nlme fit, for a handful of covariance parameters.

* :func:`newton` finds the optimum exactly (it stands in for the ``nlminb`` of nlme's LME
  step, which converges tightly).
* :func:`nlm` repeats what nlme's PNLS step does after its EM steps: R's ``nlm``
  minimizer (Dennis and Schnabel's line search with BFGS updates of a Cholesky factor,
  identity start, at most 20 iterations, gradient tolerance ``eps^(1/3)``) and, as nlme's
  C code, keeps the iterate *before* the one that met the stopping rule. That is usually
  the starting point: what EM found. Its results carry into nlme's estimates, so they are
  reproduced rather than improved on.

Both take ``fun(x) -> (value, gradient)`` with the exact gradient.
"""

from __future__ import annotations

import numpy as np

_EPS = np.finfo(float).eps
MAX_STEP = 2.0  # longest Newton step, a factor e^2 in a standard deviation


def newton(fun, x: np.ndarray, tol: float = 1e-9, max_iter: int = 100) -> np.ndarray:
    """Newton steps (Hessian from differences of the gradient), at most ``MAX_STEP``
    long, halved until the value goes down; until the step is below ``tol``."""
    value, grad = fun(x)
    if not np.isfinite(value):
        raise np.linalg.LinAlgError("the criterion is not finite at the starting values")
    for _ in range(max_iter):
        h = 1e-6 * np.maximum(1.0, np.abs(x))
        hessian = np.column_stack([(fun(x + h[j] * e)[1] - grad) / h[j]
                                   for j, e in enumerate(np.eye(len(x)))])
        hessian = (hessian + hessian.T) / 2
        low = np.linalg.eigvalsh(hessian).min()
        if low <= 1e-8:  # not convex here: shift towards steepest descent
            hessian += (1e-3 - low) * np.eye(len(x))
        step = np.linalg.solve(hessian, grad)
        step *= min(1.0, MAX_STEP / np.abs(step).max())
        if np.abs(step).max() < tol:
            return x - step
        for _ in range(40):
            trial, trial_grad = fun(x - step)
            if trial <= value:
                break
            step = step / 2
        else:
            return x  # nothing lower along the step: at the optimum to rounding
        x, value, grad = x - step, trial, trial_grad
    return x


def nlm(fun, x: np.ndarray, gradtol: float = _EPS ** (1 / 3), steptol: float = _EPS ** 0.5,
        max_iter: int = 20) -> np.ndarray:
    """R's ``nlm`` as nlme's PNLS step calls it; returns the iterate nlme keeps."""
    value, grad = fun(x)
    if _relative_gradient(x, value, grad) <= gradtol:
        return x
    factor = np.eye(len(x))  # Cholesky factor of the Hessian approximation
    max_step = 1000 * max(np.sqrt(x @ x), 1.0)
    for iteration in range(1, max_iter + 1):
        step = -np.linalg.solve(factor.T, np.linalg.solve(factor, grad))
        found = _line_search(fun, x, value, grad, step, max_step, steptol)
        if found is None:
            return x
        new_x, new_value = found
        new_grad = fun(new_x)[1]
        relative_step = np.max(np.abs(new_x - x) / np.maximum(np.abs(new_x), 1.0))
        if (_relative_gradient(new_x, new_value, new_grad) <= gradtol
                or relative_step <= steptol or iteration == max_iter):
            return x
        factor = _bfgs_factor(factor, new_x - x, new_grad - grad, grad, new_grad,
                              first=iteration == 1)
        x, value, grad = new_x, new_value, new_grad
    return x


def _relative_gradient(x, value, grad) -> float:
    return float(np.max(np.abs(grad) * np.maximum(np.abs(x), 1.0)) / max(abs(value), 1.0))


def _line_search(fun, x, value, grad, step, max_step, steptol):
    """Backtracking from the full step (quadratic, then cubic interpolation) until the
    value drops by 1e-4 of the slope; ``None`` when the step became negligible."""
    length = np.sqrt(step @ step)
    if length > max_step:
        step = step * (max_step / length)
    slope = grad @ step
    smallest = steptol / np.max(np.abs(step) / np.maximum(np.abs(x), 1.0))
    lam, previous = 1.0, None
    while True:
        trial = x + lam * step
        trial_value = fun(trial)[0]
        if trial_value <= value + 1e-4 * lam * slope:
            return trial, trial_value
        if lam < smallest:
            return None
        if not np.isfinite(trial_value):
            lam, previous = lam / 10, None
            continue
        if previous is None:  # quadratic fit
            new_lam = -lam * slope / (2 * (trial_value - value - slope))
        else:  # cubic fit through the last two trials
            new_lam = _cubic_minimum(lam, trial_value, *previous, value, slope)
        previous = (lam, trial_value)
        lam = max(new_lam, lam / 10)


def _cubic_minimum(lam, f_lam, lam0, f_lam0, value, slope) -> float:
    t1 = f_lam - value - lam * slope
    t2 = f_lam0 - value - lam0 * slope
    a = 3 * (t1 / lam**2 - t2 / lam0**2) / (lam - lam0)
    b = (t2 * lam / lam0**2 - t1 * lam0 / lam**2) / (lam - lam0)
    disc = b * b - a * slope
    root = np.sqrt(disc) * (-1 if a < 0 else 1) * (1 if disc > b * b else -1)
    return min((-b + root) / a, lam / 2)


def _bfgs_factor(factor, s, y, grad, new_grad, first: bool):
    """The BFGS update of ``L`` in ``H = L L'``; skipped where the curvature is not
    positive or the update would change nothing measurable. The first update rescales
    the identity start by ``s'y / s'Hs``."""
    sy = s @ y
    if sy < np.sqrt(_EPS) * np.linalg.norm(s) * np.linalg.norm(y):
        return factor
    u = factor.T @ s
    scale = np.sqrt(sy / (u @ u))
    if first:
        u, factor, scale = scale * u, scale * factor, 1.0
    w = factor @ u
    if np.all(np.abs(y - w) < np.sqrt(1e-15) * np.maximum(np.abs(grad), np.abs(new_grad))):
        return factor
    w = y - scale * w
    u = u * (scale / sy)
    M = factor.T + np.outer(u, w)  # noqa: N806 - the updated factor is M's R
    return np.linalg.cholesky(M.T @ M)
