"""companion.lmer against lme4's results (reference JSONs from R 4.2.2, lme4 1.1-31).

Tolerances: R's default optimizer stops loosely (the JSONs say by how much); the fits are
compared with R's *tight* optimum (bobyqa, rhoend = 1e-12) at 1e-6 relative for
estimates, standard errors, sigma and the log-likelihood. Quantities R stores only at its
default optimum (variance table, random effects, fitted values) are compared at a
tolerance set by how far that optimum is from the tight one (stated per test).
"""


import numpy as np
import pandas as pd
import pytest

import companion
from reference import load, load_local, matrix

RTOL = 1e-6


@pytest.fixture(scope="module")
def sleep_fit():
    return companion.lmer("Reaction ~ Days + (Days | Subject)",
                          companion.load_dataset("sleepstudy"))


@pytest.fixture(scope="module")
def plant_fit():
    return companion.lmer("weight ~ 1 + (1 | group)", companion.load_dataset("PlantGrowth"))


@pytest.mark.parametrize("fit_name, ref_name", [("sleep_fit", "sleepstudy_lmer_reml"),
                                                ("sleep_fit", "sleepstudy_blmer_nullprior"),
                                                ("plant_fit", "plantgrowth_lmer_reml")])
def test_matches_lme4_tight_optimum(request, fit_name, ref_name):
    fit, tight = request.getfixturevalue(fit_name), load(ref_name)["tight_optimum"]
    np.testing.assert_allclose(fit.fixef, list(tight["fixef"].values()), rtol=RTOL)
    np.testing.assert_allclose(fit.se, list(tight["fixef_se"].values()), rtol=RTOL)
    np.testing.assert_allclose(fit.sigma, tight["sigma"], rtol=RTOL)
    np.testing.assert_allclose(fit.loglik, tight["logLik"], rtol=RTOL)
    np.testing.assert_allclose(fit.reml_criterion, tight["objective"], rtol=RTOL)
    # theta: R's tight value is itself good to ~1e-6 absolute (our deviance is lower)
    np.testing.assert_allclose(fit.theta, list(tight["theta"].values()), atol=1e-6)
    assert list(fit.theta.index) == list(tight["theta"])


@pytest.mark.parametrize("fit_name, ref_name", [("sleep_fit", "sleepstudy_lmer_reml"),
                                                ("plant_fit", "plantgrowth_lmer_reml")])
def test_information_criteria_and_sizes(request, fit_name, ref_name):
    fit, ref = request.getfixturevalue(fit_name), load(ref_name)
    assert fit.nobs == ref["nobs"] and fit.ngroups == ref["ngroups"]
    assert fit.n_params == ref["logLik_df"]
    np.testing.assert_allclose([fit.aic, fit.bic], [ref["AIC"], ref["BIC"]], rtol=1e-7)
    np.testing.assert_allclose(fit.deviance, ref["deviance_ML_at_REML_estimates"], rtol=1e-7)
    assert list(fit.fixef.index) == ref["X_colnames"]
    assert fit.is_singular == ref["is_singular"]


def test_variance_components_and_vcov(sleep_fit):
    """R's default optimum is 9e-6 from the tight one in theta: 1e-4 relative."""
    ref = load("sleepstudy_lmer_reml")
    table = ref["varcorr_table"]
    assert list(sleep_fit.varcorr.group) == table["grp"]
    assert [None if pd.isna(v) else v for v in sleep_fit.varcorr.var1] == table["var1"]
    np.testing.assert_allclose(sleep_fit.varcorr.vcov, table["vcov"], rtol=1e-4)
    np.testing.assert_allclose(sleep_fit.varcorr.sdcor, table["sdcor"], rtol=1e-4)
    np.testing.assert_allclose(sleep_fit.vcov, matrix(ref["vcov_fixef"]), rtol=1e-4)


