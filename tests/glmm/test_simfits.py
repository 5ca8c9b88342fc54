"""The chapter's other fits of sim_data (8.4.4-8.4.8): GEE as gee::gee and geepack::geeglm
against R's full-precision references (1e-4 relative, robust SEs included), hglm's EQL fit
and glmmML's Laplace fit against the chapter's printout (half a unit in the last printed
digit), and the Monte Carlo likelihood approximation of the glmm package within its Monte
Carlo error."""

import numpy as np
import pandas as pd
import pytest

from companion.gee.estimating import gee_fit
from companion.glmm.ghq import glmmml
from companion.glmm.hglm import hglm
from companion.glmm.mcla import mcla
import companion
from reference import load, load_local, values

FORMULA = "y ~ x1 + x2 + offset(log(o)) + (1 | g)"
NAMES = ["(Intercept)", "x1", "x2"]
RTOL = 1e-4  # the tolerance for the GEE references



def _printed(value, printed: str, unit: float | None = None):
    """|value - printed| within half a unit of the printed last digit (``unit`` for numbers
    R printed to fewer significant digits than their integer part, such as 2770)."""
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    unit = 10.0**-decimals if unit is None else unit
    assert abs(value - float(printed)) <= 0.5 * unit + 1e-12, (value, printed)


def _vector(entry: dict) -> np.ndarray:
    return np.array([entry[name] for name in NAMES])


# --- GEE ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gee(sim):
    return gee_fit("y ~ x1 + x2", sim, groups="g", offset="log(o)", style="gee")


@pytest.fixture(scope="module")
def geepack(sim):
    return gee_fit("y ~ x1 + x2", sim, groups="g", offset="log(o)", style="geepack")


@pytest.mark.parametrize(("ours", "quantity"), [("fixef", "coef"), ("naive_se", "naive_se"),
                                                ("se", "robust_se")])
def test_gee_matches_r(gee, ours, quantity):
    ref = load("simdata_gee_exchangeable")
    np.testing.assert_allclose(getattr(gee, ours)[NAMES].to_numpy(), _vector(ref[quantity]),
                               rtol=RTOL)


def test_gee_scale_alpha_iterations(gee):
    ref = load("simdata_gee_exchangeable")
    assert gee.scale == pytest.approx(ref["scale"], rel=RTOL)
    assert gee.alpha == pytest.approx(ref["working_correlation_alpha"], rel=RTOL)
    assert gee.iterations == ref["iterations"] == 3
    np.testing.assert_allclose(gee.vcov.to_numpy(), np.array(ref["robust_variance"]["values"]),
                               rtol=RTOL)


def test_gee_offset_in_formula_is_the_same(sim, gee):
    other = gee_fit("y ~ x1 + x2 + offset(log(o))", sim, groups=sim["g"], style="gee")
    np.testing.assert_allclose(other.fixef, gee.fixef, rtol=1e-12)


@pytest.mark.parametrize(("ours", "quantity"), [("fixef", "coef"), ("se", "robust_se")])
def test_geeglm_matches_r(geepack, ours, quantity):
    ref = load("simdata_geeglm_exchangeable")
    np.testing.assert_allclose(getattr(geepack, ours)[NAMES].to_numpy(),
                               _vector(ref[quantity]), rtol=RTOL)


def test_geeglm_scale_alpha_and_their_ses(geepack):
    ref = load("simdata_geeglm_exchangeable")
    assert geepack.scale == pytest.approx(ref["scale"]["(Intercept)"], rel=RTOL)
    assert geepack.alpha == pytest.approx(ref["alpha"]["alpha"], rel=RTOL)
    assert geepack.scale_se == pytest.approx(ref["scale_se"], rel=RTOL)
    assert geepack.alpha_se == pytest.approx(ref["alpha_se"], rel=RTOL)
    np.testing.assert_allclose(geepack.wald[NAMES].to_numpy(), _vector(ref["wald"]), rtol=RTOL)


