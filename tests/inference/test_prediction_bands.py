"""Population-level confidence bands from ``predict(..., re_form="~0",
interval="confidence")`` against ggeffects 1.2's ``ggpredict(type = "fixed")``
(src/companion/reference/make_inference.R): sleepstudy's line, a partially crossed
design's three conditions, and cbpp's binomial GLMM on the response scale. LMM bands are
held to 1e-5 relative (deterministic fits); the GLMM's to 1e-4, its vcov coming from a
finite-difference Hessian on both sides."""

import numpy as np
import pandas as pd
import pytest

import companion


def _check(band, r, rtol):
    np.testing.assert_allclose(band["fit"], r["predicted"], rtol=rtol)
    np.testing.assert_allclose(band["se_fit"], r["std_error"], rtol=rtol)
    np.testing.assert_allclose(band["lwr"], r["conf_low"], rtol=rtol)
    np.testing.assert_allclose(band["upr"], r["conf_high"], rtol=rtol)


def test_sleepstudy_line_matches_ggpredict():
    r = companion.reference("inference_sleepstudy")["ggpredict"]
    fit = companion.lmer("Reaction ~ Days + (Days | Subject)",
                         companion.load_dataset("sleepstudy"))
    grid = pd.DataFrame({"Days": np.array(r["x"], dtype=float)})
    _check(fit.predict(grid, re_form="~0", interval="confidence"), r, 1e-5)


def test_crossed_design_conditions_match_ggpredict():
    r = companion.reference("inference_crossed")["ggpredict"]
    data = companion.load_dataset("sim_partial_crossed")
    fit = companion.lmer("y ~ cond + (1 | subj) + (1 | item)", data)
    grid = pd.DataFrame({"cond": pd.Categorical(r["x"], categories=["A", "B", "C"])})
    _check(fit.predict(grid, re_form="~0", interval="confidence"), r, 1e-5)


def test_glmm_band_on_the_response_scale_matches_ggpredict():
    r = companion.reference("inference_cbpp_band")["ggpredict"]
    cbpp = companion.load_dataset("cbpp")
    fit = companion.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    grid = pd.DataFrame({"period": pd.Categorical(r["x"], categories=["1", "2", "3", "4"])})
    _check(fit.predict(grid, type="response", re_form="~0", interval="confidence"), r, 1e-4)
    link = fit.predict(grid, re_form="~0", interval="confidence")
    assert np.all(link["lwr"] < link["fit"]) and np.all(link["fit"] < link["upr"])


def test_band_errors_say_what_to_do():
    fit = companion.lmer("Reaction ~ Days + (Days | Subject)",
                         companion.load_dataset("sleepstudy"))
    with pytest.raises(ValueError, match="re_form='~0'"):
        fit.predict(interval="confidence")
    with pytest.raises(ValueError, match="'confidence' or None"):
        fit.predict(re_form="~0", interval="prediction")
    with pytest.raises(ValueError, match="between 0 and 1"):
        fit.predict(re_form="~0", interval="confidence", level=95)
    narrow = fit.predict(re_form="~0", interval="confidence", level=0.5)
    wide = fit.predict(re_form="~0", interval="confidence")
    assert np.all(wide["upr"] - wide["lwr"] > narrow["upr"] - narrow["lwr"])
