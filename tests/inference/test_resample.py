"""simulate() and refit() of lmer fits, as lme4's: refitting the fit's own response gives
the fit back, a new response gives what lmer gives on data holding it, and simulated
responses have the fitted model's moments (within Monte Carlo error) and repeat with
their seed."""

import numpy as np
import pandas as pd
import pytest

import companion

FORMULAS = ["Reaction ~ Days + (Days | Subject)",
            "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)"]


@pytest.fixture(scope="module")
def sleep():
    return companion.load_dataset("sleepstudy")


@pytest.mark.parametrize("formula", FORMULAS)
def test_refit_is_lmer_on_the_new_response(sleep, formula):
    """The refit starts from the fit's theta, lmer from lme4's start: their end points
    agree to the optimizer's own precision (theta to about 1e-7, the criterion to
    1e-12), not to the last digit."""
    fit = companion.lmer(formula, sleep)
    again = fit.refit(sleep.Reaction.to_numpy())
    np.testing.assert_allclose(again.fixef, fit.fixef, rtol=1e-8)
    np.testing.assert_allclose(again.theta, fit.theta, rtol=1e-6, atol=1e-8)
    new = sleep.Reaction.to_numpy() + np.sin(np.arange(len(sleep))) * 20
    refitted = fit.refit(new)
    direct = companion.lmer(formula, sleep.assign(Reaction=new))
    np.testing.assert_allclose(refitted.fixef, direct.fixef, rtol=1e-8)
    np.testing.assert_allclose(refitted.theta, direct.theta, rtol=1e-6, atol=1e-8)
    assert refitted.loglik == pytest.approx(direct.loglik, rel=1e-12)
    ml = refitted.refit_ml()  # an ML refit of the refit keeps its new response
    assert ml.loglik == pytest.approx(
        companion.lmer(formula, sleep.assign(Reaction=new), reml=False).loglik, rel=1e-12)


def test_refit_and_simulate_check_their_input(sleep):
    fit = companion.lmer(FORMULAS[0], sleep)
    with pytest.raises(ValueError, match="180 finite numbers"):
        fit.refit(np.ones(10))
    with pytest.raises(ValueError, match="nsim must be a positive integer"):
        fit.simulate(0)
    # simulate and refit cover lmer and binomial or Poisson glmer fits; a Gamma GLMM is refused
    rng = np.random.default_rng(3)
    group = np.repeat(np.arange(12), 8)
    gamma_data = pd.DataFrame({"g": group, "x": rng.normal(size=group.size)})
    gamma_data["y"] = rng.gamma(4.0, np.exp(0.3 * gamma_data.x + rng.normal(0, 0.3, 12)[group]) / 4)
    glmm = companion.glmer("y ~ x + (1 | g)", gamma_data, family="Gamma", link="log")
    with pytest.raises(ValueError, match="binomial or Poisson"):
        glmm.simulate()
    with pytest.raises(ValueError, match="binomial or Poisson"):
        glmm.refit(gamma_data.y)


@pytest.mark.parametrize("formula", FORMULAS)
def test_simulated_responses_have_the_model_moments(sleep, formula):
    """Unconditional draws: mean X beta and variance diag(Z Lambda Lambda' Z' + I) sigma^2
    per row; conditional draws (use_u): mean the fitted values, variance sigma^2. Each
    checked at 5 Monte Carlo standard errors over 4,000 draws."""
    fit = companion.lmer(formula, sleep)
    draws = fit.simulate(4000, seed=1)
    assert list(draws.columns[:2]) == ["sim_1", "sim_2"] and draws.shape == (180, 4000)
    np.testing.assert_array_equal(draws, fit.simulate(4000, seed=1))  # the seed repeats
    design = fit.devfun.design
    ZL = design.Z @ fit.devfun.layout.lambda_matrix(fit.theta.to_numpy())
    variance = fit.sigma**2 * (1 + np.einsum("ij,ij->i", ZL, ZL))
    mean = design.X @ fit.fixef.to_numpy()
    error = np.abs(draws.mean(axis=1) - mean) / np.sqrt(variance / 4000)
    assert error.max() < 5
    ratio = draws.var(axis=1) / variance  # its SE: sqrt(2 / 4000) for normal draws
    assert np.abs(ratio - 1).max() < 5 * np.sqrt(2 / 4000)
    conditional = fit.simulate(4000, seed=2, use_u=True)
    error = np.abs(conditional.mean(axis=1) - fit.fitted) / (fit.sigma / np.sqrt(4000))
    assert error.max() < 5


def test_deviances_survive_pickling(sleep):
    """Fits travel to worker processes (joblib, Dask) by cloudpickle: every deviance
    class must come back whole."""
    import cloudpickle  # what joblib (loky) and Dask use

    fits = [companion.lmer(f, sleep) for f in FORMULAS]
    cbpp = companion.load_dataset("cbpp")
    fits.append(companion.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                                cbpp))
    for fit in fits:
        copy = cloudpickle.loads(cloudpickle.dumps(fit.devfun))
        assert type(copy) is type(fit.devfun)
        x = fit.optimization.final
        assert copy(x) == fit.devfun(x)
