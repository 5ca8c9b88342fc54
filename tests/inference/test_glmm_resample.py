"""simulate, refit and the parametric bootstrap of glmer fits (lme4's ``simulate``,
``refit`` and ``bootMer`` for binomial and Poisson GLMMs).

The bootstrap is held to lme4's bootMer (tests/reference/boot, by make_boot_glmm.R; 1,000
replicates there, 300 here) within Monte Carlo error: 5 standard errors of the difference
of the two estimates. For the Poisson model, means and SDs; for cbpp, whose period 4 has
few cases, a replicate near separation gives heavy tails, so medians (SE about
``1.2533 s / sqrt(n)``, ``s`` from the interquartile range)."""

import json
from pathlib import Path

import numpy as np
import pytest

import companion
from corpus import load_data

BOOT = Path(__file__).resolve().parents[1] / "reference" / "boot"
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@pytest.fixture(scope="module")
def cbpp_fit():
    return companion.glmer(CBPP, companion.load_dataset("cbpp"))


@pytest.fixture(scope="module")
def poisson_fit():
    return companion.glmer("y ~ x + (1 | g)", load_data("sim_pois_small"), family="poisson")


def test_binomial_draws_are_proportions_of_the_trials(cbpp_fit):
    sims = cbpp_fit.simulate(nsim=50, seed=3)
    trials = cbpp_fit.devfun.design.weights
    assert sims.shape == (56, 50) and list(sims.columns[:2]) == ["sim_1", "sim_2"]
    successes = sims.to_numpy() * trials[:, None]
    np.testing.assert_allclose(successes, np.rint(successes), atol=1e-9)
    assert sims.to_numpy().min() >= 0 and sims.to_numpy().max() <= 1
    np.testing.assert_array_equal(sims, cbpp_fit.simulate(nsim=50, seed=3))


def test_poisson_draws_have_the_models_mean(poisson_fit):
    """Unconditionally ``E y = exp(x'beta + theta^2 / 2)``; given the modes (``use_u``),
    ``E y = mu``, the fitted means. Each checked on the per-simulation average over rows,
    within 5 of its Monte Carlo SEs."""
    design = poisson_fit.devfun.design
    eta = design.X @ poisson_fit.fixef.to_numpy()
    for use_u, expected in ((False, np.exp(eta + poisson_fit.theta.iloc[0] ** 2 / 2)),
                            (True, poisson_fit.fitted.to_numpy())):
        sims = poisson_fit.simulate(nsim=2000, seed=11, use_u=use_u).to_numpy()
        assert np.array_equal(sims, np.rint(sims))
        averages = sims.mean(axis=0)
        se = averages.std(ddof=1) / np.sqrt(len(averages))
        assert abs(averages.mean() - expected.mean()) < 5 * se


def test_refit_to_the_same_response_is_the_fit(cbpp_fit):
    again = cbpp_fit.refit(cbpp_fit.devfun.design.y)
    np.testing.assert_allclose(again.fixef, cbpp_fit.fixef, rtol=1e-6)
    np.testing.assert_allclose(again.loglik, cbpp_fit.loglik, rtol=1e-9)
    with pytest.raises(ValueError, match="56 finite numbers"):
        cbpp_fit.refit(np.zeros(5))


def _robust_sd(t):
    q25, q75 = np.quantile(t, [0.25, 0.75], axis=0)
    return (q75 - q25) / 1.349


@pytest.mark.slow
def test_binomial_bootstrap_agrees_with_bootmer(cbpp_fit):
    r = json.loads((BOOT / "cbpp_bootmer.json").read_text())
    result = companion.bootstrap(cbpp_fit, nsim=300, seed=2024, progress=False)
    assert result.t.shape == (300, 4) and not np.isnan(result.t).any()
    median = np.median(result.t, axis=0)
    r_median = np.array(list(r["boot_median"].values()))
    se = 1.2533 * _robust_sd(result.t) * np.sqrt(1 / 300 + 1 / r["nsim"])
    assert np.all(np.abs(median - r_median) < 5 * se)


@pytest.mark.slow
def test_poisson_bootstrap_agrees_with_bootmer(poisson_fit):
    r = json.loads((BOOT / "sim_pois_small_bootmer.json").read_text())
    result = companion.bootstrap(poisson_fit, nsim=300, seed=2024, progress=False)
    mean, sd = result.t.mean(axis=0), result.t.std(axis=0, ddof=1)
    r_mean = np.array(list(r["boot_mean"].values()))
    r_sd = np.array(list(r["boot_sd"].values()))
    assert np.all(np.abs(mean - r_mean) < 5 * r_sd * np.sqrt(1 / 300 + 1 / r["nsim"]))
    assert np.all(np.abs(sd / r_sd - 1) < 5 * np.sqrt(1 / 600 + 1 / (2 * r["nsim"])))


def test_glmm_replicates_do_not_depend_on_the_workers(poisson_fit):
    one = companion.bootstrap(poisson_fit, nsim=8, seed=9, progress=False)
    two = companion.bootstrap(poisson_fit, nsim=8, seed=9, workers=2, progress=False)
    np.testing.assert_array_equal(one.t, two.t)


def test_families_without_simulation_are_refused():
    gamma = load_data("sim_pois_small").assign(z=lambda d: d["y"] + 0.5)
    fit = companion.glmer("z ~ x + (1 | g)", gamma, family="Gamma", link="log")
    with pytest.raises(ValueError, match="binomial or Poisson"):
        fit.simulate()
    with pytest.raises(ValueError, match="binomial or Poisson"):
        fit.refit(np.ones(fit.nobs))
