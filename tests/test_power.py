"""Power by simulation (simr's powerSim, powerCurve and extend), checked against theory.

The design: ``M = 10`` subjects, each measured at the same ``K = 5`` values of ``x``
(0 ... 4), ``y = b0 + b1 x + u_i + e_ij``, simulated with ``sigma = 1`` and a subject SD of
``THETA = 4`` (``theta = 4``). As ``x`` has the same values for every subject it has no
between-subject part: the GLS estimate of ``b1`` is the within-subject least-squares
slope, ``N(b1, sigma^2 / (M Sxx))`` with ``Sxx = sum_j (x_j - xbar)^2 = 10``. When the
subject variance is estimated inside its range, the REML ``sigma^2`` is the
within-subject residual mean square on ``DF = M (K - 1) - 1 = 39`` df, independent of the
slope, so ``T = b1_hat / SE`` is noncentral t with ``DF`` df and noncentrality
``NCP = b1 sqrt(M Sxx) / sigma``; Satterthwaite's and Kenward-Roger's df are both ``DF``
here. The ML fits with and without ``x`` share the between-subject stratum and differ in
the within-subject one only: ``LR = M (K - 1) log(1 + T^2 / DF)``. So each test rejects
when ``|T| > c``: ``c = t_{DF, 1 - alpha/2}`` (Satterthwaite, Kenward-Roger),
``z_{1 - alpha/2}`` (z), ``sqrt(DF (exp(chi2_{1, 1 - alpha} / (M (K - 1))) - 1))`` (LR),
and the power is ``P(|T_{DF, NCP}| > c)``. The subject variance reaches its bound when
the between-subject mean square falls below the within one, ``P(F_{9, 39} < 1 / (1 + K
THETA^2)) = 6e-8`` per simulation: never, in these tests.
"""

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import companion
from companion import power
from companion.power import SimulationModel, extend, extend_data, power_curve, power_sim

matplotlib.use("Agg")

M, K, THETA, SIGMA, ALPHA = 10, 5, 4.0, 1.0, 0.05
SXX = 10.0
DF = M * (K - 1) - 1
SLOPE = 0.23  # NCP = 2.3: a power near 60%
NSIM = 300


@pytest.fixture(scope="module")
def fit():
    rng = np.random.default_rng(11)
    x = np.tile(np.arange(K, dtype=float), M)
    subject = np.repeat([f"s{i:02d}" for i in range(M)], K)
    y = 1 + 0.3 * x + np.repeat(rng.normal(0, 3, M), K) + rng.normal(0, 1, M * K)
    data = pd.DataFrame({"y": y, "x": x, "subject": pd.Categorical(subject)})
    return companion.lmer("y ~ x + (1 | subject)", data)


@pytest.fixture(scope="module")
def model(fit):
    """The fit's design with the parameters of the theory above, set by hand."""
    return SimulationModel(fit, fit.fixef, pd.Series([THETA], index=fit.theta.index), SIGMA)


@pytest.fixture(scope="module")
def by_method(model):
    """The four tests on the same simulated responses (the same seed)."""
    return {method: power_sim(model, "x", nsim=NSIM, seed=7, method=method,
                              effect_size=SLOPE, progress=False)
            for method in power.METHODS}


def critical_t(method: str) -> float:
    if method in ("satterthwaite", "kenward-roger"):
        return stats.t.isf(ALPHA / 2, DF)
    if method == "z":
        return stats.norm.isf(ALPHA / 2)
    within = M * (K - 1)
    return np.sqrt(DF * np.expm1(stats.chi2.isf(ALPHA, 1) / within))


def theoretical_power(method: str, slope: float) -> float:
    ncp = slope * np.sqrt(M * SXX) / SIGMA
    c = critical_t(method)
    return stats.nct.sf(c, DF, ncp) + stats.nct.cdf(-c, DF, ncp)


@pytest.mark.slow
@pytest.mark.parametrize("method", list(power.METHODS))
def test_power_is_the_noncentral_t_power(by_method, method):
    """Within 4 binomial standard errors of the exact power."""
    result = by_method[method]
    exact = theoretical_power(method, SLOPE)
    assert 0.5 < exact < 0.7 and result.failures == 0
    assert abs(result.power - exact) < 4 * np.sqrt(exact * (1 - exact) / NSIM)
    assert result.effect_size == SLOPE and not result.observed and result.nrow == M * K


@pytest.mark.slow
def test_tests_agree_replicate_by_replicate(by_method):
    """On the same responses every test is a function of the same t: Kenward-Roger's
    p-value is Satterthwaite's, z's and LR's follow from it."""
    p = {method: result.p_values for method, result in by_method.items()}
    t = stats.t.isf(p["satterthwaite"] / 2, DF)
    np.testing.assert_allclose(p["kenward-roger"], p["satterthwaite"], rtol=1e-5)
    np.testing.assert_allclose(p["z"], 2 * stats.norm.sf(t), rtol=1e-6)
    lr = M * (K - 1) * np.log1p(t**2 / DF)
    np.testing.assert_allclose(p["lr"], stats.chi2.sf(lr, 1), rtol=1e-4)


def test_rejection_rate_under_the_null_is_alpha(model):
    """With no effect the t test is exact: the rejections are Binomial(nsim, alpha)."""
    result = power_sim(model, "x", nsim=NSIM, seed=3, effect_size=0.0, progress=False)
    low, high = stats.binom.ppf([0.0005, 0.9995], NSIM, ALPHA)
    assert low <= result.successes <= high
    assert result.low <= ALPHA <= result.high


