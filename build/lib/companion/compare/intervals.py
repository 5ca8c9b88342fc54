"""Estimates with 95% intervals, one row per method and quantity, for the comparison
figures (:func:`companion.plots.charts.estimates_by_method`) and the simulation study."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

Z95 = stats.norm.ppf(0.975)
COLUMNS = ["method", "quantity", "estimate", "low", "high"]


def sd_wald_log(fit) -> tuple[float, float, float, float]:
    """A GLMM's random-intercept SD (theta of its only term), its SE from the deviance's
    Hessian and a 95% Wald interval on the log scale, as glmmTMB's ``confint``; the SE and
    interval are NaN at a zero SD."""
    sd = float(fit.varcorr.sdcor.iloc[0])
    se = float(np.sqrt(fit.vcov_theta.iloc[0, 0]))
    if fit.is_singular or not np.isfinite(se):
        return sd, np.nan, np.nan, np.nan
    spread = np.exp(Z95 * se / sd)
    return sd, se, sd / spread, sd * spread


def wald_rows(method: str, estimates: pd.Series, ses: pd.Series) -> list[tuple]:
    """Each estimate with estimate -+ 1.96 SE."""
    return [(method, name, float(est), float(est - Z95 * se), float(est + Z95 * se))
            for name, est, se in zip(estimates.index, estimates, ses)]


def fit_rows(method: str, fit, sd_name: str, sd_interval=(np.nan, np.nan)) -> list[tuple]:
    """A mixed model's fixed effects (Wald) and the SD of its first random term, with the
    interval given (none by default)."""
    return wald_rows(method, fit.fixef, fit.se) + [
        (method, sd_name, float(fit.varcorr.sdcor.iloc[0]), *map(float, sd_interval))]


def draw_rows(method: str, draws: dict[str, np.ndarray]) -> list[tuple]:
    """Posterior medians and 2.5%-97.5% quantiles of each quantity's draws."""
    return [(method, name, float(np.median(x)), *map(float, np.quantile(x, [0.025, 0.975])))
            for name, x in draws.items()]


def inla_rows(fit, sd_name: str, method: str = "INLA") -> list[tuple]:
    """An INLA fit's fixed-effect posterior medians and quantiles, and the SD as the
    transformed quantiles of its (first) precision."""
    rows = [(method, name, row["0.5quant"], row["0.025quant"], row["0.975quant"])
            for name, row in fit.fixed.iterrows()]
    precision = fit.hyperpar.iloc[0]
    return rows + [(method, sd_name, precision["0.5quant"] ** -0.5,
                    precision["0.975quant"] ** -0.5, precision["0.025quant"] ** -0.5)]


def table(rows: list[tuple]) -> pd.DataFrame:
    """The rows as the DataFrame :func:`companion.plots.charts.estimates_by_method` draws."""
    return pd.DataFrame(rows, columns=COLUMNS)
