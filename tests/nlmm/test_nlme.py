"""companion.nlme against nlme::nlme (reference JSONs from R 4.2.2, nlme 3.1-162).

Tolerance: 1e-6 relative for everything compared (fixed effects, standard errors as
printed and unadjusted, covariance of the fixed effects, standard deviations, sigma,
log-likelihood, AIC/BIC, random effects, fitted values), ten times tighter than asked:
the fit repeats nlme's steps (EM steps and R's nlm inside PNLS included), and agrees with
R to 5e-8 or better. The number of iterations is nlme's exactly.
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from companion.engine.optimize import ConvergenceWarning
from companion.nlmm.nlme import nlme
from companion.nlmm.nlme_fit import NlmeError, PnlsError
from reference import load, matrix, values

RTOL = 1e-6
MODEL = "height ~ SSasymp(age, Asym, R0, lrc)"
START = {"Asym": 103, "R0": -8.5, "lrc": -3.3}




@pytest.fixture(scope="module")
def nfm2(loblolly):
    return nlme(MODEL, loblolly, random="Asym", groups="Seed", start=START)


@pytest.fixture(scope="module")
def nfm3(loblolly):
    return nlme(MODEL, loblolly, random=["Asym", "lrc"], groups="Seed", start=START,
                cov="diag")


FITS = [("nfm2", "loblolly_nlme_asym"), ("nfm3", "loblolly_nlme_pddiag")]


@pytest.mark.parametrize("fit_name, ref_name", FITS)
def test_estimates_match_nlme(request, fit_name, ref_name):
    fit, ref = request.getfixturevalue(fit_name), load(ref_name)
    assert list(fit.fixef.index) == list(ref["fixef"])
    np.testing.assert_allclose(fit.fixef, values(ref["fixef"]), rtol=RTOL)
    np.testing.assert_allclose(fit.se, values(ref["fixef_se"]), rtol=RTOL)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.vcov)), values(ref["fixef_se_unadjusted"]),
                               rtol=RTOL)
    np.testing.assert_allclose(fit.vcov, matrix(ref["vcov_fixef"]), rtol=RTOL)
    np.testing.assert_allclose(fit.sigma, ref["sigma"], rtol=RTOL)
    np.testing.assert_allclose(fit.loglik, ref["logLik"], rtol=RTOL)
    np.testing.assert_allclose([fit.aic, fit.bic], [ref["AIC"], ref["BIC"]], rtol=RTOL)
    sds = fit.varcorr[fit.varcorr.group == "Seed"].set_index("var1").sdcor
    expected = ref["varcorr"]["Seed"]["sd"]
    np.testing.assert_allclose(sds[list(expected)], values(expected), rtol=RTOL)
    np.testing.assert_allclose(fit.theta, values(ref["modelStruct_coef_unconstrained"]),
                               rtol=RTOL)
    assert list(fit.theta.index) == list(ref["modelStruct_coef_unconstrained"])


@pytest.mark.parametrize("fit_name, ref_name", FITS)
def test_iterations_sizes_and_degrees_of_freedom(request, fit_name, ref_name):
    fit, ref = request.getfixturevalue(fit_name), load(ref_name)
    assert fit.iterations == ref["numIter"]
    assert fit.optimization.converged
    assert fit.nobs == ref["nobs"] and fit.ngroups == ref["ngroups"]
    assert fit.n_params == ref["logLik_df"]
    assert fit.fixef_df.to_dict() == ref["fixef_df"]


@pytest.mark.parametrize("fit_name, ref_name", FITS)
def test_random_effects_fitted_and_residuals(request, fit_name, ref_name):
    fit, ref = request.getfixturevalue(fit_name), load(ref_name)
    ranef, expected = fit.ranef["Seed"], ref["ranef"]["Seed"]
    assert list(ranef.index) == expected["levels"]
    for column in ranef.columns:
        np.testing.assert_allclose(ranef[column], expected[column],
                                   atol=RTOL * np.abs(expected[column]).max())
    np.testing.assert_allclose(fit.fitted, ref["fitted"], rtol=RTOL)
    quartiles = np.quantile(fit.scaled_resid, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(quartiles, values(ref["std_residual_quantiles"]), rtol=RTOL)


# R 4.2.2, nlme 3.1-162 (the reference's versions), run for these tests: update(nfm2, ...)
# with random = Asym + lrc ~ 1 (pdLogChol), and method = "REML"; printed to 17 digits
# (standard deviations from VarCorr(), 8 digits).
R_EXTRA = [
    ({"random": ["Asym", "lrc"]}, 2, -112.12325149725339,
     [101.64118111926233, -8.6395706501240124, -3.234895111666225],
     [2.5583319216375608, 0.28128381908730171, 0.036550917282479285],
     [5.86255879, 0.07513534, 0.63866036175923291], [-0.805]),
    ({"random": "Asym", "method": "REML"}, 2, -117.0970779651386,
     [101.44960001681902, -8.6273307283362133, -3.2337507439334252],
     [2.4616951236912952, 0.31795045437441422, 0.034270168343885132],
     [3.7176316, 0.73205378450547287], []),
    ({"random": ["Asym", "lrc"], "cov": "diag", "method": "REML"}, 3, -115.8033434737867,
     [101.85204527510311, -8.5903886540321732, -3.2401093001784838],
     [2.3239350449414535, 0.3058418829963877, 0.034502006490576997],
     [2.85730325, 0.03514054, 0.7046933601914902], []),
    ({"random": ["Asym", "lrc"], "method": "REML"}, 3, -114.31219132187712,
     [101.64118146359498, -8.6395706121346176, -3.234895116878945],
     [2.5583477574464086, 0.28128397102468816, 0.036551509470010728],
     [5.97022904, 0.07651798, 0.65038042426163445], [-0.805]),
]


@pytest.mark.parametrize("options, iterations, loglik, fixef, se, sds, corr", R_EXTRA)
def test_general_covariance_and_reml_match_nlme(loblolly, options, iterations, loglik,
                                                fixef, se, sds, corr):
    fit = nlme(MODEL, loblolly, groups="Seed", start=START, **options)
    assert fit.iterations == iterations
    np.testing.assert_allclose(fit.loglik, loglik, rtol=RTOL)
    np.testing.assert_allclose(fit.fixef, fixef, rtol=RTOL)
    np.testing.assert_allclose(fit.se, se, rtol=RTOL)
    np.testing.assert_allclose(fit.varcorr[fit.varcorr.var2.isna()].sdcor, sds, rtol=RTOL)
    np.testing.assert_allclose(fit.varcorr[fit.varcorr.var2.notna()].sdcor, corr, atol=5e-4)


# summary(nfm2) as R prints it (trailing blanks dropped), less its "  Data: Loblolly".
R_SUMMARY = """\
Nonlinear mixed-effects model fit by maximum likelihood
  Model: height ~ SSasymp(age, Asym, R0, lrc)
       AIC      BIC    logLik
  239.4856 251.6397 -114.7428

