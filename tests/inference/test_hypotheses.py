"""lmerTest 3.1.3's hypothesis matrices of ``anova(fit, type = ...)`` (types I, II and III)
against companion.hypotheses, for the models of tests/reference/anova_types (made by its
make_anova_types.R from the corpus's data): treatment, sum, polynomial (ordered factors)
and user-matrix contrasts, factor x factor and factor x covariate interactions, separate
slopes within a factor, a factor within a factor (R's full coding there changes
what contains what), no intercept, an aliased covariate, an intercept-only model and an
ML fit. Entries within 1e-8: both sides do the same algebra and round it alike."""

import numpy as np
import pytest

import companion
from anova_types import MODELS, TYPES, reference_and_fit
from companion.inference.hypotheses import hypothesis_matrices

CASES = [(model, number) for model in MODELS for number in TYPES]


@pytest.fixture(scope="module")
def fits():
    return reference_and_fit


def _matrices(fits, name: str, number: str):
    reference, fit = fits(name)
    return reference["hypotheses"][number], hypothesis_matrices(fit, int(number))


@pytest.mark.parametrize(("name", "number"), CASES)
def test_terms_as_lmertest(fits, name, number):
    expected, ours = _matrices(fits, name, number)
    assert list(ours) == list(expected)


@pytest.mark.parametrize(("name", "number"), CASES)
def test_matrices_as_lmertest(fits, name, number):
    expected, ours = _matrices(fits, name, number)
    for term, L in expected.items():
        shape = (len(L["rownames"]), len(L["colnames"]))
        values = np.array(L["values"], dtype=float).reshape(shape)
        assert ours[term].shape == shape, term
        np.testing.assert_allclose(ours[term].to_numpy(), values, rtol=0, atol=1e-8,
                                   err_msg=term)


@pytest.mark.parametrize(("name", "number"), CASES)
def test_names_as_lmertest(fits, name, number):
    expected, ours = _matrices(fits, name, number)
    _, fit = fits(name)
    for term, L in expected.items():
        assert list(ours[term].index) == L["rownames"], term
        assert list(ours[term].columns) == L["colnames"] == list(fit.fixef.index), term


@pytest.mark.parametrize(("number", "spelled"), [(1, "I"), (2, "II"), (3, "III"), (3, "3")])
def test_type_spellings_agree(fits, number, spelled):
    _, fit = fits("cake_reml_ordered")
    ours, same = hypothesis_matrices(fit, spelled), hypothesis_matrices(fit, number)
    assert list(ours) == list(same)
    assert all(ours[term].equals(same[term]) for term in same)


@pytest.mark.parametrize("number", [0, 4, "IV", "2b", "yates"])
def test_unsupported_type(fits, number):
    _, fit = fits("sleepstudy_reml_slope")
    with pytest.raises(ValueError, match="type must be 1, 2 or 3"):
        hypothesis_matrices(fit, number)


def test_glmm_fit_is_refused():
    cbpp = companion.load_dataset("cbpp")
    glmm = companion.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    with pytest.raises(ValueError, match="anova types .* are for lmer fits"):
        hypothesis_matrices(glmm, 3)
