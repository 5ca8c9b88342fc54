"""Profile-likelihood confidence intervals for a GLMM (lme4's ``confint(fit, method =
"profile")`` on a glmer fit).

The Laplace (or quadrature) deviance of the fit is profiled: one parameter is held at a
value and the deviance minimized over all the others, the random effects' SDs and
correlations and the fixed effects together; the interval is where the profile stays
within the chi-square cut-off of the optimum. The variance parameters are named and
reported as lme4 names them (``sd_(Intercept)|g``, ``cor_x.(Intercept)|g``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, stats

from companion.inference.profile import (profile_interval, sdcor_from_theta, sdcor_names,
                                         theta_from_sdcor)


class _GlmmProfile:
    """The deviance as a function of (SDs, correlations, fixed effects)."""

    def __init__(self, fit):
        deviance = fit.devfun
        self.deviance = deviance
        self.sizes = deviance.layout.sizes
        self.n_sdcor = len(sdcor_names(deviance.design.blocks))
        self.names = [*sdcor_names(deviance.design.blocks), *fit.fixef.index]
        theta, beta = deviance.split(fit.optimization.final)
        self.estimate = np.concatenate([sdcor_from_theta(theta, deviance.layout), beta])
        self.minimum = self(self.estimate)

    def __call__(self, values: np.ndarray) -> float:
        try:  # a correlation at +-1 has no Cholesky factor: outside the model
            theta = theta_from_sdcor(values[:self.n_sdcor], self.sizes)
        except np.linalg.LinAlgError:
            return np.inf
        return self.deviance(np.concatenate([theta, values[self.n_sdcor:]]))

    def is_correlation(self, k: int) -> bool:
        return self.names[k].startswith("cor_")

    def is_sd(self, k: int) -> bool:
        return k < self.n_sdcor and not self.is_correlation(k)

    def to_free(self, values: np.ndarray) -> np.ndarray:
        """Unbounded coordinates: log SDs, Fisher-z correlations, the fixed effects."""
        return np.array([np.log(max(v, 1e-10)) if self.is_sd(k) else
                         np.arctanh(np.clip(v, -0.999999, 0.999999))
                         if self.is_correlation(k) else v for k, v in enumerate(values)])

    def from_free(self, free: np.ndarray) -> np.ndarray:
        return np.array([np.exp(f) if self.is_sd(k) else np.tanh(f)
                         if self.is_correlation(k) else f for k, f in enumerate(free)])

    def held_at(self, k: int, value: float, start: np.ndarray) -> tuple[float, np.ndarray]:
        """The smallest deviance with parameter ``k`` at ``value``, and where it is (free
        coordinates, for the next point's start)."""
        others = np.arange(len(start)) != k

        def objective(free_others):
            free = start.copy()
            free[others] = free_others
            values = self.from_free(free)
            values[k] = value
            return self(values)

        with np.errstate(invalid="ignore"):  # inf - inf where a step left the model
            best = optimize.minimize(objective, start[others], method="BFGS",
                                     options={"gtol": 1e-6})
        point = start.copy()
        point[others] = best.x
        return float(best.fun), point


def confint_profile_glmm(fit, level: float = 0.95) -> pd.DataFrame:
    """Profile-likelihood intervals for every SD, correlation and fixed effect."""
    profile = _GlmmProfile(fit)
    cutoff = stats.chi2.ppf(level, 1)
    start = profile.to_free(profile.estimate)
    se = dict(zip(fit.fixef.index, fit.se))
    rows = {}
    for k, name in enumerate(profile.names):
        estimate = profile.estimate[k]
        if profile.is_correlation(k):
            lower, upper, step = -1.0, 1.0, 0.1
        elif profile.is_sd(k):
            lower, upper, step = 0.0, np.inf, 0.25 * max(estimate, 1e-3)
        else:
            lower, upper, step = -np.inf, np.inf, se[name]

        def at(value, k=k, warm={"start": start}):  # noqa: B006 - per-parameter state
            value_k, warm["start"] = profile.held_at(k, value, warm["start"])
            return value_k - profile.minimum

        rows[name] = profile_interval(at, estimate, step, cutoff, lower, upper)
    pct = [f"{100 * (0.5 - level / 2):g} %", f"{100 * (0.5 + level / 2):g} %"]
    return pd.DataFrame.from_dict(rows, orient="index", columns=pct)
