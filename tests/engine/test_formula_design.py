"""lme4 formula syntax, the design it builds, and the clear errors for bad input."""

import warnings

import numpy as np
import pandas as pd
import pytest

from companion.engine.design import RankDeficiencyWarning, RowsDroppedWarning, build_design
from companion.engine.formula import FormulaError, RandomTerm, parse_formula
from companion.engine.optimize import SingularFitWarning
from companion.engine.profiled import ThetaLayout
import companion


def test_random_terms_are_split_from_the_fixed_part():
    parsed = parse_formula("Reaction ~ Days + (Days | Subject)")
    assert parsed.response == "Reaction" and parsed.fixed == "Days"
    assert parsed.random == (RandomTerm("Days", ("Subject",)),)


def test_uncorrelated_terms_expand_like_lme4():
    parsed = parse_formula("y ~ x + (x || g)")
    assert parsed.random == (RandomTerm("1", ("g",)), RandomTerm("0 + x", ("g",)))
    assert parse_formula("y ~ (0 + x || g)").random == (RandomTerm("0 + x", ("g",)),)


def test_nested_and_crossed_grouping():
    nested = parse_formula("y ~ 1 + (1 | a/b)")  # lme4: (1 | b:a) + (1 | a)
    assert [t.group for t in nested.random] == [("b", "a"), ("a",)]
    three = parse_formula("y ~ 1 + (1 | a/b/c)")
    assert [t.group_name for t in three.random] == ["c:b:a", "b:a", "a"]
    crossed = parse_formula("y ~ 1 + (1 | a) + (1 | b)")
    assert [t.group_name for t in crossed.random] == ["a", "b"]


def test_offsets_are_collected():
    parsed = parse_formula("y ~ x1 + x2 + offset(log(o)) + (1 | g)")
    assert parsed.offsets == ("log(o)",) and parsed.fixed == "x1 + x2"


@pytest.mark.parametrize("bad", ["y ~", "~ x", "y x", "y ~ (1 | g", "y ~ ( | g)"])
def test_malformed_formulas_are_refused(bad):
    with pytest.raises(FormulaError):
        parse_formula(bad)


def test_factor_columns_get_r_names_and_baseline():
    cbpp = companion.load_dataset("cbpp")
    design = build_design(parse_formula("incidence ~ period + (1 | herd)"), cbpp)
    assert design.fixed_names == ["(Intercept)", "period2", "period3", "period4"]
    epil = companion.load_dataset("epil")
    design = build_design(parse_formula("y ~ lbase * trt + lage + V4 + (1 | subject)"), epil)
    assert design.fixed_names == ["(Intercept)", "lbase", "trtprogabide", "lage", "V4",
                                  "lbase:trtprogabide"]
    assert design.blocks[0].levels[:3] == ["1", "2", "3"]  # integer subject, numeric order


def test_z_is_level_major_within_a_term():
    sleep = companion.load_dataset("sleepstudy")
    design = build_design(parse_formula("Reaction ~ Days + (Days | Subject)"), sleep)
    Z = design.Z
    assert Z.shape == (180, 36)
    first = sleep["Subject"].cat.codes.to_numpy() == 0
    np.testing.assert_array_equal(Z[first, 0], 1.0)
    np.testing.assert_array_equal(Z[first, 1], sleep.loc[first, "Days"])
    assert not Z[~first, :2].any()


def test_nested_grouping_builds_interaction_levels():
    data = pd.DataFrame({"y": np.arange(12.0), "a": list("xxxxxxyyyyyy"),
                         "b": list("pqrpqrpqrpqr")})
    design = build_design(parse_formula("y ~ 1 + (1 | a/b)"), data)
    sizes = sorted(block.n_levels for block in design.blocks)
    assert sizes == [2, 6]
    inner = next(b for b in design.blocks if b.n_levels == 6)
    assert inner.group == "b:a"
    assert inner.levels[:3] == ["p:x", "p:y", "q:x"]  # R's b:a, b varying slowest


