"""Detect (quasi-)complete separation of a GLMM's fixed effects, to warn about it.

Data are separated when some direction ``d`` of the fixed effects never lowers the
likelihood: ``x'd >= 0`` where every trial succeeded, ``x'd <= 0`` where none did,
``x'd = 0`` elsewhere, and ``x'd != 0`` somewhere. The estimate then runs off to infinity
along ``d``. The check is the linear program of Konis (2007, "Linear programming algorithms
for detecting separated data in binary logistic regression models", DPhil thesis,
Oxford): maximize the total of ``|x'd|`` over the rows at the boundary, with ``d`` in a box.
For a Poisson response only the zero counts sit at a boundary.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import linprog

# A fixed effect this large (logit or log scale) triggers the check after a fit.
LARGE_COEFFICIENT = 10.0


class SeparationWarning(UserWarning):
    """The fixed effects are (quasi-)completely separated: some estimates are infinite."""


def separating_direction(X: np.ndarray, y: np.ndarray, weights: np.ndarray,  # noqa: N803
                         upper_bound: bool) -> np.ndarray | None:
    """A direction ``d`` of the fixed effects along which the fit improves without end,
    or None. ``y`` is the proportion (binomial, ``upper_bound=True``) or the count."""
    used = weights > 0
    X, y = X[used], y[used]  # noqa: N806
    low = y <= 0
    high = (y >= 1) if upper_bound else np.zeros_like(low)
    inside = ~(low | high)
    sign = np.where(high, 1.0, -1.0)
    boundary = low | high
    if not boundary.any():
        return None
    # maximize sum(sign x'd) over boundary rows  <=>  minimize -c'd
    c = -(sign[boundary, None] * X[boundary]).sum(axis=0)
    a_ub = -(sign[boundary, None] * X[boundary])  # sign x'd >= 0
    a_eq = X[inside] if inside.any() else None
    result = linprog(c, A_ub=a_ub, b_ub=np.zeros(boundary.sum()), A_eq=a_eq,
                     b_eq=np.zeros(inside.sum()) if inside.any() else None,
                     bounds=[(-1, 1)] * X.shape[1], method="highs")
    if result.status != 0 or -result.fun < 1e-8 * max(1.0, np.abs(X).max()):
        return None
    return np.where(np.abs(result.x) > 1e-9, result.x, 0.0)


def warn_if_separated(X, y, weights, names, fixef, family_name: str) -> None:  # noqa: N803
    """After a binomial or Poisson fit with a very large fixed effect, confirm separation
    and warn, naming the fixed effects involved."""
    if family_name not in ("binomial", "poisson") or \
            np.abs(np.asarray(fixef)).max() < LARGE_COEFFICIENT:
        return
    direction = separating_direction(X, y, weights, upper_bound=family_name == "binomial")
    if direction is None:
        return
    involved = ", ".join(name for name, d in zip(names, direction) if d != 0)
    warnings.warn(
        "the fixed effects are separated: the data are fitted ever better as the "
        f"estimates of {involved} move to +-infinity (e.g. a factor level where every "
        "count is 0), so those estimates and their standard errors are meaningless. "
        "Merge or drop the "
        "level, or use a Bayesian fit with a proper prior on the fixed effects "
        "(companion.bayes.glmm).", SeparationWarning, stacklevel=4)
