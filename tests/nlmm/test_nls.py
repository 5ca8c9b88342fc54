"""``companion.nls`` against R's ``nls()`` (reference JSONs from R 4.2.2, stats).

Tolerances. R stops when the relative offset (Bates & Watts) is below 1e-5; ours iterates on
to 1e-10. To first order R is then one Gauss-Newton step from the optimum, and that step is
at most ``finTol * sqrt(n - p)`` standard errors in each coordinate (Cauchy-Schwarz), so the
estimates are compared at twice that (observed: up to 1.2 times; 1e-5 relative at most).
The standard errors and fitted values move with the estimates: 1e-5 relative (observed
4e-6). The RSS is stationary at the optimum, so R's early stop shows in it, sigma, logLik,
AIC and BIC only at second order: 1e-9 relative (observed 1e-10).
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from companion.nlmm.nls import NlsResult, nls
import companion
from reference import load, values

MICMEN = "rate ~ SSmicmen(conc, Vm, K)"
ON_VM = 'rate ~ (Vm + delV * (state == "treated")) * conc/(K + conc)'
ON_VM_K = ('rate ~ (Vm + delV * (state == "treated")) * conc/'
           '(K + delK * (state == "treated") + conc)')
PLAIN = "rate ~ Vm * conc / (K + conc)"



@pytest.fixture(scope="module")
def seed329():
    lob = companion.load_dataset("Loblolly")
    return lob[lob.Seed == "329"]


@pytest.fixture(scope="module")
def all_fits(puromycin, seed329):
    treated, untreated = (puromycin[puromycin.state == s] for s in ("treated", "untreated"))
    return {
        "loblolly_nls_seed329": nls("height ~ SSasymp(age, Asym, R0, lrc)", seed329),
        "puromycin_nls_treated": nls(MICMEN, treated),
        "puromycin_nls_untreated": nls(MICMEN, untreated),
        "puromycin_nls_state_on_Vm": nls(ON_VM, puromycin, dict(Vm=160, delV=50, K=0.05)),
        "puromycin_nls_state_on_Vm_and_K": nls(ON_VM_K, puromycin,
                                               dict(Vm=160, delV=50, K=0.05, delK=0.01)),
    }



NAMES = ["loblolly_nls_seed329", "puromycin_nls_treated", "puromycin_nls_untreated",
         "puromycin_nls_state_on_Vm", "puromycin_nls_state_on_Vm_and_K"]


@pytest.mark.parametrize("name", NAMES)
def test_against_r(all_fits, name):
    fit, r = all_fits[name], load(name)
    assert list(fit.fixef.index) == list(r["coef"])
    assert (fit.nobs, len(fit.fixef), fit.df) == (r["nobs"], *r["df"])
    one_step = 2 * r["convInfo"]["finTol"] * np.sqrt(fit.df) * values(r["se"])
    assert np.all(np.abs(fit.fixef - values(r["coef"])) <= one_step)
    np.testing.assert_allclose(fit.se, values(r["se"]), rtol=1e-5)
    np.testing.assert_allclose(fit.fitted, r["fitted"], rtol=1e-5)
    np.testing.assert_allclose(fit.vcov, np.array(r["vcov"]["values"]), rtol=2e-5)
    for ours, theirs in [(fit.sigma, "sigma"), (fit.rss, "RSS"), (fit.loglik, "logLik"),
                         (fit.aic, "AIC"), (fit.bic, "BIC")]:
        np.testing.assert_allclose(ours, r[theirs], rtol=1e-9, err_msg=theirs)


@pytest.mark.parametrize("name", NAMES)
def test_convergence_info_as_r(all_fits, name):
    """R's count of iterations; its tolerance where R iterated too (the self-starting fits
    with 0 iterations report the offset at the start, and ours start closer)."""
    fit, info = all_fits[name], load(name)["convInfo"]
    assert fit.iterations == info["finIter"]
    assert fit.convergence_tolerance <= 1e-5
    if info["finIter"] > 0:
        np.testing.assert_allclose(fit.convergence_tolerance, info["finTol"], rtol=0.05)


def test_converged_beyond_r(puromycin):
    """Started at R's estimates (which are 1e-5 relative off), we end where we did from the
    chapter's start, to 1e-9: the estimates are those of the optimum, not of the start."""
    fit = nls(ON_VM_K, puromycin, dict(Vm=160, delV=50, K=0.05, delK=0.01))
    again = nls(ON_VM_K, puromycin, load("puromycin_nls_state_on_Vm_and_K")["coef"])
    np.testing.assert_allclose(again.fixef, fit.fixef, rtol=1e-9)