def test_unknown_column_is_named():
    sleep = companion.load_dataset("sleepstudy")
    with pytest.raises(FormulaError, match="'Dayz'.*not a column"):
        companion.lmer("Reaction ~ Dayz + (1 | Subject)", sleep)
    with pytest.raises(FormulaError, match="grouping factor 'Subj'"):
        companion.lmer("Reaction ~ Days + (1 | Subj)", sleep)


def test_non_numeric_response_is_refused():
    sleep = companion.load_dataset("sleepstudy")
    with pytest.raises(TypeError, match="response 'Subject' must be numeric"):
        companion.lmer("Subject ~ Days + (1 | Subject)", sleep)


def test_one_level_grouping_factor_is_refused():
    data = pd.DataFrame({"y": [1.0, 2.0, 3.0], "g": ["a", "a", "a"]})
    with pytest.raises(FormulaError, match="has 1 level"):
        companion.lmer("y ~ 1 + (1 | g)", data)


def test_as_many_levels_as_observations_is_refused():
    data = pd.DataFrame({"y": [1.0, 2.5, 3.0, 4.5], "g": ["a", "b", "c", "d"]})
    with pytest.raises(ValueError, match="fewer levels than observations"):
        companion.lmer("y ~ 1 + (1 | g)", data)


def test_no_random_term_is_refused():
    with pytest.raises(FormulaError, match="no random-effects terms"):
        companion.lmer("Reaction ~ Days", companion.load_dataset("sleepstudy"))


def test_missing_values_drop_rows_with_a_count():
    sleep = companion.load_dataset("sleepstudy")
    sleep.loc[[0, 5, 7], "Reaction"] = np.nan
    with pytest.warns(RowsDroppedWarning, match="3 of 180 rows dropped"):
        fit = companion.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    assert fit.nobs == 177 and 0 not in fit.fitted.index


def test_aliased_columns_are_dropped_with_a_warning():
    sleep = companion.load_dataset("sleepstudy").assign(Days2=lambda d: 2 * d.Days)
    with pytest.warns(RankDeficiencyWarning, match="dropping 1 column"):
        fit = companion.lmer("Reaction ~ Days + Days2 + (1 | Subject)", sleep)
    assert list(fit.fixef.index) == ["(Intercept)", "Days"]


def test_boundary_fit_warns_singular():
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"y": rng.normal(size=60), "g": np.repeat(list("abcdef"), 10)})
    with pytest.warns(SingularFitWarning, match="boundary \\(singular\\) fit"):
        fit = companion.lmer("y ~ 1 + (1 | g)", data)
    assert fit.is_singular and fit.theta.iloc[0] == 0


def test_weights_scale_the_residual_variance():
    """Prior weights w make Var(e_i) = sigma^2 / w_i: doubling every weight doubles the
    estimated sigma^2 and changes nothing else."""
    sleep = companion.load_dataset("sleepstudy")
    plain = companion.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    weighted = companion.lmer("Reaction ~ Days + (Days | Subject)", sleep,
                              weights=np.full(len(sleep), 2.0))
    np.testing.assert_allclose(weighted.fixef, plain.fixef, rtol=1e-7)
    np.testing.assert_allclose(weighted.sigma, plain.sigma * np.sqrt(2), rtol=1e-6)
    np.testing.assert_allclose(weighted.se, plain.se, rtol=1e-5)


def test_offset_is_the_same_as_moving_it_into_the_response():
    sleep = companion.load_dataset("sleepstudy")
    known = 3.0 * sleep["Days"].to_numpy()
    with_offset = companion.lmer("Reaction ~ Days + (1 | Subject)", sleep, offset=known)
    moved = companion.lmer("y ~ Days + (1 | Subject)", sleep.assign(y=sleep.Reaction - known))
    np.testing.assert_allclose(with_offset.fixef, moved.fixef, rtol=1e-8)
    np.testing.assert_allclose(with_offset.loglik, moved.loglik, rtol=1e-10)