@pytest.mark.slow
def test_interval_is_clopper_pearson(by_method):
    for result in by_method.values():
        exact = stats.binomtest(result.successes, result.nsim).proportion_ci(method="exact")
        np.testing.assert_allclose([result.low, result.high], [exact.low, exact.high],
                                   rtol=1e-9)
    for successes in (0, 1, 19, 20):
        exact = stats.binomtest(successes, 20).proportion_ci(0.9, method="exact")
        np.testing.assert_allclose(power.clopper_pearson(successes, 20, 0.9),
                                   [exact.low, exact.high], rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_printed_like_simr(by_method, fit, model):
    text = str(by_method["kenward-roger"])
    result = by_method["kenward-roger"]
    assert text.startswith("Power for predictor 'x', (95% confidence interval):\n")
    assert f"{100 * result.power:5.2f}% ({100 * result.low:5.2f}, " in text
    assert "Effect size for x is 0.23" in text and "Based on 300 simulations" in text
    observed = power_sim(fit, "x", nsim=2, seed=1, method="z", progress=False)
    assert observed.observed and "observed power" in str(observed)
    chosen = power_sim(model, "x", nsim=2, seed=1, method="z", progress=False)
    assert not chosen.observed and "observed power" not in str(chosen)


@pytest.mark.slow
def test_same_seed_same_p_values_however_shared_out(model):
    def run(**how):
        return power_sim(model, "x", nsim=24, seed=5, method="z", effect_size=SLOPE,
                         progress=False, **how).p_values

    one = run()
    np.testing.assert_array_equal(one, run(workers=2))
    from distributed import Client

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # distributed's notes on ports and threads
        with Client(processes=False, n_workers=1, threads_per_worker=2,
                    dashboard_address=None) as client:
            np.testing.assert_array_equal(one, run(scheduler=client))
    assert not np.array_equal(one, power_sim(model, "x", nsim=24, seed=6, method="z",
                                             effect_size=SLOPE, progress=False).p_values)


def test_effect_size_leaves_the_fit_alone(fit):
    before = fit.fixef.copy()
    power_sim(fit, "x", nsim=2, seed=1, method="z", effect_size=5.0, progress=False)
    pd.testing.assert_series_equal(fit.fixef, before)


def test_failed_refits_count_as_not_significant(model, monkeypatch):
    """As simr: a failure stays in nsim, as a test that is not significant."""
    test = power.p_value
    calls = []

    def every_other_fails(fit, effect, method):
        calls.append(fit)
        if fit is not model.fit and len(calls) % 2:
            raise np.linalg.LinAlgError("no")
        return test(fit, effect, method)

    monkeypatch.setattr(power, "p_value", every_other_fails)
    result = power_sim(model, "x", nsim=20, seed=1, method="z", effect_size=1.0,
                       progress=False)
    assert result.failures == 10 and result.nsim == 20
    assert result.successes == 10 and result.power == 0.5
    assert "(10 failures)" in str(result)


def test_extend_copies_the_levels_with_new_labels(fit):
    data = fit.devfun.design.frame
    bigger = extend_data(data, "subject", 23)
    assert len(bigger) == 23 * K
    assert list(bigger["subject"].cat.categories) == [str(k) for k in range(1, 24)]
    copy = bigger[bigger["subject"] == "12"]  # level 12 copies the second subject
    np.testing.assert_array_equal(copy["y"], data[data["subject"] == "s01"]["y"])
    assert len(extend_data(data, "subject", 4)) == 4 * K

    extended = extend(fit, "subject", 23)
    assert extended.nobs == 23 * K and extended.fit.ngroups == {"subject": 23}
    pd.testing.assert_series_equal(extended.fixef, fit.fixef)
    pd.testing.assert_series_equal(extended.theta, fit.theta)
    assert extended.sigma == fit.sigma and extended.observed


def test_power_curve_table_and_plot(fit):
    extended = extend(fit, "subject", 12)
    curve = power_curve(extended, "x", along="subject", nsim=10, seed=1, method="z",
                        effect_size=SLOPE, progress=False)
    table = curve.table
    assert list(table["nlevels"]) == list(range(3, 13)) == power.default_breaks(12)
    assert list(table["nrow"]) == [K * k for k in table["nlevels"]]
    assert (table["low"] <= table["power"]).all() and (table["power"] <= table["high"]).all()
    assert "by number of levels in subject:" in str(curve)
    ax = curve.plot()
    assert isinstance(ax, matplotlib.axes.Axes)
    assert ax.get_ylim() == (0, 1) and len(ax.lines) >= 2

    chosen = power_curve(fit, "x", "subject", breaks=[3, 6, 10], nsim=5, seed=1,
                         method="z", progress=False)
    assert list(chosen.table["nlevels"]) == [3, 6, 10]
    assert power.default_breaks(40) == [3, 7, 11, 15, 19, 24, 28, 32, 36, 40]


def test_bad_input(fit):
    with pytest.raises(ValueError, match=r"coefficients are: \(Intercept\), x"):
        power_sim(fit, "z", nsim=10)
    with pytest.raises(ValueError, match="nsim must be a positive integer"):
        power_sim(fit, "x", nsim=0)
    with pytest.raises(ValueError, match="method must be one of"):
        power_sim(fit, "x", nsim=10, method="wald")
    with pytest.raises(ValueError, match="grouping factor"):
        extend(fit, "x", 20)
    with pytest.raises(ValueError, match="breaks must be"):
        power_curve(fit, "x", "subject", breaks=[3, 11], nsim=10)
    ml = companion.lmer("y ~ x + (1 | subject)", fit.devfun.design.frame, reml=False)
    with pytest.raises(ValueError, match="fails on the fit itself"):
        power_sim(ml, "x", nsim=10, method="kenward-roger")
    cbpp = companion.load_dataset("cbpp")
    glmm = companion.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    with pytest.raises(ValueError, match="linear mixed models"):
        power_sim(glmm, "period2", nsim=10)