def test_summary_as_r(all_fits):
    fit = all_fits["loblolly_nls_seed329"]
    text = str(fit)
    assert text.startswith("Formula: height ~ SSasymp(age, Asym, R0, lrc)\n\nParameters:\n")
    assert "Residual standard error: 0.7493 on 3 degrees of freedom" in text
    assert "Number of iterations to convergence: 0\nAchieved convergence tolerance: " in text
    lines = text.splitlines()
    assert lines[3] == "     Estimate Std. Error t value Pr(>|t|)    "
    assert lines[4] == "Asym  94.1282     8.4030  11.202  0.00153 ** "
    assert lines[7] == "---" and lines[8].startswith("Signif. codes:  0 ‘***’ 0.001 ‘**’")
    assert "Residual standard error: 10.59 on 20 degrees of freedom" in str(
        all_fits["puromycin_nls_state_on_Vm"])
    assert "<2e-16 ***" in str(all_fits["puromycin_nls_state_on_Vm"])
    html = fit._repr_html_()
    assert "<table" in html and "Residual standard error: 0.7493" in html
    assert fit.equation is not None and all_fits["puromycin_nls_state_on_Vm"].equation is None


def test_result_accessors(all_fits, puromycin):
    fit = all_fits["puromycin_nls_state_on_Vm"]
    assert isinstance(fit, NlsResult)
    r = load("puromycin_nls_state_on_Vm")
    np.testing.assert_allclose(fit.t_value, values(r["t_value"]), rtol=1e-4)
    np.testing.assert_allclose(fit.p_value, values(r["p_value"]), rtol=1e-3)
    np.testing.assert_allclose(fit.fitted + fit.resid, puromycin.rate)
    pd.testing.assert_series_equal(fit.predict(puromycin), fit.fitted)
    new = pd.DataFrame({"conc": [0.5, 0.5], "state": ["treated", "untreated"]})
    vm, delv, k = fit.fixef
    np.testing.assert_allclose(fit.predict(new), [(vm + delv) * 0.5 / (k + 0.5),
                                                  vm * 0.5 / (k + 0.5)])


def test_expression_spellings(puromycin, seed329, all_fits):
    """Single quotes as double ones, R's ^ as power, and a self-starting model written out
    (numeric derivatives) gives the analytic fit."""
    start = dict(Vm=160, delV=50, K=0.05)
    single = nls(ON_VM.replace('"', "'"), puromycin, start)
    np.testing.assert_allclose(single.fixef, all_fits["puromycin_nls_state_on_Vm"].fixef)
    written = nls("height ~ Asym + (R0 - Asym) * exp(-exp(lrc) * age)^1", seed329,
                  dict(Asym=90, R0=-8, lrc=-3.2))
    analytic = all_fits["loblolly_nls_seed329"]
    np.testing.assert_allclose(written.fixef, analytic.fixef, rtol=1e-8)
    np.testing.assert_allclose(written.se, analytic.se, rtol=1e-7)


def test_self_start_given_start(seed329, all_fits):
    fit = nls("height ~ SSasymp(age, Asym, R0, lrc)", seed329, dict(Asym=90, R0=-5, lrc=-3))
    np.testing.assert_allclose(fit.fixef, all_fits["loblolly_nls_seed329"].fixef, rtol=1e-8)
    assert fit.iterations > 0


# --- errors --------------------------------------------------------------------------------

