"""Linear mixed models beyond the chapter against lme4's tight optimum (the corpus of
``tests/reference/corpus``): crossed, nested, three-level, partially crossed, vector and
uncorrelated terms, ordered factors (R's polynomial contrasts) alone and in
interactions, a contrast matrix of one's own, a singular fit, ML and REML, and a large crossed design. Fixed
effects, their SEs, theta, sigma and the log-likelihood within 1e-5 relative (thetas at
zero, a singular fit's, within 1e-6 absolute)."""

import warnings

import numpy as np
import pytest

from companion.engine.optimize import SingularFitWarning
import companion
from corpus import data_name, fit_arguments, load_data, load_fit

RTOL = 1e-5
LMM_FITS = ["Penicillin_reml_crossed", "Pastes_reml_nested", "Machines_reml_nested",
            "Orthodont_ml_slope", "sleepstudy_reml_uncorr", "sim_school_reml_3level",
            "sim_partial_crossed_ml", "Dyestuff2_reml_singular", "sleepstudy_ml_split",
            "cake_ml_ordered", "sim_ordered_dose_reml", "Machines_reml_contrast_matrix"]


def fit_like_r(name: str):
    r = load_fit(name)
    data = load_data(data_name(r))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = companion.lmer(r["formula"], data, reml=r["REML"], **fit_arguments(r))
    return r, fit, caught


def check_against_tight(fit, r: dict) -> None:
    tight = r["tight_optimum"]
    assert list(fit.fixef.index) == r["X_colnames"]
    np.testing.assert_allclose(fit.fixef, list(tight["fixef"].values()), rtol=RTOL)
    np.testing.assert_allclose(fit.se, list(tight["fixef_se"].values()), rtol=RTOL)
    assert list(fit.theta.index) == list(tight["theta"])
    np.testing.assert_allclose(fit.theta, list(tight["theta"].values()), rtol=RTOL,
                               atol=1e-6)
    np.testing.assert_allclose(fit.sigma, tight["sigma"], rtol=RTOL)
    np.testing.assert_allclose(fit.loglik, tight["logLik"], rtol=RTOL)


@pytest.mark.parametrize("name", LMM_FITS)
def test_lmm_matches_lme4(name):
    r, fit, caught = fit_like_r(name)
    check_against_tight(fit, r)
    singular = [w for w in caught if issubclass(w.category, SingularFitWarning)]
    assert bool(singular) == r["tight_optimum"]["is_singular"], [str(w.message) for w in caught]
    assert fit.nobs == r["nobs"]


@pytest.mark.slow
def test_large_crossed_lmm_matches_lme4():
    """InstEval: 73,421 rows, 2,972 students crossed with 1,128 lecturers and 14
    departments, fitted by ML."""
    r, fit, _ = fit_like_r("InstEval_ml_crossed")
    check_against_tight(fit, r)


def _newdata(r: dict, like):
    """The corpus's new rows, with factor columns as strings (one level is new)."""
    import pandas as pd

    spec = r["newdata_predictions"]["tight_fit"]
    return pd.DataFrame(spec["newdata"]), spec


@pytest.mark.parametrize("name, fitter", [("Orthodont_ml_slope", "lmer"),
                                          ("sim_pois_offset_slope", "glmer")])
def test_predictions_match_lme4(name, fitter):
    """predict() on new rows (one of a level the fit did not see, allowed) against lme4's
    predict() from the same tight fit: link and response scale, with and without the
    random effects (re.form = NA); the fitted values' linear predictor too."""
    r = load_fit(name)
    data = load_data(data_name(r))
    fit = companion.lmer(r["formula"], data, reml=r["REML"]) if fitter == "lmer" else \
        companion.glmer(r["formula"], data, family=r["family"])
    new, spec = _newdata(r, data)
    np.testing.assert_allclose(fit.predict()[:10], r["predict_link_first10"], rtol=1e-4)
    with pytest.raises(ValueError, match="new levels"):
        fit.predict(new)
    for kind in ("link", "response"):
        np.testing.assert_allclose(fit.predict(new, type=kind, allow_new_levels=True),
                                   spec[kind], rtol=1e-5)
        np.testing.assert_allclose(fit.predict(new, type=kind, re_form="~0"),
                                   spec[f"{kind}_re_form_NA"], rtol=1e-5)
