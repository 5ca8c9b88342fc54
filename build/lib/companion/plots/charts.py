"""The chapter's figures in matplotlib; each function draws on ``ax`` (or a new one) and returns it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import PercentFormatter


def _axes(ax, figsize=(6.4, 4.2)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _lines_by_group(ax, data, x, y, group, markers, colors=None):
    """One line (optionally with points) per level of ``group``, in the factor's level order."""
    levels = data[group].cat.categories if hasattr(data[group], "cat") else sorted(data[group].unique())
    for i, level in enumerate(levels):
        part = data[data[group] == level].sort_values(x)
        color = None if colors is None else colors(i / max(len(levels) - 1, 1))
        ax.plot(part[x], part[y], marker="o" if markers else None, ms=3.5, lw=1.1,
                color=color, label=str(level))


def sleepstudy_lines(data: pd.DataFrame, ax=None):
    """Reaction time against days of sleep restriction, one line per subject (figure 8.1)."""
    ax = _axes(ax)
    _lines_by_group(ax, data, "Days", "Reaction", "Subject", markers=False,
                    colors=lambda _: (0.15, 0.15, 0.15, 0.8))
    ax.set(xlabel="Days of sleep restriction", ylabel="Average reaction time (ms)",
           xticks=range(0, 10, 2))
    ax.grid(alpha=0.3)
    return ax


def cbpp_incidence(data: pd.DataFrame, ax=None):
    """Heat map of incidence / size by herd and period; blank cells were not observed."""
    ax = _axes(ax, figsize=(7.5, 3.2))
    rate = (data["incidence"] / data["size"]).to_numpy()
    grid = pd.DataFrame({"herd": data["herd"], "period": data["period"], "rate": rate})
    table = grid.pivot_table(index="period", columns="herd", values="rate", observed=False)
    image = ax.pcolormesh(np.ma.masked_invalid(table.to_numpy()), cmap="plasma",
                          edgecolors="white", linewidth=1.5)
    ax.set_xticks(np.arange(table.shape[1]) + 0.5, table.columns.astype(str))
    ax.set_yticks(np.arange(table.shape[0]) + 0.5, table.index.astype(str))
    ax.set(xlabel="herd", ylabel="period")
    ax.set_aspect("equal")
    colorbar = ax.figure.colorbar(image, ax=ax, shrink=0.8, format=PercentFormatter(1.0))
    colorbar.set_label("incidence / size")
    return ax


def loblolly_growth(data: pd.DataFrame, ax=None):
    """Height against age, one coloured line per seed source, in R's level order."""
    ax = _axes(ax)
    _lines_by_group(ax, data, "age", "height", "Seed", markers=True, colors=plt.cm.viridis)
    ax.set(xlabel="age (yr)", ylabel="height (ft)")
    ax.legend(title="Seed", ncols=2, fontsize="small", title_fontsize="small",
              loc="upper left", frameon=False)
    ax.grid(alpha=0.3)
    return ax


def puromycin_rates(data: pd.DataFrame, ax=None):
    """Reaction velocity against substrate concentration, treated and untreated cells."""
    ax = _axes(ax)
    _lines_by_group(ax, data, "conc", "rate", "state", markers=True)
    ax.set(xlabel="Substrate concentration (ppm)",
           ylabel="Reaction velocity (counts/min/min)")
    ax.legend(title="state", frameon=False)
    ax.grid(alpha=0.3)
    return ax


def topo_points(data: pd.DataFrame, ax=None):
    """The 52 survey points of ``topo``, coloured by height."""
    ax = _axes(ax, figsize=(5.4, 4.6))
    points = ax.scatter(data["x"], data["y"], c=data["z"], cmap="plasma", s=40,
                        edgecolors="black", linewidths=0.4)
    ax.figure.colorbar(points, ax=ax, label="height (ft)")
    ax.set(xlabel="x (50 ft)", ylabel="y (50 ft)", xlim=(-0.2, 6.7), ylim=(-0.2, 6.7))
    ax.set_aspect("equal")
    return ax


def volcano_image(matrix: np.ndarray, ax=None):
    """Maunga Whau as an image with contours; x runs along R's rows, y along its columns."""
    ax = _axes(ax, figsize=(6.4, 4.6))
    x = 10.0 * np.arange(matrix.shape[0])
    y = 10.0 * np.arange(matrix.shape[1])
    image = ax.pcolormesh(x, y, matrix.T, cmap="terrain", shading="nearest")
    ax.contour(x, y, matrix.T, levels=np.arange(100, 200, 10), colors="black",
               linewidths=0.5, alpha=0.6)
    ax.figure.colorbar(image, ax=ax, label="height (m)")
    ax.set(xlabel="x (m)", ylabel="y (m)")
    ax.set_aspect("equal")
    return ax


