"""Likelihood-ratio tests, ``anova(m0, m1, ...)``, against lme4's (tests/reference/anova,
made by its make_anova.R from the corpus's data): three LMMs by REML (refitted by ML), two
crossed LMMs differing in a fixed effect, two crossed Bernoulli GLMMs. Every column within
1e-5 relative (the log-likelihoods are tight optima on both sides; Chisq is their
difference, so it gets 1e-5 of the log-likelihood's size), Df exactly."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import companion
from corpus import load_data

ANOVA = Path(__file__).resolve().parents[1] / "reference" / "anova"
COMPARISONS = sorted(p.stem for p in ANOVA.glob("*.json"))


def _fits(r: dict, data=None):
    data = load_data(r["data"]) if data is None else data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if r["family"] == "gaussian":
            return [companion.lmer(f, data, reml=r["REML"]) for f in r["formulas"]]
        return [companion.glmer(f, data, family=r["family"]) for f in r["formulas"]]


@pytest.mark.parametrize("name", COMPARISONS)
def test_anova_matches_lme4(name):
    r = json.loads((ANOVA / f"{name}.json").read_text())
    fits = _fits(r)
    table = fits[-1].anova(*fits[:-1])  # any order: rows go by number of parameters
    assert list(table.columns) == r["colnames"]
    expected = np.array(r["values"], dtype=float)
    np.testing.assert_array_equal(table["npar"], expected[:, 0])
    np.testing.assert_array_equal(table["Df"].iloc[1:], expected[1:, 6])
    for column in ("AIC", "BIC", "logLik", "deviance"):
        np.testing.assert_allclose(table[column], expected[:, r["colnames"].index(column)],
                                   rtol=1e-5)
    scale = np.abs(expected[:, 3]).max()
    np.testing.assert_allclose(table["Chisq"].iloc[1:], expected[1:, 5], rtol=0,
                               atol=1e-5 * scale)
    # a p-value moves by about half its Chisq's error, relatively: within 1e-4 here
    np.testing.assert_allclose(table["Pr(>Chisq)"].iloc[1:], expected[1:, 7], rtol=1e-4)
    assert np.isnan(table["Chisq"].iloc[0]) and np.isnan(table["Pr(>Chisq)"].iloc[0])


def test_anova_refuses_fits_of_different_data():
    r = json.loads((ANOVA / "sleepstudy_three_lmms.json").read_text())
    data = load_data(r["data"])
    small, big = _fits(r, data)[:2]
    shorter = companion.lmer(r["formulas"][1], data.iloc[:-10], reml=True)
    with pytest.raises(ValueError, match="different rows"):
        small.anova(shorter)
    other = data.assign(Reaction=data.Reaction * 1.01)
    moved = companion.lmer(r["formulas"][1], other, reml=True)
    with pytest.raises(ValueError, match="different responses"):
        small.anova(moved)
    with pytest.raises(TypeError, match="fitted models"):
        small.anova(data)
