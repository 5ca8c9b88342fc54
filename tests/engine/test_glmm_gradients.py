"""The exact gradients of the blocked Laplace deviance (several random terms) and of
lme4's nAGQ = 0 stage, against central differences: crossed and nested designs, scalar
and vector terms (first or later), canonical and non-canonical links, the blocked factor's
off-diagonal blocks dense and sparse. Central differences with step 1e-5 are good to about
1e-8 of the gradient's scale here, so 1e-6 relative leaves a wide margin and still fails
on any wrong term of the formula (each is of the gradient's own order)."""

import numpy as np
import pandas as pd
import pytest

from companion.engine.design import build_design
from companion.engine.families import family
from companion.engine.formula import parse_formula
from companion.engine.laplace import LaplaceDeviance
from companion.engine.optimize import with_numerical_gradient

FORMULAS = ["y ~ x + (1 | a) + (1 | b)", "y ~ x + (x | a) + (1 | b)",
            "y ~ x + (1 | a) + (x | b)", "y ~ x + (1 | b) + (1 | b:a)"]
FAMILIES = [("binomial", "logit"), ("binomial", "probit"), ("poisson", "log")]


def _data(kind: str, n: int = 240, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"a": rng.integers(12, size=n).astype(str),
                         "b": rng.integers(5, size=n).astype(str), "x": rng.normal(size=n)})
    eta = 0.3 + 0.5 * data.x + rng.normal(0, 0.7, 12)[data.a.astype(int)] \
        + rng.normal(0, 0.5, 5)[data.b.astype(int)]
    data["y"] = rng.binomial(1, 1 / (1 + np.exp(-eta))) if kind == "binomial" \
        else rng.poisson(np.exp(eta))
    return data


def _relative_error(exact, numerical) -> float:
    return float(np.max(np.abs(exact - numerical)) / np.max(np.abs(numerical)))


@pytest.mark.parametrize("formula", FORMULAS)
@pytest.mark.parametrize("name, link", FAMILIES)
@pytest.mark.parametrize("dense", [True, False])
def test_laplace_gradient_is_exact(formula, name, link, dense):
    design = build_design(parse_formula(formula), _data(name))
    deviance = LaplaceDeviance(design, family(name, link), dense=dense)
    phi = deviance.start()
    phi[:deviance.n_theta] = 0.7 * deviance.layout.start() + 0.1
    value, gradient = deviance.value_and_gradient(phi)
    numerical = with_numerical_gradient(deviance, deviance.lower_bounds(), step=1e-5)(phi)
    assert value == pytest.approx(numerical[0], rel=1e-12)
    assert _relative_error(gradient, numerical[1]) < 1e-6


@pytest.mark.parametrize("formula", FORMULAS)
@pytest.mark.parametrize("name, link", FAMILIES)
def test_fixed_effects_stage_gradient_is_exact(formula, name, link):
    design = build_design(parse_formula(formula), _data(name))
    deviance = LaplaceDeviance(design, family(name, link))
    theta = 0.7 * deviance.layout.start() + 0.1
    value, _, _, gradient = deviance.fixed_effects_stage(theta, gradient=True)
    numerical = with_numerical_gradient(lambda t: deviance.fixed_effects_stage(t)[0],
                                        deviance.layout.lower_bounds(), step=1e-5)(theta)
    assert value == pytest.approx(numerical[0], rel=1e-10)
    assert _relative_error(gradient, numerical[1]) < 1e-6


@pytest.mark.parametrize("formula", FORMULAS)
def test_dense_and_sparse_blocks_agree(formula):
    """The two storages of the blocked factor give the same deviance, gradient, modes and
    conditional covariances."""
    design = build_design(parse_formula(formula), _data("poisson"))
    fam = family("poisson", "log")
    dense, sparse = (LaplaceDeviance(design, fam, dense=d) for d in (True, False))
    phi = dense.start()
    phi[:dense.n_theta] = 0.8 * dense.layout.start() + 0.05
    for a, b in zip(dense.value_and_gradient(phi), sparse.value_and_gradient(phi)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    s_dense, s_sparse = dense.solve(phi), sparse.solve(phi)
    np.testing.assert_allclose(dense.random_effects(s_dense), sparse.random_effects(s_sparse),
                               rtol=1e-9, atol=1e-12)
    for a, b in zip(dense.conditional_covariances(s_dense),
                    sparse.conditional_covariances(s_sparse)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
