"""Figures of the simulation page (section 8.4): conditional against marginal means."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from numpy.polynomial.hermite_e import hermegauss

_LINKS = {"log": np.exp, "logit": lambda eta: 1 / (1 + np.exp(-eta))}


def marginal_mean(eta: np.ndarray, sd: float, link: str, nodes: int = 40) -> np.ndarray:
    """E over u ~ N(0, sd^2) of linkinv(eta + u), by Gauss-Hermite quadrature."""
    z, w = hermegauss(nodes)
    inverse = _LINKS[link]
    return inverse(np.asarray(eta)[..., None] + sd * z) @ (w / w.sum())


def marginal_vs_conditional(panels, x_range: tuple[float, float] = (-3.0, 3.0)):
    """One panel per ``(title, link, intercept, slope, sd)``: the mean response against x
    for typical groups (u at the 10% and 90% quantiles, thin; u = 0, dashed) and averaged
    over the groups (the population-averaged, marginal curve, thick)."""
    x = np.linspace(*x_range, 121)
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6),
                             layout="constrained", squeeze=False)
    for ax, (title, link, intercept, slope, sd) in zip(axes[0], panels):
        inverse = _LINKS[link]
        eta = intercept + slope * x
        for q in (-1.2816, 0.0, 1.2816):
            ax.plot(x, inverse(eta + q * sd), color="C0", lw=0.8,
                    ls="--" if q == 0 else "-",
                    label="a group with u = 0 (conditional)" if q == 0 else
                    ("groups at u = 10% / 90% quantiles" if q > 0 else None))
        ax.plot(x, marginal_mean(eta, sd, link), color="C3", lw=2.2,
                label="average over groups (marginal)")
        ax.set(title=title, xlabel="x", ylabel="mean of y" if link == "log" else "P(y = 1)")
        if link == "log":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="upper left")
    return axes
