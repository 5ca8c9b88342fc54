"""Profile-likelihood confidence intervals for a linear mixed model (lme4's
``confint(fit, method = "profile")``).

As lme4 does, a REML fit is first refitted by ML and the ML deviance is profiled. The
variance parameters are profiled on the scale people read them: each random-effect
standard deviation, each correlation, and the residual standard deviation. Fixing one of
them and minimizing the deviance over the others (with the fixed effects profiled out)
gives the profile; the interval is where it stays within the chi-square cut-off of the
optimum. Fixed effects are profiled by moving ``X_k beta_k`` into the offset and
refitting the variance parameters.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from scipy import optimize, stats

from companion.engine.profiled import LOG_2PI, ProfiledDeviance




def _sdcor_layout(p: int) -> list[tuple[int, int]]:
    """lme4's order of a term's SDs and correlations, that of theta (column-major lower
    triangle): ``(j, j)`` is column j's SD, ``(i, j)`` with ``i > j`` their correlation."""
    return [(i, j) for j in range(p) for i in range(j, p)]


def sdcor_names(blocks) -> list[str]:
    """lme4's names of the random effects' SDs and correlations, term by term, in its
    order: ``sd_(Intercept)|g``, ``cor_Days.(Intercept)|g``, ``sd_Days|g``."""
    names = []
    for block in blocks:
        cols = block.columns
        names += [f"sd_{cols[i]}|{block.group}" if i == j else
                  f"cor_{cols[i]}.{cols[j]}|{block.group}"
                  for i, j in _sdcor_layout(len(cols))]
    return names


def sdcor_from_theta(theta: np.ndarray, layout, sigma: float = 1.0) -> np.ndarray:
    """The random effects' SDs and correlations (in :func:`sdcor_names`' order)."""
    values = []
    for template in layout.templates(theta):
        cov = sigma**2 * template @ template.T
        sd = np.sqrt(np.diag(cov))
        values += [sd[i] if i == j else
                   (cov[i, j] / (sd[i] * sd[j]) if sd[i] * sd[j] > 0 else 0.0)
                   for i, j in _sdcor_layout(len(sd))]
    return np.asarray(values, dtype=float)


def theta_from_sdcor(values: np.ndarray, sizes: list[int], sigma: float = 1.0) -> np.ndarray:
    """lme4's theta from the SDs and correlations (the inverse of :func:`sdcor_from_theta`)."""
    thetas, at = [], 0
    for p in sizes:
        cov = np.zeros((p, p))
        pairs = _sdcor_layout(p)
        sds = {i: values[at + k] for k, (i, j) in enumerate(pairs) if i == j}
        for k, (i, j) in enumerate(pairs):
            cov[i, j] = cov[j, i] = sds[i] ** 2 if i == j else values[at + k] * sds[i] * sds[j]
        chol = np.linalg.cholesky(cov + 1e-300 * np.eye(p)) / sigma
        thetas.append(np.array([chol[i, j] for i, j in pairs]))
        at += len(pairs)
    return np.concatenate(thetas)


class _VarianceProfile:
    """The ML deviance as a function of (SDs, correlations, sigma), beta profiled out."""

    def __init__(self, deviance: ProfiledDeviance, fit):
        self.deviance = deviance
        self.sizes = deviance.layout.sizes
        self.names = [*sdcor_names(deviance.design.blocks), "sigma"]
        self.estimate = np.append(sdcor_from_theta(fit.theta.to_numpy(), deviance.layout,
                                                   fit.sigma), fit.sigma)

    def theta_sigma(self, values: np.ndarray) -> tuple[np.ndarray, float]:
        """Map (SDs, correlations, sigma) to lme4's theta and sigma."""
        return theta_from_sdcor(values[:-1], self.sizes, values[-1]), values[-1]

    def __call__(self, values: np.ndarray) -> float:
        theta, sigma = self.theta_sigma(values)
        d = self.deviance
        solution = d.solve(theta)
        return (solution.ldL2 - d.ldW + solution.pwrss / sigma**2
                + d.n * (LOG_2PI + 2 * np.log(sigma)))

    def is_correlation(self, k: int) -> bool:
        return self.names[k].startswith("cor_")


