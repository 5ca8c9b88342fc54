"""The chapter's Bayesian nonlinear model (8.3.3, brms with informative bounded priors) in
PyMC against brms's printed posterior, by test_bayes.py's rule (means within SAFETY x the
Monte Carlo SE of the difference of two runs plus half a printed digit)."""

import numpy as np
import pytest

from companion.bayes import nlmm as bayes_nlmm
from companion.compare.tables import chapter_table
import companion
from posterior_checks import assert_matches_brms


@pytest.fixture(scope="module")
def fit():
    return bayes_nlmm.brms_asymptotic_fit(companion.load_dataset("Loblolly"))


def test_posterior_means_match_brms(fit):
    assert_matches_brms(fit, bayes_nlmm.brms_asymptotic_draws(fit.idata),
                        chapter_table("loblolly_brms"))


def test_bounds_of_the_chapters_priors_hold(fit):
    post = fit.idata.posterior
    assert float(post["Asym"].min()) >= 100 and float(post["Asym"].max()) <= 102
    assert float(post["R0"].min()) >= -10 and float(post["lrc"].min()) >= -9
    assert np.all(post["sigma"].values > 0)