def test_the_two_estimators_differ_beyond_the_tolerance(gee, geepack):
    """gee divides by N - p and pairs - p, geepack by N and pairs: the packages' answers
    differ by more than the 1e-4 the comparisons use, so each must be matched on its own."""
    assert abs(gee.scale / geepack.scale - 1) > 5 * RTOL
    assert abs(gee.alpha / geepack.alpha - 1) > 5 * RTOL
    assert abs(gee.fixef["(Intercept)"] / geepack.fixef["(Intercept)"] - 1) > 2 * RTOL


def test_gee_bad_input(sim):
    with pytest.raises(ValueError, match="style"):
        gee_fit("y ~ x1", sim, groups="g", style="geese")
    with pytest.raises(ValueError, match="not a column"):
        gee_fit("y ~ x1", sim, groups="cluster")
    with pytest.raises(ValueError, match="contiguous"):
        gee_fit("y ~ x1", sim.sample(frac=1, random_state=1), groups="g")
    with pytest.raises(ValueError, match="random-effects"):
        gee_fit("y ~ x1 + (1 | g)", sim, groups="g")
    bad = sim.assign(y=sim.y - 100)
    with pytest.raises(ValueError, match="non-negative"):
        gee_fit("y ~ x1", bad, groups="g")
    with pytest.raises(ValueError, match="labels"):
        gee_fit("y ~ x1", sim, groups=np.arange(10))


# --- hglm (8.4.4) ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def hglm_fit(sim):
    return hglm(FORMULA, sim, "poisson")


def test_hglm_fixed_effects_as_printed(hglm_fit):
    for name, est, se in [("(Intercept)", "0.55720", "0.13058"), ("x1", "0.28442", "0.01316"),
                          ("x2", "0.20851", "0.01330")]:
        _printed(hglm_fit.fixef[name], est)
        _printed(hglm_fit.se[name], se)


def test_hglm_random_effects_as_printed(hglm_fit):
    for level, est, se in [("g1", "0.6643", "0.1352"), ("g2", "-0.1421", "0.1402"),
                           ("g3", "0.9560", "0.1344")]:
        _printed(hglm_fit.ranef_values[level], est)
        _printed(hglm_fit.ranef_se[level], se)


def test_hglm_dispersions_as_printed(hglm_fit):
    _printed(hglm_fit.varfix, "1.055997")
    _printed(hglm_fit.log_varfix[0], "0.0545")
    _printed(hglm_fit.log_varfix[1], "0.0284")
    _printed(hglm_fit.varranef[0], "0.4236")
    _printed(hglm_fit.log_varranef[0][0], "-0.8589")
    _printed(hglm_fit.log_varranef[0][1], "0.2895")
    assert hglm_fit.df_resid == 2473
    assert hglm_fit.iterations == 3 and hglm_fit.converged


def test_hglm_bad_input(sim):
    with pytest.raises(ValueError, match="scalar random terms"):
        hglm("y ~ x1 + (x1 | g)", sim, "poisson")


# --- glmmML (8.4.5) -------------------------------------------------------------------

@pytest.fixture(scope="module")
def laplace(sim):
    return glmmml(FORMULA, sim)  # glmmML's default method = "Laplace", the chapter's call


def test_glmmml_as_printed(laplace):
    for name, est, se in [("(Intercept)", "0.556", None), ("x1", "0.284", "0.0128"),
                          ("x2", "0.209", "0.0129")]:
        _printed(laplace.fixef[name], est)
        if se is not None:
            _printed(laplace.se[name], se)
    _printed(laplace.sigma, "0.638")
    _printed(laplace.deviance, "2770", unit=10)  # printed with 3 significant digits
    _printed(laplace.glmmml_aic, "2780", unit=10)
    assert laplace.df_resid == 2496


@pytest.mark.xfail(strict=True, reason="glmmML's own analytic Laplace Hessian: sigma's SE "
                   "0.0865 against 0.0908 from the numerical Hessian of the Laplace "
                   "log-likelihood, and the intercept's 0.1281 against 0.128050 (lme4: 0.12805)")
@pytest.mark.parametrize("which", ["sigma", "(Intercept)"])
def test_glmmml_ses_from_its_analytic_hessian(laplace, which):
    printed = companion.chapter_table("simdata_glmmml").loc[which, "se(coef)"]
    _printed(laplace.sigma_se if which == "sigma" else laplace.se[which], f"{printed:.4f}")