def _to_free(profile: _VarianceProfile, values: np.ndarray) -> np.ndarray:
    return np.array([np.arctanh(np.clip(v, -0.999999, 0.999999)) if profile.is_correlation(k)
                     else np.log(max(v, 1e-12)) for k, v in enumerate(values)])


def _from_free(profile: _VarianceProfile, free: np.ndarray) -> np.ndarray:
    return np.array([np.tanh(f) if profile.is_correlation(k) else np.exp(f)
                     for k, f in enumerate(free)])


def _profile_variance(profile: _VarianceProfile, k: int, value: float,
                      start: np.ndarray) -> tuple[float, np.ndarray]:
    """Minimal deviance with parameter k fixed at ``value`` (others free)."""
    others = [i for i in range(len(start)) if i != k]

    def objective(free_others):
        free = start.copy()
        free[others] = free_others
        values = _from_free(profile, free)
        values[k] = value
        return profile(values)

    result = optimize.minimize(objective, start[others], method="BFGS",
                               options={"gtol": 1e-7})
    best = start.copy()
    best[others] = result.x
    return float(result.fun), best


def profile_interval(profile_at, estimate: float, step: float, cutoff: float, lower: float,
              upper: float) -> tuple[float, float]:
    """Where the profiled deviance (minus its minimum) crosses ``cutoff`` on each side."""
    ends = []
    for direction, limit in ((-1, lower), (1, upper)):
        inside, outside = estimate, estimate + direction * step
        while (direction * (limit - outside) > 0) and profile_at(outside) < cutoff:
            inside, outside = outside, estimate + 2 * (outside - estimate)
        if direction * (limit - outside) <= 0:
            outside = limit
            if profile_at(outside) < cutoff:
                ends.append(limit)
                continue
        ends.append(optimize.brentq(lambda v: profile_at(v) - cutoff, inside, outside,
                                    xtol=1e-8 * max(1.0, abs(estimate))))
    return ends[0], ends[1]


def confint_profile(fit, level: float = 0.95) -> pd.DataFrame:
    """Profile-likelihood intervals for every variance parameter and fixed effect."""
    if fit.method == "REML":
        fit = fit.refit_ml()
    deviance: ProfiledDeviance = fit.devfun
    cutoff = stats.chi2.ppf(level, 1)
    rows = {}

    profile = _VarianceProfile(deviance, fit)
    base = profile(profile.estimate)
    free_start = _to_free(profile, profile.estimate)
    for k, name in enumerate(profile.names):
        estimate = profile.estimate[k]
        if profile.is_correlation(k):
            lower, upper, step = -1.0, 1.0, 0.1
        else:
            lower, upper, step = 0.0, np.inf, 0.1 * max(estimate, 1e-3)

        def at(value, k=k, warm={"start": free_start}):  # noqa: B006 - per-parameter state
            deviance_k, warm["start"] = _profile_variance(profile, k, value, warm["start"])
            return deviance_k - base

        rows[name] = profile_interval(at, estimate, step, cutoff, lower, upper)

    ml_min = -2 * fit.loglik
    for k, name in enumerate(fit.fixef.index):
        design = deviance.design

        def at(value, k=k, design=design):
            reduced = replace(design, X=np.delete(design.X, k, axis=1),
                              offset=design.offset + design.X[:, k] * value,
                              fixed_names=[n for i, n in enumerate(design.fixed_names)
                                           if i != k])
            partial = ProfiledDeviance(reduced, reml=False)
            bounds = [(lo if np.isfinite(lo) else None, None)
                      for lo in partial.layout.lower_bounds()]
            best = optimize.minimize(partial, fit.theta.to_numpy(), method="L-BFGS-B",
                                     bounds=bounds, options={"ftol": 1e-13, "gtol": 1e-9})
            return best.fun - ml_min

        rows[name] = profile_interval(at, fit.fixef.iloc[k], fit.se.iloc[k], cutoff,
                               -np.inf, np.inf)
    pct = [f"{100 * (0.5 - level / 2):g} %", f"{100 * (0.5 + level / 2):g} %"]
    return pd.DataFrame.from_dict(rows, orient="index", columns=pct)
