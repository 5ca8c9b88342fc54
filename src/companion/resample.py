"""Responses drawn from a fitted linear mixed model (lme4's ``simulate``): the fixed
part, random effects ``b = Lambda u`` with ``u ~ N(0, sigma^2 I)`` (or the fit's own
conditional modes), and residuals ``N(0, sigma^2 / w)``; an ``offset`` is added back."""

from __future__ import annotations

import numpy as np


def simulate_lmm(deviance, theta: np.ndarray, beta: np.ndarray, sigma: float, nsim: int,
                 seed=None, use_u: bool = False) -> np.ndarray:
    """``n x nsim`` simulated responses of the LMM whose profiled ``deviance`` was fitted
    at ``theta``, with fixed effects ``beta`` and residual SD ``sigma``."""
    if not isinstance(nsim, (int, np.integer)) or nsim < 1:
        raise ValueError(f"nsim must be a positive integer, not {nsim!r}")
    rng = np.random.default_rng(seed)
    design = deviance.design
    fixed = design.offset + design.X @ beta
    templates = deviance.layout.templates(np.asarray(theta, dtype=float))
    modes = deviance.solve(theta).b if use_u else None
    out = np.empty((design.n, nsim))
    for k in range(nsim):
        if use_u:
            b = modes
        else:  # b = Lambda u, term by term: each level's u times the term's template
            b = np.concatenate([
                (sigma * rng.standard_normal((block.n_levels, block.n_columns)) @ T.T).ravel()
                for block, T in zip(design.blocks, templates)])
        noise = sigma * rng.standard_normal(design.n) / np.sqrt(design.weights)
        out[:, k] = fixed + deviance.random_part(b) + noise
    return out