def test_glmmml_intercept_se_near_printed(laplace):
    printed = companion.chapter_table("simdata_glmmml").loc["(Intercept)", "se(coef)"]
    assert laplace.se["(Intercept)"] == pytest.approx(printed, abs=1e-4)


def test_adaptive_ghq_agrees_with_laplace_and_lme4(sim, laplace):
    aghq = glmmml(FORMULA, sim, n_points=8)
    np.testing.assert_allclose(aghq.fixef, laplace.fixef, atol=1e-5)
    # AGQ moves lme4's Laplace logLik by 0.0045 on these data
    assert aghq.loglik == pytest.approx(load("simdata_glmer_laplace")["tight_optimum"]["logLik"],
                                        abs=0.01)


def test_non_adaptive_ghq_with_few_nodes_misses(sim, laplace):
    """Plain Gauss-Hermite around 0 with 8 nodes is far off on 100 counts per cluster."""
    plain = glmmml(FORMULA, sim, n_points=8, adaptive=False)
    assert plain.loglik < laplace.loglik - 50
    assert abs(plain.sigma - laplace.sigma) > 0.1


def test_glmmml_bad_input(sim):
    with pytest.raises(ValueError, match="n_points"):
        glmmml(FORMULA, sim, n_points=0)
    with pytest.raises(ValueError, match="one node"):
        glmmml(FORMULA, sim, n_points=1, adaptive=False)
    with pytest.raises(ValueError, match="one random intercept"):
        glmmml("y ~ x1 + (1 | g) + (1 | o)", sim)


# --- glmm's Monte Carlo likelihood approximation (8.4.6) --------------------------------

@pytest.fixture(scope="module")
def mc(sim):
    return mcla(FORMULA, sim, m=10_000, seed=2023, replicates=5)


def test_mcla_within_monte_carlo_error_of_ml(mc, laplace):
    """Each replicate within 4 Monte Carlo SDs of the ML fit (the chapter's glmm call never
    printed a result for sim_data; lme4's ML fit, refitted tightly, is the target)."""
    ml = load("simdata_glmer_laplace")["tight_optimum"]
    target = pd.Series({**ml["fixef"], "nu": values(ml["theta"])[0] ** 2})
    for column, value in target.items():
        sd = max(mc.mc_sd[column], 1e-5)
        assert np.all(np.abs(mc.replicates[column] - value) <= 4 * sd + 1e-4), column
    assert mc.replicates["nu"].mean() == pytest.approx(laplace.sigma**2, abs=4 * mc.mc_sd["nu"])
    assert mc.ess > 500


def test_mcla_is_reproducible_and_random(sim, mc):
    again = mcla(FORMULA, sim, m=10_000, seed=2023)
    np.testing.assert_allclose(again.fixef, mc.fixef, rtol=1e-10)
    assert mc.mc_sd["(Intercept)"] > 0


def test_mcla_bad_input(sim):
    with pytest.raises(ValueError, match="m must"):
        mcla(FORMULA, sim, m=5)
    with pytest.raises(ValueError, match="replicates"):
        mcla(FORMULA, sim, replicates=0)


# --- MASS::glmmPQL with an offset (not in the chapter; R run locally) --------------------

def test_glmmpql_with_offset_matches_mass(sim):
    """tests/reference/simdata_glmmPQL.R; glmmPQL converges tightly (its lme fits to
    nlme's defaults), so 1e-6 relative, as for cbpp's PQL fit."""
    r = load_local("simdata_glmmPQL")
    fit = companion.glmmpql(FORMULA, sim, family="poisson")
    np.testing.assert_allclose(fit.fixef[NAMES], _vector(r["fixef"]), rtol=1e-6)
    np.testing.assert_allclose(fit.se[NAMES], _vector(r["fixef_se"]), rtol=1e-6)
    assert fit.varcorr.sdcor.iloc[0] == pytest.approx(r["sd_g"], rel=1e-6)
    assert fit.sigma == pytest.approx(r["sigma"], rel=1e-6)
    no_offset = companion.glmmpql("y ~ x1 + x2 + (1 | g)", sim, family="poisson")
    assert no_offset.fixef["(Intercept)"] == pytest.approx(r["without_offset_intercept"],
                                                           rel=1e-6)