@pytest.mark.parametrize("formula, start, message", [
    ("rate ~ SSmicmen(conz, Vm, K)", None, r"data has no column\(s\) \['conz'\]"),
    ("rate ~ Vm * concc / (K + conc)", dict(Vm=200, K=0.1),
     "concc in .*neither a column of data nor a parameter in start"),
    (PLAIN, dict(Vm=200), "K in .*neither a column of data nor a parameter in start"),
    (PLAIN, dict(Vm=200, K=0.1, b=1), r"start names \['b'\], which .* does not use"),
    (PLAIN, dict(Vm=200, K=0.1, conc=1), "conc: both a column of data and a parameter"),
    (PLAIN, None, "not a self-starting model, so start values are needed"),
    ("rate ~ __import__('os').getcwd()", dict(Vm=1), r"getcwd\(\) is not allowed"),
    ("rate ~ conc.__class__", dict(Vm=1), "'conc.__class__' is not allowed"),
    ("rate ~ Vm * conc / (K + conc", dict(Vm=1, K=1), "cannot read"),
    ("log(rate) ~ Vm * conc / (K + conc)", dict(Vm=200, K=0.1), "must be a column name"),
    ("state ~ Vm * conc / (K + conc)", dict(Vm=200, K=0.1), "'state' must be numeric"),
])
def test_formula_and_start_errors(puromycin, formula, start, message):
    with pytest.raises(ValueError, match=message):
        nls(formula, puromycin, start)


@pytest.mark.parametrize("start, message", [
    (dict(Asym=90, R0=-8), r"start must name the parameters .*missing \['lrc'\]"),
    (dict(Asym=90, R0=-8, lrc=-3, b=1), r"not in the formula \['b'\]"),
])
def test_self_start_start_names(seed329, start, message):
    with pytest.raises(ValueError, match=message):
        nls("height ~ SSasymp(age, Asym, R0, lrc)", seed329, start)


def test_missing_values(puromycin):
    holed = puromycin.assign(rate=puromycin.rate.where(puromycin.index != 3))
    with pytest.raises(ValueError, match=r"missing values in \{'rate': 1\}.*dropna"):
        nls(PLAIN, holed, dict(Vm=200, K=0.1))


def test_parameter_not_in_model(puromycin):
    """A misspelt level leaves delV without effect: a zero gradient column, named."""
    with pytest.raises(ValueError, match="singular gradient at the start values: the model "
                                         "does not depend on delV"):
        nls(ON_VM.replace('"treated"', '"treatd"'), puromycin, dict(Vm=160, delV=50, K=0.05))
    with pytest.raises(ValueError, match="singular gradient .* the gradient for b is a "
                                         "combination of the others"):
        nls("rate ~ (a + b) * conc / (K + conc)", puromycin, dict(a=100, b=60, K=0.05))


def test_not_finite_at_start(puromycin):
    with pytest.raises(ValueError, match=r"not finite at the start values \(at row "
                                         r"positions \[0, 1, 12, 13\]\)"):
        nls(PLAIN, puromycin, dict(Vm=200, K=-0.02))


def test_too_few_observations(puromycin):
    with pytest.raises(ValueError, match="2 observations are too few for 2 parameters"):
        nls(PLAIN, puromycin.head(2), dict(Vm=200, K=0.1))


def test_no_convergence(puromycin):
    start = dict(Vm=160, delV=50, K=0.05)  # R converges after 5 iterations
    with pytest.raises(ValueError, match=r"no convergence within maxiter = 2 iterations "
                                         r"\(relative offset now .*, tol = 1e-05\)"):
        nls(ON_VM, puromycin, start, control={"maxiter": 2})
    with pytest.raises(ValueError, match="maxiter = 5"):  # as R: the 5th's offset is unused
        nls(ON_VM, puromycin, start, control={"maxiter": 5})
    assert nls(ON_VM, puromycin, start, control={"maxiter": 6}).iterations == 5
    with pytest.raises(ValueError, match="step factor 0.5 reduced below minFactor = 0.9 "
                                         "after 0 iterations"):
        nls(PLAIN, puromycin, dict(Vm=200, K=5), control={"minFactor": 0.9})
    with pytest.raises(ValueError, match=r"unknown control setting\(s\) \['maxit'\]"):
        nls(PLAIN, puromycin, dict(Vm=200, K=0.1), control={"maxit": 3})


