"""The numbers of the exercise pages (book/exercises: PlantGrowth, epil, Puromycin) against
R's reference JSONs, for what no other test covers. Already tested elsewhere and not
repeated here: the PlantGrowth lmer fit against lme4's tight optimum and nlme's logLik,
AIC, BIC, fixed effect and SDs (test_lmer.py); the epil glm, glmmPQL, glmer and glmmTMB
REML fits (test_glmer.py); the five Puromycin nls fits and the two-model F test
(test_nls.py).

Tolerances. Deterministic fits at 1e-5 relative or tighter: 1e-9 for least squares in
closed form (the lm, the RSS identities); 1e-6 against lme4's default PlantGrowth fit,
whose theta is within 1.3e-8 of its tight refit (observed 3e-8); 1e-5 against nlme, which
stops earlier (observed 2e-6). The Puromycin parameters are compared with R's nls at 1e-5:
R stops at a relative offset of 1e-5 (observed 2.3e-6). The epil quadrature has no R
reference (GLMMadaptive was not installed), so its test is internal: 11 nodes against 25.
"""

import numpy as np
import pytest
import statsmodels.formula.api as smf
from scipy import stats

import companion
from reference import load, matrix, values

EPIL = "y ~ lbase * trt + lage + V4 + (1 | subject)"
MICMEN = "rate ~ SSmicmen(conc, Vm, K)"
ON_VM = 'rate ~ (Vm + delV * (state == "treated")) * conc / (K + conc)'
ON_VM_K = ('rate ~ (Vm + delV * (state == "treated")) * conc / '
           '(K + delK * (state == "treated") + conc)')




@pytest.fixture(scope="module")
def plant_lm(plant):
    return smf.ols("weight ~ group", plant).fit()


@pytest.fixture(scope="module")
def plant_re(plant):
    return companion.lmer("weight ~ 1 + (1 | group)", plant)




@pytest.fixture(scope="module")
def puromycin_fits(puromycin):
    return {"common": companion.nls(MICMEN, puromycin),
            "on_vm": companion.nls(ON_VM, puromycin, {"Vm": 160, "delV": 50, "K": 0.05}),
            "on_vm_k": companion.nls(ON_VM_K, puromycin,
                                     {"Vm": 160, "delV": 50, "K": 0.05, "delK": 0.01})}


# --- PlantGrowth -----------------------------------------------------------------------------

def test_plantgrowth_lm_as_r(plant_lm):
    """statsmodels' OLS is R's lm: every printed number, at 1e-9 (observed 1e-14). R's
    AIC and BIC count sigma as a parameter, statsmodels' do not."""
    r, fit = load("plantgrowth_lm"), plant_lm
    assert fit.nobs == r["nobs"] and fit.df_resid == r["df_residual"]
    for ours, theirs in [(fit.params, "coef"), (fit.bse, "se"), (fit.tvalues, "t_value"),
                         (fit.pvalues, "p_value")]:
        np.testing.assert_allclose(ours, values(r[theirs]), rtol=1e-9, err_msg=theirs)
    np.testing.assert_allclose(fit.cov_params(), matrix(r["vcov"]), rtol=1e-9)
    k = len(fit.params) + 1
    for ours, theirs in [(np.sqrt(fit.scale), r["sigma"]), (fit.rsquared, r["r_squared"]),
                         (fit.rsquared_adj, r["adj_r_squared"]),
                         (fit.fvalue, r["fstatistic"]["value"]), (fit.ssr, r["RSS"]),
                         (fit.llf, r["logLik"]), (-2 * fit.llf + 2 * k, r["AIC"]),
                         (-2 * fit.llf + np.log(fit.nobs) * k, r["BIC"])]:
        np.testing.assert_allclose(ours, theirs, rtol=1e-9)
    assert (fit.df_model, fit.df_resid) == (r["fstatistic"]["numdf"], r["fstatistic"]["dendf"])
    assert k == r["logLik_df"]