def test_random_effects_fitted_and_residuals(sleep_fit):
    """Conditional modes, their conditional SDs and fitted values at R's default
    optimum: 1e-4 relative to the largest value."""
    ref = load("sleepstudy_lmer_reml")
    ranef = sleep_fit.ranef["Subject"]
    assert list(ranef.index) == ref["ranef"]["Subject"]["levels"]
    for column in ["(Intercept)", "Days"]:
        expected = np.asarray(ref["ranef"]["Subject"][column])
        np.testing.assert_allclose(ranef[column], expected,
                                   atol=1e-4 * np.abs(expected).max())
    condsd = np.sqrt(np.diagonal(sleep_fit.condvar["Subject"], axis1=1, axis2=2))
    np.testing.assert_allclose(condsd[:, 0], ref["ranef"]["Subject"]["condsd"]["(Intercept)"],
                               rtol=1e-4)
    np.testing.assert_allclose(condsd[:, 1], ref["ranef"]["Subject"]["condsd"]["Days"],
                               rtol=1e-4)
    np.testing.assert_allclose(sleep_fit.fitted, ref["fitted"], rtol=1e-6)
    quantiles = np.quantile(sleep_fit.scaled_resid, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(quantiles, list(ref["scaled_residual_quantiles"].values()),
                               rtol=1e-4)


def test_ml_fit_is_glmmpql_gaussian(sleep_fit):
    """MASS::glmmPQL with the gaussian family is one ML fit of nlme::lme; nlme stops at a
    relative tolerance near 1e-5, so compare at 2e-5. Its printed standard errors carry
    nlme's ML scaling sqrt(N / (N - p))."""
    ml = companion.lmer("Reaction ~ Days + (Days | Subject)",
                        companion.load_dataset("sleepstudy"), reml=False)
    ref = load("sleepstudy_glmmPQL_gaussian")
    assert ml.method == "ML" and ml.reml_criterion is None
    np.testing.assert_allclose(-2 * ml.loglik, ml.deviance, rtol=1e-12)
    np.testing.assert_allclose(ml.fixef, list(ref["fixef"].values()), rtol=1e-9)
    np.testing.assert_allclose(ml.se, list(ref["fixef_se_unadjusted"].values()), rtol=2e-5)
    scale = np.sqrt(ml.nobs / (ml.nobs - len(ml.fixef)))
    np.testing.assert_allclose(ml.se * scale, list(ref["fixef_se"].values()), rtol=2e-5)
    sd = ml.varcorr[ml.varcorr.var2.isna()].set_index(["group", "var1"]).sdcor
    np.testing.assert_allclose([sd["Subject", "(Intercept)"], sd["Subject", "Days"]],
                               list(ref["varcorr"]["Subject"]["sd"].values()), rtol=2e-5)
    np.testing.assert_allclose(ml.sigma, ref["sigma"], rtol=2e-5)
    assert ml.loglik > -sleep_fit.deviance / 2  # the ML optimum beats REML's estimates


def test_printed_summary_reads_like_lme4(sleep_fit):
    text = str(sleep_fit)
    for piece in ["Linear mixed model fit by REML", "REML criterion at convergence: 1743.6",
                  "Subject", "Residual", "Number of obs: 180, groups: Subject, 18",
                  "Fixed effects", "Correlation of Fixed Effects", "(Intr)"]:
        assert piece in text
    html = sleep_fit._repr_html_()
    assert "<table" in html and "Random effects" in html


def test_reml_fit_is_nlme_lme(sleep_fit):
    """nlme::lme fits the same REML model; nlme's optimizer stops at about 2e-5 relative
    in the standard deviations (its logLik agrees with lme4's to 1e-12). nlme's BIC uses
    N - p observations for a REML fit, lme4's N."""
    ref = load("sleepstudy_lme_reml")
    np.testing.assert_allclose(sleep_fit.loglik, ref["logLik"], rtol=1e-9)
    np.testing.assert_allclose(sleep_fit.aic, ref["AIC"], rtol=1e-9)
    n, p = sleep_fit.nobs, len(sleep_fit.fixef)
    nlme_bic = -2 * sleep_fit.loglik + np.log(n - p) * sleep_fit.n_params
    np.testing.assert_allclose(nlme_bic, ref["BIC"], rtol=1e-9)
    sd = sleep_fit.varcorr[sleep_fit.varcorr.var2.isna()].sdcor.to_numpy()
    expected_sd = [*ref["varcorr"]["Subject"]["sd"].values(), ref["sigma"]]
    np.testing.assert_allclose(sd, expected_sd, rtol=2e-5)
    np.testing.assert_allclose(sleep_fit.se, list(ref["fixef_se"].values()), rtol=2e-5)
    for column in ["(Intercept)", "Days"]:
        expected = np.asarray(ref["ranef"]["Subject"][column])
        np.testing.assert_allclose(sleep_fit.ranef["Subject"][column], expected,
                                   atol=1e-4 * np.abs(expected).max())


@pytest.mark.slow
def test_profile_intervals_match_lme4(sleep_fit):
    """lme4's ``confint(fm1)`` for this model, as its documentation prints it (lme4 refits
    by ML and interpolates the profile with splines, so agreement is to about 1e-4)."""
    lme4 = {"sd_(Intercept)|Subject": (14.3814748, 37.715996),
            "cor_Days.(Intercept)|Subject": (-0.4815007, 0.684986),
            "sd_Days|Subject": (3.8011641, 8.753383),
            "sigma": (22.8982669, 28.857997),
            "(Intercept)": (237.6806955, 265.129515),
            "Days": (7.3586533, 13.575919)}
    table = sleep_fit.confint(method="profile")
    for name, (low, high) in lme4.items():
        np.testing.assert_allclose(table.loc[name].to_numpy(), [low, high], rtol=1e-4,
                                   err_msg=name)
    wald = sleep_fit.confint()
    assert (wald.iloc[:, 0] < sleep_fit.fixef).all() and (wald.iloc[:, 1] > sleep_fit.fixef).all()
    with pytest.raises(ValueError, match="'wald', 'profile' or 'boot'"):
        sleep_fit.confint(method="bootstrap")


def test_plantgrowth_random_group_is_nlme_lme(plant_fit):
    """nlme::lme(weight ~ 1, random = ~ 1 | group): the same REML fit (nlme's tolerance,
    2e-5 on the standard deviations; nlme's BIC counts N - p observations)."""
    ref = load("plantgrowth_lme_reml")
    np.testing.assert_allclose(plant_fit.loglik, ref["logLik"], rtol=1e-9)
    np.testing.assert_allclose(plant_fit.aic, ref["AIC"], rtol=1e-9)
    n, p = plant_fit.nobs, len(plant_fit.fixef)
    np.testing.assert_allclose(-2 * plant_fit.loglik + np.log(n - p) * plant_fit.n_params,
                               ref["BIC"], rtol=1e-9)
    np.testing.assert_allclose(plant_fit.fixef, list(ref["fixef"].values()), rtol=1e-9)
    np.testing.assert_allclose(plant_fit.se, list(ref["fixef_se"].values()), rtol=2e-5)
    np.testing.assert_allclose(plant_fit.varcorr.sdcor,
                               [ref["varcorr"]["group"]["sd"]["(Intercept)"], ref["sigma"]],
                               rtol=2e-5)


def test_blmer_without_prior_is_lmer(sleep_fit):
    """blme::blmer(..., cov.prior = NULL) adds nothing to lme4's criterion."""
    ref = load("sleepstudy_blmer_nullprior")
    assert ref["prior_deviance"] == 0
    np.testing.assert_allclose(sleep_fit.reml_criterion, ref["REMLcrit"], rtol=1e-9)


def test_profile_intervals_of_an_intercept_only_model():
    """Profiling the only fixed effect leaves no fixed-effect column. Against lme4's
    confint (tests/reference/plantgrowth_lmer_confint.*, R 4.2.2, lme4 1.1-31 from Debian)
    at 1e-4, since lme4 interpolates its profile with splines."""
    fit = companion.lmer("weight ~ 1 + (1 | group)", companion.load_dataset("PlantGrowth"))
    ci = fit.confint(method="profile")
    r = load_local("plantgrowth_lmer_confint")
    np.testing.assert_allclose(ci.to_numpy(), np.column_stack([r["lower"], r["upper"]]),
                               rtol=1e-4, atol=1e-8)
