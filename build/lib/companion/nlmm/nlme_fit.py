"""Lindstrom and Bates' alternating algorithm for a nonlinear mixed model, run as
``nlme::nlme`` runs it, so that its estimates are nlme's.

The model: ``y = f(x, phi) + e`` with ``phi = beta + b_i`` per row (every parameter has a
fixed effect, some also a random effect for the row's group ``i``), ``b_i ~ N(0,
sigma^2 A)``, ``e ~ N(0, sigma^2 I)``. Linearized at ``(beta, b)``, with ``X = df/dbeta``,
``Z = df/db`` and the working response ``w = y - f + X beta + Z b``, it is the linear
mixed model ``w = X beta' + Z b' + e`` (:mod:`companion.nlmm.nlme_lmm`). Each iteration has two
steps:

1. LME: the linear model's ML (or REML) estimate of ``A``.
2. PNLS: Gauss-Newton steps on the penalized sum of squares
   ``|y - f|^2 + sum_i b_i' A^-1 b_i``. Before each step nlme's C code re-estimates ``A``
   by ML at that step's linearization (20 EM steps, then R's ``nlm``, whatever the
   method); the new point is the linear model's solution, the step halved until the sum
   goes down. It stops once a step would gain little:
   ``sqrt(nrdof (obj - pred) / (npar pred)) < pnls_tol``, ``pred`` being the sum the
   linear model predicts, ``npar`` the number of fixed and random effects and
   ``nrdof = n - npar``.

Converged when neither ``beta`` nor nlme's parameters of ``A`` changed by more than
``tolerance`` (relative) over an iteration. (nlme also stops when ``beta`` alone has
converged and its ``nlminb`` took a single iteration in the LME step; that rule depends on
nlminb's path and is left out.) Reported, as nlme does: ``beta`` and ``b``
from the last PNLS step; ``A`` from its last re-estimate; ``sigma``, the covariance of
``beta`` and the log-likelihood from the linear model at the last point.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from companion.engine.optimize import ConvergenceWarning
from companion.nlmm.nlme_lmm import CovarianceForm, LinearizedLmm
from companion.nlmm.nlme_optim import newton, nlm
from companion.nlmm.selfstart import SelfStart

EM_STEPS = 20  # nlme's C code, before nlm
START_EM_STEPS = 25  # nlmeControl()'s niterEM, for the starting values


class NlmeError(RuntimeError):
    """The fit cannot go on from where it is."""


class PnlsError(NlmeError):
    """The penalized nonlinear least-squares step could not lower its criterion."""


@dataclass(frozen=True)
class Control:
    """nlme's ``nlmeControl()`` defaults."""

    tolerance: float = 1e-5
    max_iter: int = 50
    pnls_max_iter: int = 7
    pnls_tol: float = 1e-3
    min_scale: float = 1e-3