def test_uncorrelated_model_has_one_ranef_table_per_factor():
    sleep = companion.load_dataset("sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = companion.lmer("Reaction ~ Days + (Days || Subject)", sleep)
    assert list(fit.ranef["Subject"].columns) == ["(Intercept)", "Days"]
    assert len(fit.theta) == 2 and fit.n_params == 5
    assert len(fit.varcorr) == 3  # two variances and the residual, no covariance


def test_predictions_for_new_and_unseen_levels():
    sleep = companion.load_dataset("sleepstudy")
    fit = companion.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    np.testing.assert_allclose(fit.predict(sleep), fit.fitted, rtol=1e-12)
    np.testing.assert_allclose(fit.predict(), fit.fitted, rtol=1e-12)
    new = pd.DataFrame({"Days": [0.0, 5.0], "Subject": ["999", "308"]})
    with pytest.raises(ValueError, match="new levels of 'Subject'.*'999'.*allow_new_levels"):
        fit.predict(new)
    predicted = fit.predict(new, allow_new_levels=True)
    population = fit.fixef["(Intercept)"] + fit.fixef["Days"] * new["Days"]
    assert predicted[0] == pytest.approx(population[0])
    b = fit.ranef["Subject"].loc["308"]
    assert predicted[1] == pytest.approx(population[1] + b["(Intercept)"] + 5 * b["Days"])
    np.testing.assert_allclose(fit.predict(new, re_form="~0"), population)
    with pytest.raises(ValueError, match="type must be"):
        fit.predict(new, type="probability")


def test_glmm_predictions_are_on_the_link_scale_unless_asked(cbpp):
    fit = companion.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    link = fit.predict()
    np.testing.assert_allclose(fit.predict(cbpp), link, rtol=1e-12)
    np.testing.assert_allclose(fit.predict(type="response"), fit.fitted, rtol=1e-10)
    np.testing.assert_allclose(1 / (1 + np.exp(-link)), fit.fitted, rtol=1e-10)
    population = fit.predict(re_form="~0")
    np.testing.assert_allclose(population[cbpp.period == "1"], fit.fixef["(Intercept)"])


def test_likelihood_ratio_test_refits_by_ml():
    sleep = companion.load_dataset("sleepstudy")
    small = companion.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    big = companion.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    table = small.anova(big)
    ml_small = companion.lmer("Reaction ~ Days + (1 | Subject)", sleep, reml=False)
    ml_big = companion.lmer("Reaction ~ Days + (Days | Subject)", sleep, reml=False)
    expected = 2 * (ml_big.loglik - ml_small.loglik)
    assert table["Chisq"].iloc[1] == pytest.approx(expected, rel=1e-9)
    assert table["Df"].iloc[1] == 2 and table["Pr(>Chisq)"].iloc[1] < 1e-6


def test_deviance_function_for_teaching():
    sleep = companion.load_dataset("sleepstudy")
    devfun = companion.make_deviance("Reaction ~ Days + (Days | Subject)", sleep)
    fit = companion.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    assert devfun(fit.theta.to_numpy()) == pytest.approx(fit.reml_criterion, rel=1e-12)
    assert devfun(fit.theta.to_numpy() * 1.1) > fit.reml_criterion


def test_convergence_check_reports_the_gradient():
    from companion.engine.optimize import ConvergenceWarning, check_optimum
    from companion.engine.optimize import OptimizationRecord

    def bowl(x):
        return float(np.sum((x - 1.0) ** 2)), 2 * (x - 1.0)

    stopped_early = OptimizationRecord("test", np.zeros(2), np.array([0.5, 0.5]), 3, True,
                                       np.array([-1.0, -1.0]))
    with pytest.warns(ConvergenceWarning, match="max\\|grad\\| = 0.5"):
        check_optimum(bowl, stopped_early, np.full(2, -np.inf))
    at_minimum = OptimizationRecord("test", np.zeros(2), np.ones(2), 3, True, np.zeros(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_optimum(bowl, at_minimum, np.full(2, -np.inf))


def dense_criterion(design, theta, reml):
    """The profiled deviance (ML) or REML criterion from dense matrices, straight from
    lme4's formulas: the oracle for the sparse implementations."""
    layout = ThetaLayout([b.n_columns for b in design.blocks],
                         [b.n_levels for b in design.blocks])
    w, X, y = design.weights, design.X, design.y - design.offset
    ZL = design.Z @ layout.lambda_matrix(np.asarray(theta, float))
    n, p, q = len(y), X.shape[1], ZL.shape[1]
    big = np.hstack([ZL, X])
    system = big.T @ (big * w[:, None]) + np.diag(np.r_[np.ones(q), np.zeros(p)])
    solution = np.linalg.solve(system, big.T @ (w * y))
    residual = y - big @ solution
    pwrss = w @ residual**2 + solution[:q] @ solution[:q]
    A = system[:q, :q]
    log_det_a = np.linalg.slogdet(A)[1]
    schur = system[q:, q:] - system[q:, :q] @ np.linalg.solve(A, system[:q, q:])
    dof = n - p if reml else n
    value = log_det_a - np.log(w).sum() + dof * (1 + np.log(2 * np.pi * pwrss / dof))
    return value + np.linalg.slogdet(schur)[1] if reml else value


@pytest.mark.parametrize("formula", ["Reaction ~ Days + (Days | Subject)",
                                     "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
                                     "y ~ x + (1 | a) + (x | b)", "y ~ x + (x | b) + (1 | a)",
                                     "y ~ x + (1 | b) + (x | a)",
                                     "y ~ x + (1 | a) + (1 | b) + (1 | a:b)"])
@pytest.mark.parametrize("dense", [True, False])
def test_blocked_deviances_equal_the_dense_formulas(formula, dense):
    """The per-level deviance (one term) and the blocked one (several terms, crossed and
    nested, scalar and vector, first term scalar or vector; off-diagonal blocks dense or
    sparse) are lme4's criterion, with their exact gradients."""
    from companion.engine.profiled import ProfiledDeviance
    from companion.engine.optimize import with_numerical_gradient

    data = _crossed_data() if formula.startswith("y") else companion.load_dataset("sleepstudy")
    design = build_design(parse_formula(formula), data)
    design.weights = 1 + np.arange(design.n) % 3 / 2
    rng = np.random.default_rng(2)
    for reml in (True, False):
        deviance = ProfiledDeviance(design, reml, dense=dense)
        for trial in range(4):  # lme4's start (zeros off the diagonal), then random points
            theta = deviance.layout.start() * rng.uniform(0.2, 1.5) \
                + rng.normal(0, 0.2, deviance.layout.n_theta) if trial else \
                deviance.layout.start()
            theta = np.maximum(theta, np.nan_to_num(deviance.layout.lower_bounds(),
                                                    neginf=-9))
            assert deviance(theta) == pytest.approx(dense_criterion(design, theta, reml),
                                                    rel=1e-10)
            # central differences with step 1e-6 are good to about 1e-7 of the scale
            numerical = with_numerical_gradient(deviance, deviance.layout.lower_bounds())
            np.testing.assert_allclose(deviance.value_and_gradient(theta)[1],
                                       numerical(theta)[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dense", [True, False])
def test_blocked_factor_random_effects_and_conditional_covariances(dense):
    """The blocked factor's modes and condVar blocks against dense linear algebra."""
    from companion.engine.profiled import ProfiledDeviance

    design = build_design(parse_formula("y ~ x + (x | b) + (1 | a) + (1 | a:b)"),
                          _crossed_data())
    deviance = ProfiledDeviance(design, reml=True, dense=dense)
    theta = np.array([0.8, 0.3, 0.5, 0.7, 0.4])
    solution = deviance.solve(theta)
    Lam = deviance.layout.lambda_matrix(theta)
    ZL, X, y = design.Z @ Lam, design.X, design.y
    q = ZL.shape[1]
    A = ZL.T @ ZL + np.eye(q)
    u = np.linalg.solve(A, ZL.T @ (y - X @ solution.beta))
    np.testing.assert_allclose(solution.u, u, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(solution.b, Lam @ u, rtol=1e-9, atol=1e-12)
    dense = Lam @ np.linalg.solve(A, Lam.T)
    at = 0
    for block, blocks in zip(design.blocks, deviance.conditional_covariances(solution)):
        p = block.n_columns
        for k in range(block.n_levels):
            np.testing.assert_allclose(blocks[k], dense[at + k * p:at + (k + 1) * p,
                                                        at + k * p:at + (k + 1) * p],
                                       rtol=1e-9, atol=1e-12)
        at += block.size


def _crossed_data(n=150, seed=5):
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"a": rng.integers(6, size=n), "b": rng.integers(9, size=n),
                         "x": rng.normal(size=n)})
    data["y"] = (data.x + rng.normal(size=6)[data.a] + rng.normal(size=9)[data.b]
                 + rng.normal(size=n))
    return data


@pytest.mark.parametrize("rhs", ["Days", "1", "0 + Days", "Days + 1", "period",
                                 "period + size", "size + period"])
def test_plain_column_path_builds_what_patsy_builds(rhs):
    """Model matrices of plain column names skip patsy; they must equal patsy's."""
    from companion.engine.design import _plain_columns_matrix, patsy_matrix

    data = companion.load_dataset("sleepstudy" if "Days" in rhs else "cbpp")
    fast = _plain_columns_matrix(rhs, data)
    assert fast is not None
    slow = patsy_matrix(rhs, data)
    assert fast[1] == slow[1]
    np.testing.assert_array_equal(fast[0], slow[0])


@pytest.mark.parametrize("rhs", ["log(Days + 1)", "Days:Subject", "0 + Subject",
                                 "Days + Days"])
def test_other_expressions_go_to_patsy(rhs):
    from companion.engine.design import _plain_columns_matrix

    assert _plain_columns_matrix(rhs, companion.load_dataset("sleepstudy")) is None


def _central_differences(fun, x, h=1e-6):
    return np.array([(fun(x + h * e) - fun(x - h * e)) / (2 * h) for e in np.eye(len(x))])


@pytest.mark.parametrize("formula", ["Reaction ~ Days + (Days | Subject)",
                                     "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
                                     "y ~ x + (1 | a) + (x | b)"])
@pytest.mark.parametrize("reml", [True, False])
def test_gradient_of_the_deviance_is_exact(formula, reml):
    """The analytic gradient (one-term and dense implementations, prior weights
    included) against central differences of the criterion."""
    from companion.engine.profiled import ProfiledDeviance

    if formula.startswith("y"):
        rng = np.random.default_rng(5)
        data = pd.DataFrame({"a": rng.integers(6, size=120), "b": rng.integers(9, size=120),
                             "x": rng.normal(size=120)})
        data["y"] = data.x + rng.normal(size=6)[data.a] + rng.normal(size=9)[data.b] \
            + rng.normal(size=120)
    else:
        data = companion.load_dataset("sleepstudy")
    design = build_design(parse_formula(formula), data)
    design.weights = 1 + np.arange(design.n) % 3 / 2
    deviance = ProfiledDeviance(design, reml)
    rng = np.random.default_rng(1)
    for _ in range(3):
        theta = deviance.layout.start() * rng.uniform(0.2, 1.5) + rng.normal(0, 0.1,
                                                                             deviance.layout.n_theta)
        theta = np.maximum(theta, np.nan_to_num(deviance.layout.lower_bounds(), neginf=-9) + 0.05)
        value, gradient = deviance.value_and_gradient(theta)
        assert value == pytest.approx(deviance(theta), rel=1e-14)
        np.testing.assert_allclose(gradient, _central_differences(deviance, theta),
                                   rtol=1e-5, atol=1e-5)


def test_blocked_deviance_with_the_first_term_at_zero():
    """A first term estimated at zero (its block of Lambda all zeros) beside a vector term:
    the sparse blocks hold no entries then, and both storages must still agree."""
    from companion.engine.profiled import ProfiledDeviance

    rng = np.random.default_rng(1)
    n = 300
    data = pd.DataFrame({"s": rng.integers(60, size=n).astype(str),
                         "i": rng.integers(8, size=n).astype(str), "x": rng.normal(size=n),
                         "y": rng.normal(size=n)})
    design = build_design(parse_formula("y ~ x + (1 | s) + (x | i)"), data)
    theta = np.array([0.0, 0.8, 0.3, 0.2])
    dense, sparse = (ProfiledDeviance(design, True, dense=d).value_and_gradient(theta)
                     for d in (True, False))
    assert sparse[0] == pytest.approx(dense[0], rel=1e-12)
    np.testing.assert_allclose(sparse[1], dense[1], rtol=1e-8, atol=1e-10)
