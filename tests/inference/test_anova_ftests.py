"""``fit.anova(type=..., ddf=...)`` against lmerTest 3.1.3's ``anova(fit, type, ddf)`` (and
pbkrtest's Kenward-Roger) on the models of tests/reference/anova_types: treatment, sum,
polynomial and user-matrix contrasts, crossed and nested grouping factors, an aliased
column, no intercept, an ML fit.

Tolerance 1e-5 relative on every column but the p-value. Satterthwaite's df come from
numerical derivatives on both sides (numDeriv's Richardson extrapolation in R, the same
scheme here), which agree to about 1e-6 relative (3e-7 at worst here). A p-value
inherits the errors of F and df amplified by ``d log p / d log F``, which is large for a
small p (about 20 for a p-value of 1e-17): it is checked at 1e-4 relative, once as we
compute it and once as the F tail of our F at R's own df (which isolates F's error)."""

import numpy as np
import pytest
from scipy import stats

from anova_types import MODELS, TYPES, reference_and_fit

DDFS = ("Satterthwaite", "Kenward-Roger")
CASES = [(model, ddf, number) for model in MODELS for ddf in DDFS for number in TYPES
         if reference_and_fit(model)[0]["anova"].get(ddf) is not None]


def _expected(table: dict) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in table["values"]],
                    dtype=float).reshape(len(table["rownames"]), len(table["colnames"]))


@pytest.mark.parametrize(("name", "ddf", "number"), CASES)
def test_anova_table_as_lmertest(name, ddf, number):
    reference, fit = reference_and_fit(name)
    expected_table = reference["anova"][ddf][number]
    ours = fit.anova(type=int(number), ddf=ddf)
    assert list(ours.index) == expected_table["rownames"]
    assert list(ours.columns) == expected_table["colnames"]
    expected = _expected(expected_table)
    if expected.size == 0:  # an intercept-only model has no term to test
        assert ours.empty
        return
    columns = list(ours.columns)
    for column in ("Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value"):
        j = columns.index(column)
        np.testing.assert_allclose(ours[column], expected[:, j], rtol=1e-5, err_msg=column)
    p = columns.index("Pr(>F)")
    np.testing.assert_allclose(ours["Pr(>F)"], expected[:, p], rtol=1e-4)
    at_r_df = stats.f.sf(ours["F value"], expected[:, columns.index("NumDF")],
                         expected[:, columns.index("DenDF")])
    np.testing.assert_allclose(at_r_df, expected[:, p], rtol=1e-4, err_msg="at R's df")


def test_heading_names_type_and_method():
    _, fit = reference_and_fit("cake_reml_ordered")
    assert fit.anova(type=1, ddf="Kenward-Roger").attrs["heading"] == (
        "Type I Analysis of Variance Table with Kenward-Roger's method")
    assert fit.anova().attrs["heading"] == (
        "Type III Analysis of Variance Table with Satterthwaite's method")


def test_kenward_roger_needs_reml():
    _, fit = reference_and_fit("cake_ml_ordered")
    with pytest.raises(ValueError, match="needs a REML fit"):
        fit.anova(ddf="Kenward-Roger")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"ddf": "kenward"}, "ddf must be one of"), ({"type": 4}, "type")])
def test_bad_arguments_are_refused(kwargs, message):
    _, fit = reference_and_fit("cake_reml_ordered")
    with pytest.raises(ValueError, match=message):
        fit.anova(**kwargs)
