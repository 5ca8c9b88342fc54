"""The figures of the exercise pages (section 8.6) in matplotlib; each function draws on
``ax`` (or a new one) and returns it. The epil page reuses
:func:`companion.plots.charts.estimates_by_method`."""

from __future__ import annotations

from typing import Callable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

LINESTYLES = ("-", "--", ":", "-.")


def _axes(ax, figsize=(6.4, 4.2)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _levels(values: pd.Series) -> list:
    return list(values.cat.categories) if hasattr(values, "cat") else sorted(values.unique())


def shrinkage(data: pd.DataFrame, group: str, y: str, means: pd.Series,
              predictions: pd.Series, grand: float, ax=None, ylabel: str | None = None):
    """Each group's observations (grey), its raw mean (open circle, the fixed-effect fit)
    and its random-effect prediction (filled circle), joined by an arrow, with the grand
    mean as a dashed line. ``means`` and ``predictions`` are indexed by the levels of
    ``data[group]``."""
    ax = _axes(ax, figsize=(7.4, 4.2))
    levels = _levels(data[group])
    for i, level in enumerate(levels):
        values = np.sort(data.loc[data[group] == level, y].to_numpy())
        spread = ((np.arange(len(values)) % 3) - 1) * 0.05  # a zigzag, no random jitter
        ax.scatter(i - 0.25 + spread, values, s=12, color="0.6", zorder=2,
                   label="observations" if i == 0 else None)
        ax.annotate("", xy=(i + 0.12, predictions[level]), xytext=(i - 0.08, means[level]),
                    arrowprops=dict(arrowstyle="->", color="0.3", lw=1.1,
                                    shrinkA=4, shrinkB=4), zorder=3)
        ax.scatter(i - 0.08, means[level], s=45, facecolor="white", edgecolor="C0", lw=1.5,
                   zorder=4, label="group mean (fixed effect)" if i == 0 else None)
        ax.scatter(i + 0.12, predictions[level], s=45, color="C1", zorder=4,
                   label="prediction (random effect)" if i == 0 else None)
    ax.axhline(grand, color="0.2", ls="--", lw=1, zorder=1, label="grand mean")
    ax.set_xticks(range(len(levels)), [str(level) for level in levels])
    ax.set(xlabel=group, ylabel=y if ylabel is None else ylabel,
           xlim=(-0.6, len(levels) - 0.4))
    ax.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
    ax.grid(alpha=0.3, axis="y")
    return ax


def puromycin_curves(data: pd.DataFrame,
                     models: dict[str, Callable[[pd.DataFrame], np.ndarray]], ax=None,
                     points: int = 200):
    """Reaction velocity against substrate concentration, coloured by state, with the
    fitted curves of one or more models. ``models`` maps a label to a function of a
    DataFrame with columns ``conc`` and ``state`` that returns the fitted rates (for
    instance an nls fit's ``predict``); each model gets its own line style, drawn in the
    state's colour, or in grey when it gives the same curve for every state."""
    ax = _axes(ax)
    states = _levels(data["state"])
    grid = np.linspace(0, data["conc"].max() * 1.02, points)
    for i, state in enumerate(states):
        part = data[data["state"] == state]
        ax.scatter(part["conc"], part["rate"], s=18, color=f"C{i}", zorder=3, label=state)
    for style, model in zip(LINESTYLES, models.values()):
        curves = [np.asarray(model(pd.DataFrame({
            "conc": grid, "state": pd.Categorical([state] * points, categories=states)})),
            dtype=float) for state in states]
        if all(np.allclose(curve, curves[0]) for curve in curves):  # one curve for all
            ax.plot(grid, curves[0], color="0.35", ls=style, lw=1.3)
            continue
        for i, curve in enumerate(curves):
            ax.plot(grid, curve, color=f"C{i}", ls=style, lw=1.3)
    state_legend = ax.legend(title="state", frameon=False, loc="lower right")
    ax.add_artist(state_legend)
    handles = [plt.Line2D([], [], color="0.3", ls=style, lw=1.3)
               for style, _ in zip(LINESTYLES, models)]
    ax.legend(handles, list(models), title="fitted", frameon=False, loc="upper left",
              fontsize="small", title_fontsize="small")
    ax.set(xlabel="Substrate concentration (ppm)",
           ylabel="Reaction velocity (counts/min/min)")
    ax.grid(alpha=0.3)
    return ax
