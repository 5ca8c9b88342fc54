"""The names Bayesian and INLA fits share: ``fixef`` (the posterior means of the fixed
effects, under lme4's names) and ``fixef_posterior`` (their posterior mean, SD and
equal-tailed 95% interval), whatever layout the R package being mirrored prints."""

from __future__ import annotations

import numpy as np
import pandas as pd

POSTERIOR_COLUMNS = ["mean", "sd", "2.5%", "97.5%"]


def posterior_table(draws: dict[str, np.ndarray]) -> pd.DataFrame:
    """Mean, SD and the 2.5% and 97.5% quantiles of each parameter's draws."""
    rows = {name: [float(np.mean(x)), float(np.std(x, ddof=1)),
                   *np.quantile(np.ravel(x), [0.025, 0.975])] for name, x in draws.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=POSTERIOR_COLUMNS)


def lme4_name(name: str) -> str:
    """brms's ``Intercept`` is lme4's ``(Intercept)``."""
    return "(Intercept)" if name == "Intercept" else name
