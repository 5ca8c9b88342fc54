"""Summaries of a simulation study's rows (:func:`companion.study.runner.run_study`): bias, RMSE
and coverage with their Monte Carlo standard errors, time per fit, and a figure."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from companion.study.methods import METHODS, PARAMETERS

def summarise(results: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per scenario, method and parameter: bias, empirical SE, RMSE and the coverage of the
    95% intervals, each with its Monte Carlo SE (Morris, White & Crowther 2019), the mean
    model SE, the mean time per fit and the counts of fits, failures and warnings."""
    del level  # the intervals are stored at 95%
    rows = []
    order = {m: i for i, m in enumerate(METHODS)}
    for (scen, method, parameter), part in results.groupby(
            ["scenario", "method", "parameter"], sort=False):
        failed = part["error"] != ""
        ok = part[~failed & part["estimate"].notna()]
        n = len(ok)
        err = ok["estimate"] - ok["truth"]
        bias = err.mean() if n else np.nan
        emp_se = ok["estimate"].std(ddof=1) if n > 1 else np.nan
        mse = (err**2).mean() if n else np.nan
        rmse = math.sqrt(mse) if n else np.nan
        if n > 1:
            mse_mcse = math.sqrt(((err**2 - mse) ** 2).sum() / (n * (n - 1)))
            rmse_mcse = mse_mcse / (2 * rmse) if rmse > 0 else np.nan
        else:
            rmse_mcse = np.nan
        intervals = ok[ok["lower"].notna() & ok["upper"].notna()]
        n_int = len(intervals)
        if n_int:
            covered = (intervals["lower"] <= intervals["truth"]) & (
                intervals["truth"] <= intervals["upper"])
            coverage = float(covered.mean())
            coverage_mcse = math.sqrt(coverage * (1 - coverage) / n_int)
        else:
            coverage = coverage_mcse = np.nan
        rows.append({
            "scenario": scen, "method": method, "parameter": parameter,
            "truth": float(part["truth"].iloc[0]), "n_reps": part["rep"].nunique(),
            "n_ok": n, "n_failed": int(failed.sum()),
            "n_warned": int((part["warnings"] != "").sum()),
            "mean": ok["estimate"].mean() if n else np.nan,
            "bias": bias, "bias_mcse": emp_se / math.sqrt(n) if n > 1 else np.nan,
            "emp_se": emp_se, "model_se": ok["se"].mean() if ok["se"].notna().any() else np.nan,
            "rmse": rmse, "rmse_mcse": rmse_mcse,
            "coverage": coverage, "coverage_mcse": coverage_mcse, "n_intervals": n_int,
            "seconds_per_fit": part["seconds"].mean(),
        })
    table = pd.DataFrame(rows)
    if len(table):
        table["_m"] = table["method"].map(order).fillna(len(order))
        table["_p"] = table["parameter"].map({p: i for i, p in enumerate(PARAMETERS)})
        table = table.sort_values(["scenario", "_m", "_p"]).drop(columns=["_m", "_p"])
    return table.reset_index(drop=True)


def timing(results: pd.DataFrame) -> pd.DataFrame:
    """Seconds per fit by method (each fit is repeated over the parameter rows)."""
    fits = results.drop_duplicates(["scenario", "rep", "method"])
    return (fits.groupby(["scenario", "method"], sort=False)["seconds"]
            .agg(["mean", "median", "min", "max", "count"]).reset_index())


def plot_study(summary: pd.DataFrame, parameters: Sequence[str] = PARAMETERS):
    """Bias (with +-2 Monte Carlo SE) and coverage (with +-2 MCSE, the 95% line) of each
    parameter, by method: one row of panels per measure, one column per parameter."""
    import matplotlib.pyplot as plt

    parameters = [p for p in parameters if p in set(summary["parameter"])]
    fig, axes = plt.subplots(2, len(parameters), figsize=(3.2 * len(parameters), 5.5),
                             squeeze=False, sharey="row")
    for j, parameter in enumerate(parameters):
        part = summary[summary["parameter"] == parameter]
        y = np.arange(len(part))
        for i, (measure, mcse, ref) in enumerate((("bias", "bias_mcse", 0.0),
                                                  ("coverage", "coverage_mcse", 0.95))):
            ax = axes[i, j]
            ax.errorbar(part[measure], y, xerr=2 * part[mcse].fillna(0), fmt="o",
                        color="C0" if i == 0 else "C1", capsize=3)
            ax.axvline(ref, color="grey", lw=1, ls="--")
            ax.set_yticks(y, part["method"])
            ax.set_title(f"{parameter}: {measure}", fontsize=10)
            if i == 1:
                ax.set_xlim(min(0.5, np.nanmin(part[measure].to_numpy(), initial=0.95) - 0.05),
                            1.0)
    fig.suptitle(f"Simulation study: {', '.join(map(str, summary['scenario'].unique()))}")
    fig.tight_layout()
    return fig
