"""Satterthwaite's degrees of freedom against lmerTest 3.1 (``coef(summary(fit, ddf =
"Satterthwaite"))``; tests/reference/ddf, made by its make_ddf.R from the corpus's data):
sleepstudy by REML and with uncorrelated terms by ML, a crossed design, a three-level
nested one with a random slope, and nested factors. Every column within 1e-4 relative:
both sides differentiate numerically with errors near 1e-7 (Richardson's extrapolation
here, numDeriv there), and the p-values, as small as 1e-17, move with the df."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import companion
from corpus import load_data

DDF = Path(__file__).resolve().parents[1] / "reference" / "ddf"
MODELS = sorted(p.stem for p in DDF.glob("*.json"))


def _fit(name: str):
    r = json.loads((DDF / f"{name}.json").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a singular fit's warning is tested elsewhere
        fit = companion.lmer(r["formula"], load_data(r["data"]), reml=r["REML"])
    return r, fit


@pytest.mark.parametrize("name", MODELS)
def test_satterthwaite_matches_lmertest(name):
    r, fit = _fit(name)
    table = fit.coef_table()  # Satterthwaite by default, as lmerTest's summary
    expected = r["satterthwaite"]
    assert list(table.index) == expected["rownames"]
    assert list(table.columns) == expected["colnames"]
    np.testing.assert_allclose(table.to_numpy(), np.array(expected["values"]), rtol=1e-4)


def test_coef_table_without_df_and_errors():
    r, fit = _fit("sleepstudy_reml_slope")
    plain = fit.coef_table(ddf="none")
    assert list(plain.columns) == ["Estimate", "Std. Error", "t value"]
    np.testing.assert_allclose(plain["t value"], fit.fixef / fit.se)
    with pytest.raises(ValueError, match="'Satterthwaite', 'Kenward-Roger' or 'none'"):
        fit.coef_table(ddf="Kenward")
    cbpp = companion.load_dataset("cbpp")
    glmm = companion.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    wald = glmm.coef_table()  # a GLMM's table is lme4's: Wald z tests, no df
    assert list(wald.columns) == ["Estimate", "Std. Error", "z value", "Pr(>|z|)"]
    with pytest.raises(ValueError, match="linear mixed models"):
        glmm.coef_table(ddf="Satterthwaite")
    assert "t-tests use" not in str(glmm.summary())


def test_summary_defaults_to_satterthwaite_as_lmertest():
    r, fit = _fit("sleepstudy_reml_slope")
    summary = fit.summary()
    assert summary.coefficients.equals(fit.coef_table())
    text = str(summary)
    assert "t-tests use Satterthwaite's method" in text and "Pr(>|t|)" in text
    assert "Kenward-Roger's method" in str(fit.summary(ddf="Kenward-Roger"))
    plain = str(fit.summary(ddf="none"))
    assert plain == str(fit) and "Pr(>|t|)" not in plain
    assert "<table" in summary._repr_html_()
