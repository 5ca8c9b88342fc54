"""The Bayesian fits of section 8.1 (brms and MCMCglmm) against the chapter's printed
posteriors, within Monte Carlo error.

A posterior mean agrees with R's when

    |ours - R| <= SAFETY * sqrt(mcse_ours^2 + mcse_R^2) + half a unit of R's last digit,

with ``mcse_ours`` arviz's MCSE of the mean and ``mcse_R = sd / sqrt(ESS_R)``: for brms
``Est.Error / sqrt(Bulk_ESS)`` as printed; MCMCglmm prints no posterior sd, so ours stands
in (the same posterior) with its printed ``eff.samp``. Each fit is sampled once per module
(4 chains x 1000 draws after 1000 warm-up). Divergences: at most MAX_DIVERGENCES.
"""

import arviz as az
import numpy as np
import pandas as pd
import pytensor.tensor as pt
import pytest
from scipy import stats

import companion
from companion.bayes import models as bayes
from companion.compare.tables import chapter_table
from companion.engine.formula import FormulaError
from companion.results import POSTERIOR_COLUMNS
from posterior_checks import MAX_DIVERGENCES, MAX_RHAT, mcse, tolerance

FORMULA = "Reaction ~ Days + (Days | Subject)"

# The chapter's printouts (companion/reference/chapter_printed.json).
_BRMS = chapter_table("sleepstudy_brms")
BRMS_R = {row: (v["Estimate"], v["Est.Error"], v["Bulk_ESS"]) for row, v in _BRMS.iterrows()}
# MCMCglmm: post.mean, eff.samp, and the decimals printed (2 for G, 3 for the location
# effects); the fixed residual variance ("units") is not sampled.
_MCMCGLMM = chapter_table("sleepstudy_mcmcglmm").drop(index="units")
MCMCGLMM_R = {row: (v["post.mean"], v["eff.samp"], 2 if row.endswith(".Subject") else 3)
              for row, v in _MCMCGLMM.iterrows()}



@pytest.fixture(scope="module")
def brms(sleepstudy):
    return bayes.brms_fit(FORMULA, sleepstudy)


@pytest.fixture(scope="module")
def mcmcglmm(sleepstudy):
    return bayes.mcmcglmm_fit(FORMULA, sleepstudy)




# --- priors and densities, no sampling ------------------------------------------------------

def test_brms_default_priors_are_get_priors(sleepstudy):
    # get_prior(Reaction ~ Days + (Days | Subject), sleepstudy): student_t(3, 288.7, 59.3)
    priors = bayes.brms_default_priors(sleepstudy["Reaction"].to_numpy())
    assert priors == {"location": 288.7, "scale": 59.3}
    assert bayes.brms_default_priors(np.array([0.1, 0.2, 0.4]))["scale"] == 2.5


def test_inverse_wishart_kernel_is_mcmcglmms_parameterisation():
    """MCMCglmm's IW(V, nu) is scipy's invwishart(df=nu, scale=nu V), up to a constant."""
    nu, V = 5.0, np.array([[2.0, 0.3], [0.3, 1.0]])  # noqa: N806
    gs = [np.array([[3.0, -0.4], [-0.4, 0.8]]), np.array([[1.2, 0.5], [0.5, 2.5]])]
    ours = [bayes.inverse_wishart_kernel(pt.as_tensor(np.linalg.cholesky(g)),
                                         pt.as_tensor(np.log(np.diag(np.linalg.cholesky(g)))),
                                         nu, V).eval() for g in gs]
    scipys = [stats.invwishart(df=nu, scale=nu * V).logpdf(g) for g in gs]
    assert ours[0] - ours[1] == pytest.approx(scipys[0] - scipys[1], rel=1e-10)