def group_panels(data: pd.DataFrame, x: str, y: str, group: str, curves=None, ncols=6,
                 xlabel=None, ylabel=None):
    """One small panel per level of ``group``: the points, and, if given, a curve per panel
    from ``curves`` (columns ``group``, ``x``, ``fit`` and optionally ``low``/``high`` for a
    band). Without ``curves``, each panel gets its least-squares line (the chapter's
    ``geom_smooth(method = "lm")``)."""
    levels = list(data[group].cat.categories) if hasattr(data[group], "cat") else \
        sorted(data[group].unique())
    nrows = -(-len(levels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.9 * ncols, 1.7 * nrows), sharex=True,
                             sharey=True, layout="constrained")
    for ax, level in zip(axes.flat, levels):
        part = data[data[group] == level]
        ax.plot(part[x], part[y], "o", ms=2.5, color="0.25")
        if curves is None:
            slope, intercept = np.polyfit(part[x], part[y], 1)
            grid = np.linspace(part[x].min(), part[x].max(), 2)
            ax.plot(grid, intercept + slope * grid, color="C0", lw=1.4)
        else:
            curve = curves[curves["group"].astype(str) == str(level)].sort_values("x")
            if {"low", "high"} <= set(curve.columns):
                ax.fill_between(curve["x"], curve["low"], curve["high"], color="C0",
                                alpha=0.25, lw=0)
            ax.plot(curve["x"], curve["fit"], color="C0", lw=1.4)
        ax.set_title(f"{group}: {level}", fontsize="small", pad=2)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(levels):]:
        ax.set_visible(False)
    fig.supxlabel(xlabel or x)
    fig.supylabel(ylabel or y)
    return axes


def effect_band(x, fit, low, high, ax=None, xlabel="", ylabel=""):
    """A fitted line with its confidence band (the chapter's marginal-effect plot)."""
    ax = _axes(ax)
    ax.fill_between(x, low, high, color="C0", alpha=0.2, lw=0)
    ax.plot(x, fit, color="C0", lw=1.6)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    return ax


def profile_curve(values, deviance, ax=None, xlabel="", ylabel="REML criterion"):
    """A deviance (or REML criterion) against one parameter, for teaching."""
    ax = _axes(ax)
    ax.plot(values, deviance, color="C0", lw=1.6)
    best = int(np.argmin(deviance))
    ax.axvline(values[best], color="0.5", ls="--", lw=1)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    return ax


def estimates_by_method(table: pd.DataFrame, ncols: int = 3, truth: dict | None = None):
    """One panel per quantity: each method's estimate as a point with its 95% interval.
    ``table`` has columns ``method``, ``quantity``, ``estimate``, ``low`` and ``high``
    (``low``/``high`` may be NaN where a method gives no interval); ``truth`` maps
    quantities to true values, drawn as dashed lines (simulated data)."""
    quantities = list(dict.fromkeys(table["quantity"]))
    methods = list(dict.fromkeys(table["method"]))
    nrows = -(-len(quantities) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 0.28 * len(methods) * nrows
                                                    + 0.9 * nrows),
                             sharey=True, layout="constrained", squeeze=False)
    rows = {method: i for i, method in enumerate(methods)}
    for ax, quantity in zip(axes.flat, quantities):
        part = table[table["quantity"] == quantity]
        y = part["method"].map(rows).to_numpy()
        errors = np.vstack([part["estimate"] - part["low"], part["high"] - part["estimate"]])
        ax.errorbar(part["estimate"], y, xerr=np.nan_to_num(errors.astype(float)), fmt="o",
                    ms=4, color="C0", ecolor="C0", elinewidth=1.2, capsize=2)
        if truth is not None and quantity in truth:
            ax.axvline(truth[quantity], color="grey", ls="--", lw=1)
        ax.set_title(quantity, fontsize="medium")
        ax.grid(alpha=0.3)
    axes[0, 0].set_yticks(range(len(methods)), methods)
    axes[0, 0].invert_yaxis()
    for ax in list(axes.flat)[len(quantities):]:
        ax.set_visible(False)
    return axes


def bootstrap_intervals(boot, wald: pd.DataFrame, percentile: pd.DataFrame, axes=None):
    """One panel per statistic: the bootstrap replicates' histogram, the estimate, and the
    Wald and percentile intervals as dashed and solid lines (``wald`` and ``percentile``:
    one row per statistic, lower and upper bound in that order). Returns the axes."""
    names = list(boot.t0.index)
    if axes is None:
        _, axes = plt.subplots(1, len(names), figsize=(3.3 * len(names), 3.0),
                               layout="constrained", squeeze=False)
        axes = axes[0]
    for j, (name, ax) in enumerate(zip(names, axes)):
        values = boot.t[:, j][np.isfinite(boot.t[:, j])]
        ax.hist(values, bins=40, color="0.75", edgecolor="white", lw=0.4)
        ax.axvline(boot.t0.iloc[j], color="k", lw=1.2)
        for bounds, style, label in ((wald, "--", "Wald"), (percentile, "-", "percentile")):
            for k, bound in enumerate(bounds.iloc[j, :2]):
                ax.axvline(bound, color="C3" if style == "--" else "C0", ls=style, lw=1.3,
                           label=label if k == 0 else None)
        ax.set(title=name, xlabel="bootstrap replicate", yticks=[])
    axes[0].legend(frameon=False, fontsize="small")
    return axes