def test_plantgrowth_random_effects_as_lme4(plant_re):
    """What test_lmer.py leaves out: the predicted group effects and their conditional
    SDs, the fitted values, the variance table and the scaled residuals (lme4's default
    fit, 1e-6)."""
    r = load("plantgrowth_lmer_reml")
    ranef = plant_re.ranef["group"]["(Intercept)"]
    assert list(ranef.index) == r["ranef"]["group"]["levels"]
    np.testing.assert_allclose(ranef, r["ranef"]["group"]["(Intercept)"], rtol=1e-6)
    np.testing.assert_allclose(np.sqrt(plant_re.condvar["group"][:, 0, 0]),
                               r["ranef"]["group"]["condsd"]["(Intercept)"], rtol=1e-6)
    np.testing.assert_allclose(plant_re.fitted, r["fitted"], rtol=1e-6)
    np.testing.assert_allclose(plant_re.varcorr.vcov, r["varcorr_table"]["vcov"], rtol=1e-6)
    np.testing.assert_allclose(plant_re.vcov, matrix(r["vcov_fixef"]), rtol=1e-6)
    quantiles = np.quantile(plant_re.scaled_resid, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(quantiles, values(r["scaled_residual_quantiles"]), rtol=1e-6)


def test_plantgrowth_random_effects_as_nlme(plant_re):
    """nlme's predicted group effects, fitted values and variances (1e-5: nlme stops a
    little short of the optimum, observed 2e-6)."""
    r = load("plantgrowth_lme_reml")
    np.testing.assert_allclose(plant_re.ranef["group"]["(Intercept)"],
                               r["ranef"]["group"]["(Intercept)"], rtol=1e-5)
    np.testing.assert_allclose(plant_re.fitted, r["fitted"], rtol=1e-5)
    np.testing.assert_allclose(plant_re.varcorr.vcov,
                               [r["varcorr"]["group"]["variances"]["(Intercept)"],
                                r["residual_variance"]], rtol=1e-5)
    np.testing.assert_allclose(plant_re.vcov, matrix(r["vcov_fixef"]), rtol=1e-5)


def test_plantgrowth_reml_is_the_anova(plant, plant_re):
    """The page's identities for a balanced one-way layout, from R's lm alone: sigma^2 =
    MSW, tau^2 = (MSB - MSW) / n, SE of the intercept = sqrt(MSB / N), shrinkage factor
    1 - 1/F. Exact algebra, so 1e-7 (our REML optimum is good to ~1e-8 in theta)."""
    r = load("plantgrowth_lm")
    n_per_group, nobs = 10, r["nobs"]
    msw = r["RSS"] / r["df_residual"]
    msb = r["fstatistic"]["value"] * msw
    sd = plant_re.varcorr.set_index("group").sdcor
    np.testing.assert_allclose(sd["Residual"] ** 2, msw, rtol=1e-7)
    np.testing.assert_allclose(sd["group"] ** 2, (msb - msw) / n_per_group, rtol=1e-7)
    np.testing.assert_allclose(plant_re.se.iloc[0], np.sqrt(msb / nobs), rtol=1e-7)
    means = plant.groupby("group", observed=True)["weight"].mean()
    grand = plant_re.fixef.iloc[0]
    np.testing.assert_allclose(grand, means.mean(), rtol=1e-12)
    np.testing.assert_allclose(plant_re.ranef["group"]["(Intercept)"] / (means - grand),
                               1 - 1 / r["fstatistic"]["value"], rtol=1e-7)


def test_plantgrowth_exact_theta_interval_brackets_the_estimate(plant_re):
    """The page's exact 95% interval for theta = tau / sigma from F / (1 + n theta^2) ~
    F(2, 27): it holds the REML estimate, and its lower end is above zero exactly when the
    F test rejects at 5%."""
    r = load("plantgrowth_lm")
    f_value, df1, df2 = (r["fstatistic"][k] for k in ("value", "numdf", "dendf"))
    upper_q, lower_q = stats.f.ppf([0.975, 0.025], df1, df2)
    low2, high2 = (f_value / np.array([upper_q, lower_q]) - 1) / 10
    assert low2 > 0 and stats.f.sf(f_value, df1, df2) < 0.025
    assert np.sqrt(low2) < plant_re.theta.iloc[0] < np.sqrt(high2)
    # the point estimate is where the pivot equals 1 (the REML = ANOVA estimate)
    np.testing.assert_allclose(f_value / (1 + 10 * plant_re.theta.iloc[0] ** 2), 1,
                               rtol=1e-7)


# --- epil ------------------------------------------------------------------------------------

def test_epil_glm_deviance_and_overdispersion(epil):
    """The GLM's residual deviance (test_glmer.py checks the estimates, SEs and logLik)
    and the page's overdispersion ratio, deviance / df, against R's."""
    r = load("epil_glm_poisson")
    fit = companion.glm("y ~ lbase * trt + lage + V4", epil, family="poisson")
    np.testing.assert_allclose(fit.deviance, r["deviance"], rtol=1e-9)
    df = fit.nobs - len(fit.fixef)
    assert df == r["df_residual"]
    np.testing.assert_allclose(fit.deviance / df, r["deviance"] / r["df_residual"],
                               rtol=1e-9)
    np.testing.assert_allclose(-2 * fit.loglik + np.log(fit.nobs) * len(fit.fixef), r["BIC"],
                               rtol=1e-9)


def test_epil_reml_bic_and_sd(epil):
    """glmmTMB's BIC and the SD of the patient effects (the rest: test_glmer.py)."""
    r = load("epil_glmmTMB_reml")
    fit = companion.glmer_reml(EPIL, epil, family="poisson")
    np.testing.assert_allclose(fit.bic, r["BIC"], rtol=1e-8)
    np.testing.assert_allclose(fit.varcorr.sdcor.iloc[0],
                               r["varcorr"]["subject"]["sd"]["(Intercept)"], rtol=1e-6)


def test_epil_quadrature_is_converged(epil):
    """No R reference for GLMMadaptive on epil: the page shows ours and checks that 11
    quadrature nodes are enough. 25 nodes change nothing at 1e-5 (observed 3e-7)."""
    eleven = companion.glmer(EPIL, epil, family="poisson", nagq=11)
    more = companion.glmer(EPIL, epil, family="poisson", nagq=25)
    np.testing.assert_allclose(eleven.fixef, more.fixef, rtol=1e-5)
    np.testing.assert_allclose(eleven.se, more.se, rtol=1e-5)
    np.testing.assert_allclose(eleven.theta, more.theta, rtol=1e-5)
    np.testing.assert_allclose(eleven.loglik, more.loglik, rtol=1e-8)


# --- Puromycin -------------------------------------------------------------------------------

def test_puromycin_three_model_anova_from_the_reference_rss(puromycin_fits):
    """The page's anova(common, on Vm, on Vm and K). The last row against the F test
    computed from R's RSS and residual df of the two larger fits; the second against R's
    RSS of the on-Vm fit and ours of the common curve (R has no common fit). RSS are good
    to 1e-9 (test_nls.py), so 1e-7 for the F values and p-values."""
    table = puromycin_fits["common"].anova(puromycin_fits["on_vm"], puromycin_fits["on_vm_k"])
    on_vm, on_vm_k = load("puromycin_nls_state_on_Vm"), load("puromycin_nls_state_on_Vm_and_K")
    (rss1, df1), (rss2, df2) = (on_vm["RSS"], on_vm["df"][1]), (on_vm_k["RSS"], on_vm_k["df"][1])
    assert table["Res.Df"].tolist() == [21, df1, df2]
    f_k = (rss1 - rss2) / (df1 - df2) / (rss2 / df2)
    np.testing.assert_allclose(table.loc[3, "F value"], f_k, rtol=1e-7)
    np.testing.assert_allclose(table.loc[3, "Pr(>F)"], stats.f.sf(f_k, df1 - df2, df2),
                               rtol=1e-7)
    stored = on_vm_k["anova_vs_state_on_Vm"]
    np.testing.assert_allclose([f_k, stats.f.sf(f_k, 1, df2)], [stored["F"], stored["p_value"]],
                               rtol=1e-12)
    rss0 = puromycin_fits["common"].rss
    f_vm = (rss0 - rss1) / (21 - df1) / (rss1 / df1)
    np.testing.assert_allclose(table.loc[2, "F value"], f_vm, rtol=1e-7)
    np.testing.assert_allclose(table.loc[2, "Pr(>F)"], stats.f.sf(f_vm, 21 - df1, df1),
                               rtol=1e-7)


def test_puromycin_common_curve_is_the_written_out_model(puromycin, puromycin_fits):
    """No R reference for the common curve: the self-starting fit must be the optimum that
    the written-out model reaches from another start (1e-8)."""
    written = companion.nls("rate ~ Vm * conc / (K + conc)", puromycin, {"Vm": 150, "K": 0.1})
    np.testing.assert_allclose(puromycin_fits["common"].fixef, written.fixef, rtol=1e-8)
    np.testing.assert_allclose(puromycin_fits["common"].rss, written.rss, rtol=1e-12)


def test_puromycin_joint_model_is_the_separate_fits(puromycin_fits):
    """The page's table: the model with state on Vm and K maps onto R's two separate fits
    (1e-5, R's nls tolerance), and its RSS is the sum of theirs (1e-9)."""
    treated, untreated = load("puromycin_nls_treated"), load("puromycin_nls_untreated")
    vm, delv, k, delk = puromycin_fits["on_vm_k"].fixef
    np.testing.assert_allclose([vm + delv, k + delk, vm, k],
                               [treated["coef"]["Vm"], treated["coef"]["K"],
                                untreated["coef"]["Vm"], untreated["coef"]["K"]], rtol=1e-5)
    np.testing.assert_allclose(puromycin_fits["on_vm_k"].rss,
                               treated["RSS"] + untreated["RSS"], rtol=1e-9)