@dataclass
class Problem:
    """The data (rows sorted by group, as nlme sorts them) and the model's structure."""

    model: SelfStart
    x: np.ndarray
    y: np.ndarray
    codes: np.ndarray  # group of each row, 0 .. m - 1, non-decreasing
    random: np.ndarray  # indices of the parameters with a random effect
    form: CovarianceForm

    def __post_init__(self):
        self.starts = np.flatnonzero(np.diff(self.codes, prepend=-1))
        self.n_groups = len(self.starts)
        n_parameters = len(self.model.parameters)
        self.n_effects = n_parameters + self.n_groups * len(self.random)  # nlme's nparTot

    def parameters(self, beta: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Each row's parameters, parameters x rows (the shape the models broadcast over)."""
        phi = np.repeat(beta[:, None], len(self.y), axis=1)
        phi[self.random] += b[self.codes].T
        return phi

    def residuals(self, beta: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self.y - self.model.value(self.x, self.parameters(beta, b))

    def linearize(self, beta, b, residual) -> LinearizedLmm:
        """The linear mixed model approximating the model at ``(beta, b)``."""
        X = self.model.gradient(self.x, self.parameters(beta, b))  # noqa: N806
        Z = X[:, self.random]  # noqa: N806
        w = residual + X @ beta + np.einsum("ij,ij->i", Z, b[self.codes])
        return LinearizedLmm(X, Z, w, self.starts, self.form)


def _criterion(lmm: LinearizedLmm, reml: bool, nlme_scale: bool = False):
    """``x -> (criterion, gradient)`` for the minimizers: the deviance (ML or REML), or
    nlme's C-level ML criterion (``-log-likelihood`` less constants)."""
    def fun(x):
        try:
            s = lmm.solve(x)
        except np.linalg.LinAlgError:
            return np.inf, np.zeros_like(x)
        if nlme_scale:
            return lmm.nlme_objective(s), lmm.gradient(s) / 2
        return lmm.deviance(s, reml), lmm.gradient(s, reml)
    return fun


@dataclass
class PnlsResult:
    beta: np.ndarray
    b: np.ndarray  # groups x random effects
    x: np.ndarray  # nlme's covariance parameters, as last re-estimated
    residual: np.ndarray
    lmm: LinearizedLmm  # at the returned point


def pnls_step(problem: Problem, beta, b, x, residual, control: Control) -> PnlsResult:
    """Gauss-Newton steps on the penalized sum of squares (nlme's ``fit_nlme``)."""
    nrdof = len(problem.y) - problem.n_effects
    factor = 1.0
    for _ in range(control.pnls_max_iter):
        lmm = problem.linearize(beta, b, residual)
        x = nlm(_criterion(lmm, False, nlme_scale=True), lmm.em(x, EM_STEPS))
        solution = lmm.solve(x)
        precision = np.linalg.inv(problem.form.covariance(x))
        objective = residual @ residual + _penalty(b, precision)
        gain = max(objective - solution.pwrss, 0.0) / solution.pwrss
        if np.sqrt(nrdof * gain / problem.n_effects) < control.pnls_tol:
            return PnlsResult(beta, b, x, residual, lmm)
        d_beta, d_b = solution.beta - beta, solution.b - b
        while True:
            if factor < control.min_scale:
                raise PnlsError("step halving factor reduced below minimum in the PNLS "
                                "step: the penalized sum of squares could not be lowered "
                                "from here; try other starting values")
            new_beta, new_b = beta + factor * d_beta, b + factor * d_b
            with np.errstate(all="ignore"):
                new_residual = problem.residuals(new_beta, new_b)
            new_objective = new_residual @ new_residual + _penalty(new_b, precision)
            factor /= 2
            if new_objective < objective:
                break
        factor = min(1.0, 4 * factor)
        beta, b, residual = new_beta, new_b, new_residual
    return PnlsResult(beta, b, x, residual, problem.linearize(beta, b, residual))


def _penalty(b: np.ndarray, precision: np.ndarray) -> float:
    """``sum_i b_i' A^-1 b_i``."""
    return float(np.einsum("gi,ij,gj->", b, precision, b))


@dataclass
class Fit:
    beta: np.ndarray
    b: np.ndarray
    x: np.ndarray
    residual: np.ndarray
    lmm: LinearizedLmm  # the linear model at the estimates
    iterations: int
    converged: bool
    criteria: dict[str, float]  # the last iteration's relative changes


def start_parameters(lmm: LinearizedLmm, reml: bool) -> np.ndarray:
    """nlme's start: relative precisions ``0.375^2`` times each random effect's mean
    over groups of ``sum z^2``, no correlation; then EM steps."""
    x = lmm.form.parameters(np.diag(lmm.m / (0.375**2 * np.diagonal(lmm.ZtZ.sum(0)))))
    return lmm.em(x, START_EM_STEPS, reml)


def alternate(problem: Problem, beta: np.ndarray, reml: bool, control: Control) -> Fit:
    """The LME and PNLS steps in turn until nlme's convergence criterion holds."""
    b = np.zeros((problem.n_groups, len(problem.random)))
    residual = problem.residuals(beta, b)
    iteration = 0
    try:
        lmm = problem.linearize(beta, b, residual)
        with np.errstate(divide="ignore"):
            x = start_parameters(lmm, reml)
        for iteration in range(1, control.max_iter + 1):  # noqa: B007 - reported after
            old_beta, old_x = beta, x
            x = newton(_criterion(lmm, reml), x)  # the LME step
            step = pnls_step(problem, beta, b, x, residual, control)
            beta, b, x, residual, lmm = step.beta, step.b, step.x, step.residual, step.lmm
            criteria = {"fixed": _relative_change(old_beta, beta, control.tolerance),
                        "reStruct": _relative_change(old_x, x, control.tolerance)}
            if max(criteria.values()) <= control.tolerance:
                break
    except np.linalg.LinAlgError as error:
        raise NlmeError(f"the linearized model is singular in iteration {max(iteration, 1)} "
                        f"({error}): the "
                        "model's derivatives in the parameters are (nearly) collinear "
                        "there, or a random effect's derivative vanishes; try other "
                        "starting values") from error
    converged = max(criteria.values()) <= control.tolerance
    if not converged:
        warnings.warn(f"nlme did not converge in {control.max_iter} iterations: the last "
                      f"relative changes were fixed {criteria['fixed']:.3g}, reStruct "
                      f"{criteria['reStruct']:.3g} (tolerance {control.tolerance:g})",
                      ConvergenceWarning, stacklevel=3)
    return Fit(beta, b, x, residual, lmm, iteration, converged, criteria)


def _relative_change(old: np.ndarray, new: np.ndarray, tolerance: float) -> float:
    """nlme's ``max |old - new| / |new|`` (absolute where ``|new| < tolerance``)."""
    scale = np.where(np.abs(new) < tolerance, 1.0, np.abs(new))
    return float(np.max(np.abs(old - new) / scale))