Random effects:
 Formula: Asym ~ 1 | Seed
            Asym  Residual
StdDev: 3.650642 0.7188625

Fixed effects:  Asym + R0 + lrc ~ 1
         Value Std.Error DF   t-value p-value
Asym 101.44960 2.4616951 68  41.21128       0
R0    -8.62733 0.3179505 68 -27.13420       0
lrc   -3.23375 0.0342702 68 -94.36052       0
 Correlation:
    Asym   R0
R0   0.704
lrc -0.908 -0.827

Standardized Within-Group Residuals:
        Min          Q1         Med          Q3         Max
-2.23601930 -0.62380854  0.05917466  0.65727206  1.95794425

Number of Observations: 84
Number of Groups: 14"""


def test_summary_is_laid_out_as_r_prints_it(nfm2):
    assert [line.rstrip() for line in str(nfm2).splitlines()] == R_SUMMARY.splitlines()


def test_summary_of_diagonal_and_general_covariances(nfm3, loblolly):
    lines = str(nfm3).splitlines()
    start = lines.index("Random effects:")
    assert lines[start + 1:start + 6] == [
        " Formula: list(Asym ~ 1, lrc ~ 1)", " Level: Seed", " Structure: Diagonal",
        "            Asym        lrc  Residual", "StdDev: 2.806185 0.03449969 0.6920003"]
    full = nlme(MODEL, loblolly, random=["Asym", "lrc"], groups="Seed", start=START)
    lines = [line.rstrip() for line in str(full).splitlines()]
    start = lines.index("Random effects:")
    assert lines[start + 3:start + 5] == [
        " Structure: General positive-definite, Log-Cholesky parametrization",
        "         StdDev     Corr"]
    # R prints 5.86255879: the last digit is 2e-9 below ours, beyond the fit's agreement
    assert re.fullmatch(r"Asym     5\.862558(79|8\d) Asym", lines[start + 5])
    assert lines[start + 6:start + 8] == ["lrc      0.07513534 -0.805",
                                          "Residual 0.63866036"]


@pytest.mark.parametrize("fit_name, ref_name", FITS)
def test_chapter_printed_numbers_appear_in_the_summary(request, fit_name, ref_name):
    text = str(request.getfixturevalue(fit_name))
    for item in load(ref_name)["chapter_printed_check"]["items"]:
        assert item["printed"] in text, item["quantity"]


def test_html_summary_and_tables(nfm3):
    html = nfm3._repr_html_()
    assert "Fixed effects:  Asym + R0 + lrc ~ 1" in html and "<table" in html
    assert list(nfm3.varcorr.group) == ["Seed", "Seed", "Residual"]  # no covariance: pdDiag


def test_predictions(nfm2, loblolly):
    np.testing.assert_allclose(nfm2.predict(loblolly, re=True), nfm2.fitted, rtol=1e-12)
    population = nfm2.predict(loblolly.head(6), re=False)
    asym, r0, lrc = nfm2.fixef
    expected = asym + (r0 - asym) * np.exp(-np.exp(lrc) * loblolly.age.head(6))
    np.testing.assert_allclose(population, expected, rtol=1e-12)
    new_seed = loblolly.head(6).assign(Seed="new")  # unknown group: random effect 0
    np.testing.assert_allclose(nfm2.predict(new_seed), expected, rtol=1e-12)


def test_likelihood_ratio_between_the_chapters_fits(nfm2, nfm3):
    table = nfm2.anova(nfm3)
    assert list(table.npar) == [5, 6]
    np.testing.assert_allclose(table.Chisq.iloc[1], 2 * (nfm3.loglik - nfm2.loglik))


def test_row_order_does_not_matter(loblolly, nfm2):
    shuffled = loblolly.sample(frac=1, random_state=1)
    fit = nlme(MODEL, shuffled, random="Asym", groups="Seed", start=START)
    np.testing.assert_allclose(fit.fixef, nfm2.fixef, rtol=1e-10)
    np.testing.assert_allclose(fit.fitted.sort_index(), nfm2.fitted, rtol=1e-10)


# --- errors --------------------------------------------------------------------------------

@pytest.mark.parametrize("start, match", [
    ({"Asym": 103, "R0": -8.5}, r"missing \['lrc'\]"),
    ({**START, "scal": 1.0}, r"not parameters: \['scal'\]"),
    ({"Asym": 103, "R0": -8.5, "lrk": -3.3}, r"missing \['lrc'\]; not parameters: \['lrk'\]"),
    ({**START, "lrc": np.nan}, "must be finite"),
])
def test_start_must_name_every_parameter(loblolly, start, match):
    with pytest.raises(ValueError, match=match):
        nlme(MODEL, loblolly, random="Asym", groups="Seed", start=start)


def test_start_must_be_a_mapping(loblolly):
    with pytest.raises(TypeError, match="start must map each parameter"):
        nlme(MODEL, loblolly, random="Asym", groups="Seed", start=[103, -8.5, -3.3])


@pytest.mark.parametrize("random, match", [
    ("asym", r"\['asym'\] are not parameters of the model"),
    ([], "names no parameter"),
    (["Asym", "Asym"], "names a parameter twice"),
])
def test_random_effects_must_be_parameters(loblolly, random, match):
    with pytest.raises(ValueError, match=match):
        nlme(MODEL, loblolly, random=random, groups="Seed", start=START)


def test_groups_must_be_a_column(loblolly):
    with pytest.raises(KeyError, match="column 'seed' is not in the data"):
        nlme(MODEL, loblolly, random="Asym", groups="seed", start=START)


@pytest.mark.parametrize("column", ["height", "age", "Seed"])
def test_missing_values_stop_the_fit(loblolly, column):
    data = loblolly.copy()
    data.loc[5, column] = np.nan
    with pytest.raises(ValueError, match=rf"missing values in the model's columns: {column} \(1\)"):
        nlme(MODEL, data, random="Asym", groups="Seed", start=START)


def test_model_not_finite_at_start(loblolly):
    with pytest.raises(ValueError, match="not finite at the starting values in 14 rows"):
        nlme("height ~ SSmicmen(age, Vm, K)", loblolly, random="Vm", groups="Seed",
             start={"Vm": 100, "K": -3})


def test_non_convergence_warns_with_the_criterion(loblolly):
    with pytest.warns(ConvergenceWarning, match=r"did not converge in 1 iterations: the last "
                      r"relative changes were fixed 0\.0205, reStruct 0\.0271"):
        fit = nlme(MODEL, loblolly, random="Asym", groups="Seed", start=START, max_iter=1)
    assert not fit.optimization.converged


@pytest.mark.parametrize("lrc", [-50, 3])
def test_singular_linearization_is_an_error(loblolly, lrc):
    """At lrc = -50 the curve is flat (no derivative in Asym), at 3 it has reached its
    asymptote at every age (none in R0 and lrc)."""
    with pytest.raises(NlmeError, match="singular in iteration 1"):
        nlme(MODEL, loblolly, random="Asym", groups="Seed", start={**START, "lrc": lrc})


def test_pnls_failure_is_an_error(loblolly):
    data = loblolly.assign(height=loblolly.height * np.where(loblolly.age > 12, -1, 1))
    with warnings.catch_warnings(), pytest.raises(PnlsError, match="step halving factor"):
        warnings.simplefilter("ignore")
        nlme(MODEL, data, random="Asym", groups="Seed", start=START)


@pytest.mark.parametrize("options, match", [
    ({"cov": "pdDiag"}, "cov must be 'full'"), ({"method": "reml"}, "method must be"),
])
def test_options_are_checked(loblolly, options, match):
    with pytest.raises(ValueError, match=match):
        nlme(MODEL, loblolly, random="Asym", groups="Seed", start=START, **options)


def test_data_must_be_a_data_frame(loblolly):
    with pytest.raises(TypeError, match="pandas DataFrame"):
        nlme(MODEL, loblolly.to_dict("list"), random="Asym", groups="Seed", start=START)


def test_categorical_groups_keep_their_order_and_plain_ones_are_sorted(loblolly, nfm2):
    plain = loblolly.assign(Seed=loblolly.Seed.astype(str))
    fit = nlme(MODEL, plain, random="Asym", groups="Seed", start=START)
    assert list(fit.ranef["Seed"].index) == sorted(nfm2.ranef["Seed"].index)
    pd.testing.assert_frame_equal(fit.ranef["Seed"].sort_index(),
                                  nfm2.ranef["Seed"].sort_index(), rtol=1e-10)


@pytest.mark.parametrize("q, diag", [(1, False), (2, True), (3, False)])
@pytest.mark.parametrize("reml", [False, True])
def test_linearized_model_gradient_is_exact(q, diag, reml):
    from companion.nlmm.nlme_lmm import CovarianceForm, LinearizedLmm

    rng = np.random.default_rng(q)
    X, Z, w = rng.normal(size=(60, 3)), rng.normal(size=(60, q)), rng.normal(size=60)
    lmm = LinearizedLmm(X, Z, w, np.arange(0, 60, 6), CovarianceForm(q, diag))
    x = 0.3 * rng.normal(size=lmm.form.n_parameters)
    steps = 1e-6 * np.eye(len(x))
    central = [(lmm.deviance(lmm.solve(x + h), reml) - lmm.deviance(lmm.solve(x - h), reml))
               / 2e-6 for h in steps]
    np.testing.assert_allclose(lmm.gradient(lmm.solve(x), reml), central, atol=1e-6)
