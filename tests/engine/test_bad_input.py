"""Every public fitter refuses an empty data frame and infinite values with a message that
names the problem (the column and the number of rows), before any fitting starts."""

import numpy as np
import pandas as pd
import pytest

from companion.bayes import models as bayes
from companion.bayes import glmm as bayes_glmm
from companion.bayes import nlmm as bayes_nlmm
from companion.spatial import gp as spatial_bayes
from companion.spatial.kriging import krige_fit
import companion

# name -> (the call on a data frame, the data set, a numeric column the model uses)
FITTERS = {
    "lmer": (lambda d: companion.lmer("Reaction ~ Days + (Days | Subject)", d),
             "sleepstudy", "Days"),
    "glmer": (lambda d: companion.glmer("cbind(incidence, size - incidence) ~ period "
                                        "+ (1 | herd)", d), "cbpp", "size"),
    "bglmer": (lambda d: companion.bglmer("cbind(incidence, size - incidence) ~ period "
                                          "+ (1 | herd)", d), "cbpp", "incidence"),
    "glmer_reml": (lambda d: companion.glmer_reml("y ~ x1 + x2 + (1 | g)", d, "poisson"),
                   "sim_data", "x1"),
    "glmmpql": (lambda d: companion.glmmpql("y ~ x1 + x2 + (1 | g)", d, "poisson"),
                "sim_data", "x2"),
    "glm": (lambda d: companion.glm("y ~ lbase * trt + lage + V4", d, "poisson"),
            "epil", "lage"),
    "hglm": (lambda d: companion.hglm("y ~ x1 + x2 + (1 | g)", d), "sim_data", "x1"),
    "glmmml": (lambda d: companion.glmmml("y ~ x1 + x2 + (1 | g)", d), "sim_data", "y"),
    "mcla": (lambda d: companion.mcla("y ~ x1 + x2 + (1 | g)", d, m=100), "sim_data", "x1"),
    "gee_fit": (lambda d: companion.gee_fit("y ~ x1 + x2", d, groups="g"), "sim_data", "x2"),
    "inla": (lambda d: companion.inla.inla("Reaction ~ Days + (1 | Subject)", d),
             "sleepstudy", "Reaction"),
    "nls": (lambda d: companion.nls("height ~ SSasymp(age, Asym, R0, lrc)", d),
            "Loblolly", "age"),
    "nlme": (lambda d: companion.nlme("height ~ SSasymp(age, Asym, R0, lrc)", d,
                                      random=["Asym"], groups="Seed",
                                      start={"Asym": 103, "R0": -8.5, "lrc": -3.3}),
             "Loblolly", "height"),
    "nlmer": (lambda d: companion.nlmer("height ~ SSasymp(age, Asym, R0, lrc) ~ "
                                        "(Asym + R0 + lrc) + (Asym | Seed)", d,
                                        start={"Asym": 103, "R0": -8.5, "lrc": -3.3}),
              "Loblolly", "age"),
    "krige_fit": (lambda d: krige_fit(d, "z", ["x", "y"]), "topo", "x"),
    "gp_fit": (lambda d: spatial_bayes.gp_fit(d, "z", ["x", "y"]), "topo", "z"),
    "brms_fit": (lambda d: bayes.brms_fit("Reaction ~ Days + (Days | Subject)", d),
                 "sleepstudy", "Days"),
    "mcmcglmm_fit": (lambda d: bayes.mcmcglmm_fit("Reaction ~ Days + (Days | Subject)", d),
                     "sleepstudy", "Reaction"),
    "brms_glmm_fit": (lambda d: bayes_glmm.brms_glmm_fit("y ~ x1 + x2 + (1 | g)", d,
                                                         family="poisson"),
                      "sim_data", "x1"),
    "mcmcglmm_glmm_fit": (lambda d: bayes_glmm.mcmcglmm_glmm_fit("y ~ x1 + x2 + (1 | g)", d,
                                                                 family="poisson"),
                          "sim_data", "x2"),
    "brms_asymptotic_fit": (lambda d: bayes_nlmm.brms_asymptotic_fit(d), "Loblolly", "age"),
}


@pytest.mark.parametrize("name", FITTERS)
def test_an_empty_data_frame_says_it_has_no_rows(name):
    fit, dataset, _ = FITTERS[name]
    empty = companion.load_dataset(dataset).iloc[:0]
    with pytest.raises(ValueError, match="no rows"):
        fit(empty)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
@pytest.mark.parametrize("name", FITTERS)
def test_infinite_values_name_the_column_and_the_rows(name, value):
    fit, dataset, column = FITTERS[name]
    data = companion.load_dataset(dataset)
    data[column] = data[column].astype(float)
    data.loc[data.index[[1, 4, 6]], column] = value
    with pytest.raises(ValueError) as raised:
        fit(data)
    message = str(raised.value)
    assert f"'{column}'" in message and "infinite" in message, message
    assert " 3 " in message, message  # the number of rows


@pytest.mark.parametrize("formula, what", [
    ("Reaction ~ log(Days) + (1 | Subject)", "fixed-effects model matrix"),
    ("log(Days) ~ Reaction + (1 | Subject)", "response"),
    ("Reaction ~ 1 + offset(log(Days)) + (1 | Subject)", "offset"),
    ("Reaction ~ 1 + (0 + log(Days) | Subject)", "random term"),
])
def test_values_computed_from_the_data_must_be_finite(sleepstudy, formula, what):
    # Days == 0 on one row per subject: the log is -inf there.
    n_zero = int((sleepstudy["Days"] == 0).sum())
    with pytest.raises(ValueError, match=rf"{what}.* not finite .* in {n_zero} of "):
        companion.lmer(formula, sleepstudy)


def test_a_table_that_is_not_a_data_frame_is_refused():
    with pytest.raises(TypeError, match="pandas DataFrame"):
        companion.lmer("y ~ x + (1 | g)", {"y": [1.0], "x": [2.0], "g": ["a"]})
    assert isinstance(companion.load_dataset("sleepstudy"), pd.DataFrame)
