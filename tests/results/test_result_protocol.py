"""Every frequentist fit answers to the same names (companion.results.protocol): fixef,
se, vcov, varcorr, loglik, aic, bic, nobs, n_params, ranef, coef_table(), confint(),
summary(), predict(), checked on fits of simulated data (Poisson counts with a random
intercept, a Gaussian response with crossed groups, a growth curve, a spatial field)."""

import math

import numpy as np
import pandas as pd
import pytest

import companion
from companion.results import ModelResult
from companion.results.protocol import PROTOCOL, VARCORR_COLUMNS


@pytest.fixture(scope="module")
def counts():
    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(30), 8)
    x = rng.normal(size=g.size)
    eta = 0.4 + 0.3 * x + rng.normal(0, 0.5, 30)[g]
    return pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": x, "g": g.astype(str)})


@pytest.fixture(scope="module")
def crossed():
    rng = np.random.default_rng(12)
    s, i = np.repeat(np.arange(20), 10), np.tile(np.arange(10), 20)
    x = rng.normal(size=s.size)
    y = (1 + 0.5 * x + rng.normal(0, 0.7, 20)[s] + rng.normal(0, 0.4, 10)[i]
         + rng.normal(size=s.size))
    return pd.DataFrame({"y": y, "x": x, "s": s.astype(str), "i": i.astype(str)})


@pytest.fixture(scope="module")
def curves():
    rng = np.random.default_rng(13)
    rows = []
    for tree in range(8):
        asym = 100 + rng.normal(0, 5)
        for age in (3, 5, 10, 15, 20, 25):
            height = asym + (-8.5 - asym) * np.exp(-np.exp(-3.3) * age) + rng.normal(0, 1)
            rows.append((f"t{tree}", age, height))
    return pd.DataFrame(rows, columns=["Seed", "age", "height"])


@pytest.fixture(scope="module")
def field():
    rng = np.random.default_rng(14)
    xy = rng.uniform(0, 6, size=(40, 2))
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    cov = 4 * np.exp(-(d / 2) ** 2) + 0.2 * np.eye(40)
    z = 10 + np.linalg.cholesky(cov) @ rng.normal(size=40)
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "z": z})


START = {"Asym": 100, "R0": -8.5, "lrc": -3.3}
FITS = {
    "lmer": lambda d: companion.lmer("y ~ x + (1 | s) + (1 | i)", d["crossed"]),
    "glmer": lambda d: companion.glmer("y ~ x + (1 | g)", d["counts"], family="poisson"),
    "glmer_reml": lambda d: companion.glmer_reml("y ~ x + (1 | g)", d["counts"],
                                                 family="poisson"),
    "glmmpql": lambda d: companion.glmmpql("y ~ x + (1 | g)", d["counts"], family="poisson"),
    "glm": lambda d: companion.glm("y ~ x", d["counts"], family="poisson"),
    "glmmml": lambda d: companion.glmmml("y ~ x + (1 | g)", d["counts"]),
    "mcla": lambda d: companion.mcla("y ~ x + (1 | g)", d["counts"], m=2000),
    "hglm": lambda d: companion.hglm("y ~ x + (1 | g)", d["counts"], "poisson"),
    "gee_fit": lambda d: companion.gee_fit("y ~ x", d["counts"].sort_values("g"), groups="g"),
    "nls": lambda d: companion.nls("height ~ SSasymp(age, Asym, R0, lrc)", d["curves"]),
    "nlme": lambda d: companion.nlme("height ~ SSasymp(age, Asym, R0, lrc)", d["curves"],
                                     random=["Asym"], groups="Seed", start=START),
    "nlmer": lambda d: companion.nlmer(
        "height ~ SSasymp(age, Asym, R0, lrc) ~ (Asym + R0 + lrc) + (Asym | Seed)",
        d["curves"], start=START),
    "krige_fit": lambda d: companion.spatial.krige_fit(d["field"], "z", ["x", "y"]),
}
# fits by methods without a likelihood (estimating equations, EQL, PQL): loglik is NaN
NO_LIKELIHOOD = {"gee_fit", "hglm", "glmmpql"}
# fits whose predict() for new data is not offered (nonlinear mixed models by Laplace;
# nlme and kriging have predict() with their own arguments)
NO_PREDICT = {"nlmer"}


