"""Maps of spatial predictions (exercises 1 and 5), the counterparts of the chapter's
``geom_stars`` plots: a field on a regular grid drawn cell by cell (``pcolormesh``)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def grid_field(table, x: str, y: str, value: str):
    """Turn a long table on a regular grid into ``(xs, ys, field)`` with
    ``field[i, j]`` the value at ``(xs[i], ys[j])`` (NaN where the grid has no row)."""
    xs, xi = np.unique(table[x].to_numpy(), return_inverse=True)
    ys, yi = np.unique(table[y].to_numpy(), return_inverse=True)
    field = np.full((len(xs), len(ys)), np.nan)
    field[xi, yi] = table[value].to_numpy()
    return xs, ys, field


def field_rows(xs, ys, rows, points=None, panel_size=(3.1, 2.7), xlabel="x", ylabel="y"):
    """Rows of maps on the grid ``xs`` x ``ys``; each row shares one colour scale and bar.

    ``rows`` is a list of dicts: ``fields`` (title -> array of shape (len(xs), len(ys))),
    ``label`` (the colour bar's), optional ``cmap`` (default "plasma", the chapter's viridis
    option C), ``symmetric`` (a scale centred on zero, for errors) and ``clip`` (a quantile
    of the row's values at which the scale stops, so that a few extreme cells do not flatten
    the rest; the colour bar then has an arrow). ``points`` (an (n, 2)
    array) are drawn on every panel, e.g. the data locations. Returns the figure.
    """
    ncols = max(len(row["fields"]) for row in rows)
    fig, axes = plt.subplots(len(rows), ncols, squeeze=False, sharex=True, sharey=True,
                             figsize=(panel_size[0] * ncols + 0.9, panel_size[1] * len(rows)),
                             layout="constrained")
    for r, row in enumerate(rows):
        values = np.concatenate([np.ravel(f) for f in row["fields"].values()])
        low, high = np.nanmin(values), np.nanmax(values)
        cmap = row.get("cmap", "plasma")
        extend = "neither"
        if row.get("clip") is not None:
            high = np.nanquantile(values, row["clip"])
            extend = "max"
        if row.get("symmetric"):
            high = np.nanmax(np.abs(values)) if row.get("clip") is None else \
                np.nanquantile(np.abs(values), row["clip"])
            low = -high
            extend = "neither" if row.get("clip") is None else "both"
        image = None
        for c, (title, field) in enumerate(row["fields"].items()):
            ax = axes[r, c]
            image = ax.pcolormesh(xs, ys, np.asarray(field).T, cmap=cmap, vmin=low, vmax=high,
                                  shading="nearest", rasterized=True)
            if points is not None:
                pts = np.asarray(points)
                ax.plot(pts[:, 0], pts[:, 1], "o", ms=2.2, mfc="white", mec="black", mew=0.4)
            ax.set_title(title, fontsize=10)
            ax.set_aspect("equal")
            if r == len(rows) - 1:
                ax.set_xlabel(xlabel)
            if c == 0:
                ax.set_ylabel(ylabel)
        for c in range(len(row["fields"]), ncols):
            axes[r, c].set_visible(False)
        fig.colorbar(image, ax=axes[r, :].tolist(), label=row["label"], shrink=0.9,
                     extend=extend)
    return fig


def prediction_maps(xs, ys, means: dict, sds: dict, points=None, unit: str = "",
                    xlabel="x", ylabel="y"):
    """Two rows of maps: the predicted means (one shared scale) and their standard
    deviations (another), one column per method."""
    suffix = f" ({unit})" if unit else ""
    rows = [{"fields": means, "label": f"predicted height{suffix}", "cmap": "plasma"},
            {"fields": sds, "label": f"standard deviation{suffix}", "cmap": "viridis"}]
    return field_rows(xs, ys, rows, points=points, xlabel=xlabel, ylabel=ylabel)