def test_cholesky_log_jacobian_matches_finite_differences():
    p, rng = 3, np.random.default_rng(1)
    theta = rng.normal(size=p * (p + 1) // 2)
    rows, cols = np.tril_indices(p, -1)

    def vech_g(t):
        chol = np.diag(np.exp(t[:p]))
        chol[rows, cols] = t[p:]
        return (chol @ chol.T)[np.tril_indices(p)]

    step = 1e-6
    jac = np.column_stack([(vech_g(theta + step * e) - vech_g(theta - step * e)) / (2 * step)
                           for e in np.eye(len(theta))])
    expected = np.linalg.slogdet(jac)[1]
    assert bayes.cholesky_log_jacobian(theta[:p], p) == pytest.approx(expected, rel=1e-6)


def test_one_random_term_and_an_intercept_are_required(sleepstudy):
    with pytest.raises(FormulaError, match="exactly one random term"):
        bayes.one_block_design("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
                               sleepstudy)
    with pytest.raises(FormulaError, match="fixed intercept"):
        bayes.one_block_design("Reaction ~ 0 + Days + (Days | Subject)", sleepstudy)


# --- brms -----------------------------------------------------------------------------------

def test_brms_summary_has_brms_layout(brms):
    assert list(brms.summary.index) == list(BRMS_R)
    assert list(brms.summary.columns) == bayes.BRMS_COLUMNS


@pytest.mark.parametrize("row", list(BRMS_R))
def test_brms_posterior_mean_matches_chapter(brms, row):
    estimate, error, ess = BRMS_R[row]
    draws = bayes.brms_draws(brms.idata)[row]
    ours = brms.summary.loc[row, "Estimate"]
    allowed = tolerance(mcse(draws), error, ess, decimals=2)
    assert abs(ours - estimate) <= allowed, f"{row}: {ours:.3f} vs R {estimate}"


def test_brms_converged(brms):
    assert (brms.summary["Rhat"] < MAX_RHAT).all()
    assert int(brms.idata.sample_stats["diverging"].sum()) <= MAX_DIVERGENCES


def test_brms_intercept_is_the_uncentred_one(brms):
    post = brms.idata.posterior
    means = np.arange(10).mean()  # Days 0..9 in every subject
    recovered = post["Intercept"] - means * post["b"].sel(slope="Days")
    np.testing.assert_allclose(post["b_Intercept"], recovered)


def test_same_seed_same_numbers(brms, sleepstudy):
    """A second run (compile and sample, ~7 s once numba's cache is warm) is bit-identical;
    mcmcglmm_fit samples through the same seeded sample_nutpie."""
    again = bayes.brms_fit(FORMULA, sleepstudy)
    pd.testing.assert_frame_equal(again.summary, brms.summary, check_exact=True)


# --- MCMCglmm -------------------------------------------------------------------------------

def test_mcmcglmm_summary_has_mcmcglmm_layout(mcmcglmm):
    names = list(MCMCGLMM_R)
    assert list(mcmcglmm.summary.index) == [*names[:4], "units", *names[4:]]
    assert list(mcmcglmm.summary.columns) == bayes.MCMCGLMM_COLUMNS
    assert mcmcglmm.summary.loc["units"].tolist() == [1.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize("row", list(MCMCGLMM_R))
def test_mcmcglmm_posterior_mean_matches_chapter(mcmcglmm, row):
    mean, ess, decimals = MCMCGLMM_R[row]
    draws = bayes.mcmcglmm_draws(mcmcglmm.idata, "Subject")[row]
    ours = mcmcglmm.summary.loc[row, "post.mean"]
    allowed = tolerance(mcse(draws), draws.std(), ess, decimals)
    assert abs(ours - mean) <= allowed, f"{row}: {ours:.3f} vs R {mean}"


def test_mcmcglmm_converged(mcmcglmm):
    draws = bayes.mcmcglmm_draws(mcmcglmm.idata, "Subject")
    assert all(az.rhat(x) < MAX_RHAT for x in draws.values())
    assert int(mcmcglmm.idata.sample_stats["diverging"].sum()) <= MAX_DIVERGENCES


@pytest.mark.parametrize("fixture", ["brms", "mcmcglmm"])
def test_shared_posterior_names(request, sleepstudy, fixture):
    """Both layouts give the fixed effects' posterior under lme4's names; its mean is the
    summary table's posterior mean of the same rows, and lies within four posterior SDs
    of lme4's estimate for brms (MCMCglmm's residual variance is fixed at 1, another
    model)."""
    fit = request.getfixturevalue(fixture)
    posterior = fit.fixef_posterior
    assert list(posterior.columns) == POSTERIOR_COLUMNS
    assert list(posterior.index) == ["(Intercept)", "Days"]
    rows, column = ((["Intercept", "Days"], "Estimate") if fixture == "brms"
                    else (["(Intercept)", "Days"], "post.mean"))
    np.testing.assert_allclose(fit.fixef, fit.summary.loc[rows, column], rtol=1e-10)
    assert (posterior["2.5%"] < fit.fixef).all() and (fit.fixef < posterior["97.5%"]).all()
    if fixture == "brms":
        lme4 = companion.lmer(FORMULA, sleepstudy).fixef
        assert (np.abs(fit.fixef - lme4) < 4 * posterior["sd"]).all()
