"""Checks shared by the sampled fits' tests: Monte Carlo tolerances against R's printed
posteriors, and the convergence bounds (R-hat, divergences). See tests/bayes/test_bayes.py
for the rule."""

import arviz as az
import numpy as np
import pandas as pd

SAFETY = 4.0
MAX_DIVERGENCES = 4  # 0.1% of the 4000 draws; the seeded runs have none
# R-hat is a check that the chains mixed, not a number to match: a fixed seed gives other
# draws on another CPU, so the bound must hold for any seed. Over seven seeds of 4 x 1000
# draws the largest brms value ranged 1.0035-1.011 (sd(Intercept), a scale with 18
# groups); chains that failed to mix give 1.1 and more. 1.03 leaves a margin of three
# times the largest seen excess on the one side and still catches a failure on the other.
MAX_RHAT = 1.03


def mcse(draws: np.ndarray) -> float:
    """arviz's Monte Carlo standard error of the mean of chain x draw ``draws``."""
    return np.asarray(az.mcse(draws, method="mean")).item()


def tolerance(mcse_ours: float, sd_r: float, ess_r: float, decimals: int) -> float:
    """SAFETY x the Monte Carlo SE of the difference of two independent runs' means,
    plus half a unit of the last printed digit."""
    return SAFETY * np.hypot(mcse_ours, sd_r / np.sqrt(ess_r)) + 0.5 * 10.0**-decimals


def assert_matches_brms(fit, draws: dict, printed: pd.DataFrame,
                        max_rhat: float = MAX_RHAT) -> None:
    """Every posterior mean of a brms-layout ``fit`` within :func:`tolerance` of the
    chapter's ``printed`` table, R-hat below ``max_rhat``, divergences at most
    MAX_DIVERGENCES."""
    assert list(fit.summary.index) == list(printed.index)
    for row, r in printed.iterrows():
        allowed = tolerance(mcse(draws[row]), r["Est.Error"], r["Bulk_ESS"], decimals=2)
        ours = fit.summary.loc[row, "Estimate"]
        assert abs(ours - r["Estimate"]) <= allowed, f"{row}: {ours:.3f} vs {r.Estimate}"
    assert (fit.summary["Rhat"] < max_rhat).all()
    assert int(fit.idata.sample_stats["diverging"].sum()) <= MAX_DIVERGENCES
