"""The rows of estimates and intervals the comparison figures draw (companion.intervals)."""

import numpy as np
import pandas as pd
import pytest

from companion.compare import intervals
import companion


def test_wald_and_fit_rows(cbpp):
    fit = companion.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    rows = intervals.table(intervals.fit_rows("Laplace", fit, "SD of herd", (0.1, 0.9)))
    assert list(rows["quantity"]) == [*fit.fixef.index, "SD of herd"]
    fixed = rows.set_index("quantity").loc[fit.fixef.index]
    np.testing.assert_allclose(fixed["high"] - fixed["estimate"], 1.959964 * fit.se, rtol=1e-6)
    assert rows.iloc[-1][["estimate", "low", "high"]].tolist() == pytest.approx(
        [fit.varcorr.sdcor.iloc[0], 0.1, 0.9])
    sd, se, low, high = intervals.sd_wald_log(fit)
    assert low < sd < high and np.log(high / sd) == pytest.approx(1.959964 * se / sd, rel=1e-6)


def test_draw_and_inla_rows():
    draws = {"a": np.arange(1001.0)}
    assert intervals.draw_rows("m", draws) == [("m", "a", 500.0, 25.0, 975.0)]
    columns = ["mean", "sd", "0.025quant", "0.5quant", "0.975quant", "mode"]
    fit = type("Fit", (), {
        "fixed": pd.DataFrame([[0, 1, -2, 0.5, 2, 0]], index=["b"], columns=columns),
        "hyperpar": pd.DataFrame([[4, 1, 1, 4, 16, 4]], index=["Precision for g"],
                                 columns=columns)})()
    rows = intervals.inla_rows(fit, "SD of g")
    assert rows[0] == ("INLA", "b", 0.5, -2, 2)
    # SD = precision^-1/2: the precision's upper quantile gives the SD's lower limit
    assert rows[1] == ("INLA", "SD of g", 0.5, 0.25, 1.0)