@pytest.fixture(scope="module")
def fitted(counts, crossed, curves, field):
    data = {"counts": counts, "crossed": crossed, "curves": curves, "field": field}
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = FITS[name](data)
        return cache[name]

    return get


@pytest.mark.parametrize("name", FITS)
def test_the_shared_names(fitted, name):
    fit = fitted(name)
    assert isinstance(fit, ModelResult)
    missing = [attr for attr in PROTOCOL if not hasattr(fit, attr)]
    assert not missing, missing
    assert isinstance(fit.fixef, pd.Series) and len(fit.fixef) >= 1
    assert isinstance(fit.vcov, pd.DataFrame)
    assert list(fit.vcov.index) == list(fit.vcov.columns) == list(fit.fixef.index)
    if name != "nlme":  # nlme's printed SEs carry adjustSigma for ML fits
        np.testing.assert_allclose(fit.se ** 2, np.diag(fit.vcov), rtol=1e-12)
    assert list(fit.varcorr.columns) == VARCORR_COLUMNS
    assert isinstance(fit.ranef, dict)
    assert isinstance(fit.nobs, (int, np.integer)) and fit.nobs > 0
    assert fit.n_params >= len(fit.fixef)
    if name in NO_LIKELIHOOD:
        assert math.isnan(fit.loglik) and math.isnan(fit.aic)
    else:
        assert np.isfinite(fit.loglik)
        assert fit.aic == pytest.approx(-2 * fit.loglik + 2 * fit.n_params, rel=1e-12)
        n = fit.nobs - (1 if name == "krige_fit" else 0)  # nlme's BIC uses N - p for REML
        assert fit.bic - fit.aic == pytest.approx((np.log(n) - 2) * fit.n_params, rel=1e-12)


@pytest.mark.parametrize("name", FITS)
def test_tables_and_intervals(fitted, name):
    fit = fitted(name)
    table = fit.coef_table()
    assert list(table.index) == list(fit.fixef.index)
    np.testing.assert_allclose(table.iloc[:, 0], fit.fixef, rtol=1e-12)  # nlme: "Value"
    np.testing.assert_allclose(table.iloc[:, 1], fit.se, rtol=1e-12)
    ci = fit.confint()
    assert list(ci.columns) == ["2.5 %", "97.5 %"]
    estimates = fit.fixef.reindex(ci.index).dropna()
    assert ((ci.loc[estimates.index, "2.5 %"] < estimates)
            & (estimates < ci.loc[estimates.index, "97.5 %"])).all()
    summary = fit.summary()
    text = str(summary)
    assert fit.fixef.index[0] in text
    assert "<table" in summary._repr_html_()


@pytest.mark.parametrize("name", sorted(set(FITS) - NO_PREDICT - {"nlme", "krige_fit"}))
def test_population_predictions(fitted, counts, crossed, curves, name):
    fit = fitted(name)
    data = crossed if name == "lmer" else curves if name == "nls" else counts
    new = data.head(5)
    eta = fit.predict(new) if name == "nls" else fit.predict(new, type="link")
    assert len(eta) == 5 and np.all(np.isfinite(eta))
    if name in {"glm", "gee_fit", "glmmml", "mcla", "hglm"}:
        X = np.column_stack([np.ones(5), new["x"]])
        np.testing.assert_allclose(eta, X @ fit.fixef.to_numpy(), rtol=1e-10)
        mean = fit.predict(new, type="response")
        np.testing.assert_allclose(mean, np.exp(eta), rtol=1e-12)


def test_unavailable_predict_says_so(fitted, curves):
    with pytest.raises(NotImplementedError, match="not available for this fit"):
        fitted("nlmer").predict(curves.head(3))
