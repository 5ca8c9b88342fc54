"""R's contrasts: the matrices R prints, the column names R gives, and fits that do not
depend on the coding."""

import numpy as np
import pandas as pd
import pytest

from companion.engine.contrasts import contr_helmert, contr_poly, contr_sum, with_r_contrasts
import companion


def test_contrast_matrices_are_rs():
    # R: contr.poly(4), contr.sum(3), contr.helmert(4), as R 4.2 prints them (7 digits)
    poly, names = contr_poly().matrix(list("abcd"))
    assert names == [".L", ".Q", ".C"]
    np.testing.assert_allclose(poly, [[-0.6708204, 0.5, -0.2236068],
                                      [-0.2236068, -0.5, 0.6708204],
                                      [0.2236068, -0.5, -0.6708204],
                                      [0.6708204, 0.5, 0.2236068]], atol=5e-8)
    assert contr_poly().matrix(list("abcdef"))[1] == [".L", ".Q", ".C", "^4", "^5"]
    np.testing.assert_array_equal(contr_sum().matrix(list("abc"))[0],
                                  [[1, 0], [0, 1], [-1, -1]])
    np.testing.assert_array_equal(contr_helmert().matrix(list("abcd"))[0],
                                  [[-1, -1, -1], [1, -1, -1], [0, 2, -1], [0, 0, 3]])


def test_ordered_factors_and_named_contrasts_are_rewritten():
    data = pd.DataFrame({"d": pd.Categorical(list("abc"), ordered=True),
                         "f": pd.Categorical(list("xyz")), "x": [1.0, 2.0, 3.0]})
    assert with_r_contrasts("x + d * f", data) == "x + C(d, contr_poly) * f"
    assert with_r_contrasts("x + d * f", data, {"f": "contr.sum", "d": "treatment"}) == \
        "x + C(d, contr_treatment) * C(f, contr_sum)"
    with pytest.raises(ValueError, match="must be one of"):
        with_r_contrasts("f", data, {"f": "deviation"})
    with pytest.raises(ValueError, match="not a column"):
        with_r_contrasts("f", data, {"g": "sum"})


@pytest.mark.parametrize("coding", ["sum", "helmert", "poly"])
def test_the_fit_does_not_depend_on_the_coding(coding):
    """Other contrasts reparametrize the fixed effects: the (ML) likelihood, the variance
    components and the fitted values stay; the columns get R's names. (The REML
    criterion moves by a constant, log |det| of the change of coding, as in R.)"""
    sleep = companion.load_dataset("sleepstudy").assign(
        period=lambda d: pd.Categorical((d.Days // 3).astype(str)))
    formula = "Reaction ~ period + (1 | Subject)"
    base = companion.lmer(formula, sleep, reml=False)
    other = companion.lmer(formula, sleep, reml=False, contrasts={"period": coding})
    assert list(other.fixef.index) == (["(Intercept)", "period.L", "period.Q", "period.C"]
                                       if coding == "poly" else
                                       ["(Intercept)", "period1", "period2", "period3"])
    assert other.loglik == pytest.approx(base.loglik, rel=1e-10)
    np.testing.assert_allclose(other.fitted, base.fitted, rtol=1e-8)
    np.testing.assert_allclose(other.theta, base.theta, rtol=1e-6)
    new = sleep.head(5)
    np.testing.assert_allclose(other.predict(new), base.predict(new), rtol=1e-8)
