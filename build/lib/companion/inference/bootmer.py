"""The parametric bootstrap of an lmer or glmer fit, as lme4's ``bootMer``: responses simulated
from the fit, the model refitted to each, a statistic of every refit.

Replicate ``i`` draws from its own child of ``numpy.random.SeedSequence(seed)``, so the
numbers do not depend on how the replicates are shared out: one process, joblib's
workers or a Dask cluster give the same ``t``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from companion.inference.replicates import check_nsim, run_replicates
from companion.inference.resample import simulate_response


@dataclass
class BootResult:
    """``t0``: the statistic on the fit; ``t``: one row per replicate (bootMer's ``t``)."""

    t0: pd.Series
    t: np.ndarray
    seed: int | None

    def confint(self, level: float = 0.95, method: str = "percentile") -> pd.DataFrame:
        """Percentile intervals (the replicates' quantiles) or basic ones
        (``2 t0 - quantiles``), as boot.ci's ``perc`` and ``basic``; boot interpolates
        its order statistics on another rule, a difference within the Monte Carlo
        error of the bounds."""
        if method not in ("percentile", "basic"):
            raise ValueError(f"method must be 'percentile' or 'basic', not {method!r}")
        alpha = (1 - level) / 2
        low, high = np.nanquantile(self.t, [alpha, 1 - alpha], axis=0)
        if method == "basic":
            low, high = 2 * self.t0.to_numpy() - high, 2 * self.t0.to_numpy() - low
        return pd.DataFrame({f"{100 * alpha:g} %": low, f"{100 * (1 - alpha):g} %": high},
                            index=self.t0.index)


def bootstrap(fit, fun=None, nsim: int = 1000, seed: int | None = None, workers: int = 1,
              scheduler=None, use_u: bool = False, progress: bool = True) -> BootResult:
    """``nsim`` parametric bootstrap replicates of ``fun(fit)`` (default: the fixed
    effects). ``workers``: local processes (joblib); ``scheduler``: a Dask address or
    ``distributed.Client`` instead. ``use_u``: condition on the fitted random effects.
    A replicate whose refit fails gives a row of NaN, as in bootMer."""
    check_nsim(nsim)
    if fit.refitter is None:
        raise ValueError("the parametric bootstrap is available for lmer fits and for "
                         "binomial or Poisson glmer fits")
    fun = fun or _fixed_effects
    value = fun(fit)
    t0 = pd.Series(np.atleast_1d(np.asarray(value, dtype=float)))
    if isinstance(value, pd.Series):
        t0.index = value.index
    block = partial(_replicates, fit, fun, use_u=use_u)
    t = run_replicates(block, nsim, seed, workers, scheduler, progress, desc="bootstrap")
    return BootResult(t0, t, seed)


def _fixed_effects(fit) -> pd.Series:
    return fit.fixef


def _replicates(fit, fun, seeds, use_u: bool) -> np.ndarray:
    """The statistic on refits to responses drawn with ``seeds``, one row each."""
    out = []
    for child in seeds:
        y = simulate_response(fit, 1, child, use_u)[:, 0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a refit's convergence notes, as bootMer
            try:
                out.append(np.atleast_1d(np.asarray(fun(fit.refit(y)), dtype=float)))
            except (ValueError, np.linalg.LinAlgError):
                out.append(None)
    width = max((len(row) for row in out if row is not None), default=1)
    return np.array([row if row is not None else np.full(width, np.nan) for row in out])