# --- anova: F tests of nested fits ---------------------------------------------------------

def test_anova_as_r(all_fits):
    """R's anova(state_on_Vm, state_on_Vm_and_K), stored with the larger fit's reference.
    The F value is a difference of RSS over a ratio of RSS, each good to 1e-9 (see the
    module docstring): 1e-7 relative."""
    small = all_fits["puromycin_nls_state_on_Vm"]
    big = all_fits["puromycin_nls_state_on_Vm_and_K"]
    r = load("puromycin_nls_state_on_Vm_and_K")["anova_vs_state_on_Vm"]
    table = small.anova(big)
    assert list(table.columns) == ["Res.Df", "Res.Sum Sq", "Df", "Sum Sq", "F value", "Pr(>F)"]
    assert list(table.index) == [1, 2] and table.index.name == "Model"
    assert table["Res.Df"].tolist() == r["res_df"] and table["Df"].iloc[1] == r["df"]
    assert pd.isna(table["Df"].iloc[0]) and table.iloc[0, 3:].isna().all()
    np.testing.assert_allclose(table["Res.Sum Sq"], r["rss"], rtol=1e-9)
    np.testing.assert_allclose(table["Sum Sq"].iloc[1], r["rss"][0] - r["rss"][1], rtol=1e-7)
    np.testing.assert_allclose(table["F value"].iloc[1], r["F"], rtol=1e-7)
    np.testing.assert_allclose(table["Pr(>F)"].iloc[1], r["p_value"], rtol=1e-7)
    assert table.attrs["models"] == {1: small.formula, 2: big.formula}


def test_anova_sequence_and_order(puromycin, all_fits):
    """Three fits: each row tested against the next larger fit, with its own residual mean
    square as the denominator (R's anovalist.nls). Given largest first, the Df and Sum Sq
    turn negative and the F tests are the same."""
    common = nls(MICMEN, puromycin)
    on_vm = all_fits["puromycin_nls_state_on_Vm"]
    on_vm_k = all_fits["puromycin_nls_state_on_Vm_and_K"]
    table = common.anova(on_vm, on_vm_k)
    rss = np.array([common.rss, on_vm.rss, on_vm_k.rss])
    assert table["Res.Df"].tolist() == [21, 20, 19] and table["Df"].tolist()[1:] == [1, 1]
    expected_f = [(rss[0] - rss[1]) / (rss[1] / 20), (rss[1] - rss[2]) / (rss[2] / 19)]
    np.testing.assert_allclose(table["F value"].iloc[1:], expected_f, rtol=1e-12)
    np.testing.assert_allclose(table["Pr(>F)"].iloc[1:],
                               [stats.f.sf(expected_f[0], 1, 20),
                                stats.f.sf(expected_f[1], 1, 19)], rtol=1e-12)
    backwards = on_vm_k.anova(on_vm, common)
    assert backwards["Df"].tolist()[1:] == [-1, -1]
    np.testing.assert_allclose(backwards["Sum Sq"].iloc[1:], -table["Sum Sq"].iloc[1:][::-1])
    np.testing.assert_allclose(backwards["F value"].iloc[1:], table["F value"].iloc[1:][::-1])
    np.testing.assert_allclose(backwards["Pr(>F)"].iloc[1:], table["Pr(>F)"].iloc[1:][::-1])
    same = on_vm.anova(on_vm)  # equal sizes: no test, as R
    assert same["Sum Sq"].iloc[1] == 0 and np.isnan(same["F value"].iloc[1])


def test_anova_refuses_different_rows_or_responses(puromycin, all_fits):
    on_vm = all_fits["puromycin_nls_state_on_Vm"]
    with pytest.raises(ValueError, match=r"different numbers of observations \[23, 12\]"):
        on_vm.anova(all_fits["puromycin_nls_treated"])
    other = nls("conc ~ a + b * rate", puromycin, dict(a=0, b=0.01))
    with pytest.raises(ValueError, match="different responses"):
        on_vm.anova(other)
    with pytest.raises(TypeError, match="compares nls fits"):
        on_vm.anova(companion.load_dataset("Puromycin"))
