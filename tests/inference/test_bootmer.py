"""The parametric bootstrap (lme4's bootMer) of sleepstudy: the same seed gives the same
replicates in one process, on two joblib workers and on Dask; against bootMer's 1,000
replicates (tests/reference/boot, by make_boot.R) the mean and SD of each fixed effect
agree within Monte Carlo error (5 of its standard errors); the intervals are the
replicates' quantiles (percentile) or reflected about the estimate (basic)."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import companion

R = json.loads((Path(__file__).resolve().parents[1] / "reference" / "boot"
                / "sleepstudy_bootmer.json").read_text())


@pytest.fixture(scope="module")
def fit():
    return companion.lmer("Reaction ~ Days + (Days | Subject)",
                          companion.load_dataset("sleepstudy"))


@pytest.mark.slow
def test_same_seed_same_replicates_however_shared_out(fit):
    one = companion.bootstrap(fit, nsim=24, seed=5, progress=False)
    two = companion.bootstrap(fit, nsim=24, seed=5, workers=2, progress=False)
    np.testing.assert_array_equal(one.t, two.t)
    from distributed import Client

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # distributed's notes on ports and threads
        with Client(processes=False, n_workers=1, threads_per_worker=2,
                    dashboard_address=None) as client:
            dask = companion.bootstrap(fit, nsim=24, seed=5, scheduler=client,
                                       progress=False)
    np.testing.assert_array_equal(one.t, dask.t)
    assert one.t.shape == (24, 2) and list(one.t0.index) == ["(Intercept)", "Days"]


@pytest.mark.slow
def test_bootstrap_agrees_with_bootmer(fit):
    """Means within 5 Monte Carlo SEs of the difference of two 1,000-draw means; SDs
    within 5 SEs of the difference of two SDs (each SD's SE about SD / sqrt(2 n))."""
    result = companion.bootstrap(fit, nsim=1000, seed=2024, progress=False)
    assert not np.isnan(result.t).any()
    ours_mean, ours_sd = result.t.mean(axis=0), result.t.std(axis=0, ddof=1)
    r_mean = np.array(list(R["boot_mean"].values()))
    r_sd = np.array(list(R["boot_sd"].values()))
    assert np.all(np.abs(ours_mean - r_mean) < 5 * np.sqrt(2 / 1000) * r_sd)
    assert np.all(np.abs(ours_sd / r_sd - 1) < 5 * np.sqrt(2 / 2000))
    # and both near the Wald SEs of the fit, the bootstrap's large-sample value
    np.testing.assert_allclose(ours_sd, fit.se, rtol=0.15)


def test_intervals_percentile_and_basic():
    t0 = pd.Series([1.0, 10.0], index=["a", "b"])
    t = np.column_stack([np.linspace(0, 2, 101), np.linspace(8, 14, 101)])
    result = companion.BootResult(t0, t, seed=None)
    percentile = result.confint(0.9)
    np.testing.assert_allclose(percentile.to_numpy(), [[0.1, 1.9], [8.3, 13.7]])
    basic = result.confint(0.9, method="basic")
    np.testing.assert_allclose(basic.to_numpy(), [[0.1, 1.9], [6.3, 11.7]])
    assert list(percentile.columns) == ["5 %", "95 %"]
    with pytest.raises(ValueError, match="'percentile' or 'basic'"):
        result.confint(method="bca")


def test_confint_boot_and_bad_input(fit):
    interval = fit.confint(method="boot", nsim=50, seed=1)
    assert list(interval.index) == ["(Intercept)", "Days"]
    assert np.all(interval.iloc[:, 0] < fit.fixef) and np.all(fit.fixef < interval.iloc[:, 1])
    with pytest.raises(ValueError, match="nsim must be a positive integer"):
        companion.bootstrap(fit, nsim=0)
    cbpp = companion.load_dataset("cbpp")
    penalized = companion.bglmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                                 cbpp)
    with pytest.raises(ValueError, match="binomial or Poisson glmer fits"):
        companion.bootstrap(penalized, nsim=10)
