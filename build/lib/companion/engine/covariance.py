"""lme4's names for the relative covariance factor's parameters (theta) and its
variance-components table (``as.data.frame(VarCorr(fit))``), shared by every fitter of
lme4's formulation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from companion.engine.design import Design
from companion.engine.profiled import ThetaLayout

VARCORR_COLUMNS = ["group", "var1", "var2", "vcov", "sdcor"]


def theta_names(design: Design) -> list[str]:
    """lme4's names: ``g.(Intercept)``, ``g.Days.(Intercept)``, ``g.Days``."""
    names = []
    for block in design.blocks:
        cols = block.columns
        for j in range(len(cols)):
            for i in range(j, len(cols)):
                names.append(f"{block.group}.{cols[i]}" if i == j
                             else f"{block.group}.{cols[i]}.{cols[j]}")
    return names


def varcorr_table(design: Design, layout: ThetaLayout, theta: np.ndarray,
                  sigma: float) -> pd.DataFrame:
    """lme4's ``as.data.frame(VarCorr(fit))``: variances, then covariances, per term."""
    rows = []
    for block, template in zip(design.blocks, layout.templates(theta)):
        cov = sigma**2 * template @ template.T
        sd = np.sqrt(np.diag(cov))
        cols = block.columns
        for i, name in enumerate(cols):
            rows.append((block.group, name, None, cov[i, i], sd[i]))
        for i in range(len(cols)):
            for j in range(i + 1, len(cols)):
                corr = cov[i, j] / (sd[i] * sd[j]) if sd[i] * sd[j] > 0 else np.nan
                rows.append((block.group, cols[i], cols[j], cov[i, j], corr))
    rows.append(("Residual", None, None, sigma**2, sigma))
    return pd.DataFrame(rows, columns=VARCORR_COLUMNS)
