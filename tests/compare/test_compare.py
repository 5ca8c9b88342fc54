"""The R-beside-Python tables the book prints."""

import numpy as np
import pytest

import companion
from companion import compare_tight


def test_unknown_reference_lists_the_known_ones():
    with pytest.raises(ValueError, match="no R reference named 'nope'.*sleepstudy_lmer_reml"):
        companion.reference("nope")


def test_table_has_every_printed_number_and_its_difference():
    fit = companion.lmer("Reaction ~ Days + (Days | Subject)",
                         companion.load_dataset("sleepstudy"))
    table = companion.compare_printed("sleepstudy_lmer_reml", companion.fit_quantities(fit))
    printed = companion.reference("sleepstudy_lmer_reml")["chapter_printed_check"]["items"]
    assert list(table.index) == [item["quantity"] for item in printed]
    assert list(table.columns) == ["R (printed)", "R", "Python", "relative difference"]
    assert not table["Python"].isna().any()
    # every number agrees with R's default optimum to 2e-5 relative, or absolute for
    # numbers below 1 (R stops early; see test_lmer)
    difference = (table["Python"] - table["R"]).abs()
    assert (difference <= 2e-5 * np.maximum(table["R"].abs(), 1)).all()
    row = table.loc["fixef_Days"]
    assert row["relative difference"] == pytest.approx(
        (row["Python"] - row["R"]) / abs(row["R"]))


def test_missing_quantity_shows_as_missing():
    table = companion.compare_printed("sleepstudy_lmer_reml", {})
    assert table["Python"].isna().all() and np.isnan(table["relative difference"]).all()


def test_glmm_quantities_and_tight_comparison():
    cbpp = companion.load_dataset("cbpp")
    fit = companion.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    values = companion.fit_quantities(fit)
    assert values["sd_herd"] == fit.varcorr.sdcor.iloc[0]  # a scalar term, named by group
    assert values["deviance"] == pytest.approx(-2 * fit.loglik)
    assert values["df_resid"] == 56 - 5
    table = compare_tight("cbpp_glmer_laplace", fit)
    assert list(table.columns) == ["R (default)", "R (tight)", "Python", "Python - R (tight)"]
    assert table.index[0] == "fixef (Intercept)" and table.index[-1] == "logLik"
    relative = (table["Python - R (tight)"] / table["R (tight)"]).abs()
    assert relative.max() < 1e-5
    assert (table["R (default)"] - table["R (tight)"]).abs().max() > 1e-3  # lme4 stops early
