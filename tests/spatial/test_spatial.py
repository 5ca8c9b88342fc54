"""Kriging (``companion.spatial``) against R's ``nlme::gls`` with ``corGaus(nugget = TRUE)``,
and the Bayesian GPs of ``companion.spatial_bayes`` against the exact formulas.

Tolerances. The gls fits are compared at 1e-5 relative (observed: 2.6e-6 for the ML nugget,
whose likelihood is flat; everything else 3e-7 or better; the log-likelihoods to 1e-13).
Both fits stop at a gradient below 1e-9; nlme's optimizer (nlminb) stops earlier, so the
parameters, not the log-likelihood, carry the remaining difference.
"""

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytest
from scipy import stats
from scipy.spatial.distance import cdist, pdist, squareform

from companion.spatial import kriging as spatial
from companion.spatial import gp as sb
from companion.spatial.kriging import KrigingError, krige_fit
from reference import load
from posterior_checks import MAX_RHAT

RTOL = 1e-5



@pytest.fixture(scope="module")
def fits(topo):
    return {method: krige_fit(topo, "z", ["x", "y"], method=method)
            for method in ("ML", "REML")}


# --- against R ----------------------------------------------------------------------------

@pytest.mark.parametrize("method, name", [("ML", "topo_gls_gauss_ml"),
                                          ("REML", "topo_gls_gauss_reml")])
def test_against_nlme_gls(fits, method, name):
    fit, r = fits[method], load(name)
    assert fit.converged and fit.nobs == r["nobs"] and fit.n_params == r["logLik_df"]
    ours = fit.quantities()
    expected = {"coef": r["coef"]["(Intercept)"], "se": r["se"]["(Intercept)"],
                "sigma": r["sigma"], "range": r["corStruct_params"]["range"],
                "nugget": r["corStruct_params"]["nugget"], "logLik": r["logLik"],
                "AIC": r["AIC"], "BIC": r["BIC"]}
    for key, value in expected.items():
        assert ours[key] == pytest.approx(value, rel=RTOL), key
    gp = r["gp_parametrisation"]
    assert fit.partial_sill == pytest.approx(gp["partial_sill"], rel=RTOL)
    assert fit.nugget_variance == pytest.approx(gp["nugget_variance"], rel=RTOL)
    assert fit.sigma**2 == pytest.approx(gp["total_variance"], rel=RTOL)
    assert fit.length_scale == pytest.approx(gp["length_scale_if_kernel_exp_minus_d2_over_2l2"],
                                             rel=RTOL)


def test_reference_table(fits):
    table = spatial.reference_table(fits["REML"], "topo_gls_gauss_reml")
    assert list(table.columns) == ["R (nlme::gls)", "Python", "relative difference"]
    assert table["relative difference"].abs().max() < RTOL


@pytest.mark.parametrize("kernel", ["gaussian", "exponential"])
def test_ml_loglik_is_the_normal_density(topo, kernel):
    """The profiled ML log-likelihood is the multivariate normal density at the estimates
    (this also checks the exponential kernel, for which there is no R reference)."""
    fit = krige_fit(topo, "z", ["x", "y"], method="ML", kernel=kernel)
    d = squareform(pdist(topo[["x", "y"]].to_numpy())) / fit.range
    rho = np.exp(-d**2) if kernel == "gaussian" else np.exp(-d)
    cov = fit.sigma**2 * ((1 - fit.nugget) * rho + fit.nugget * np.eye(len(topo)))
    density = stats.multivariate_normal(np.full(len(topo), fit.beta), cov).logpdf(topo["z"])
    assert fit.loglik == pytest.approx(density, rel=1e-10)


@pytest.mark.parametrize("method", ["ML", "REML"])
def test_analytic_gradient(topo, method):
    x, z = topo[["x", "y"]].to_numpy(), topo["z"].to_numpy()
    dist = squareform(pdist(x))

    def loglik(theta):
        r, g = np.exp(theta[0]), 1 / (1 + np.exp(-theta[1]))
        return spatial._profile(dist, z, r, g, "gaussian", method).loglik

    theta = np.array([0.3, -2.0])
    _, grad = spatial._profile(dist, z, np.exp(0.3), 1 / (1 + np.exp(2.0)), "gaussian", method,
                               gradient=True)
    h = 1e-6
    numeric = [(loglik(theta + h * e) - loglik(theta - h * e)) / (2 * h) for e in np.eye(2)]
    np.testing.assert_allclose(grad, numeric, rtol=1e-5)


# --- predictions --------------------------------------------------------------------------

def test_interpolates_without_nugget(topo):
    fit = krige_fit(topo, "z", ["x", "y"], method="ML", nugget=False)
    assert fit.nugget == 0 and fit.n_params == 3
    at_data = fit.predict(topo)
    np.testing.assert_allclose(at_data["mean"], topo["z"], rtol=1e-8)
    assert at_data["sd"].max() < 1e-3 * fit.sigma


def test_predictions_are_the_blup(fits, topo):
    """Mean and SD against the textbook universal-kriging formulas, by explicit inverse."""
    fit = fits["REML"]
    new = pd.DataFrame({"x": [0.5, 3.3, 6.4], "y": [6.0, 2.2, 0.1]})
    x = topo[["x", "y"]].to_numpy()
    corr = lambda a, b: (1 - fit.nugget) * np.exp(-(cdist(a, b) / fit.range) ** 2)  # noqa: E731
    c = corr(x, x) + fit.nugget * np.eye(len(x))
    c0 = corr(x, new.to_numpy())
    ci = np.linalg.inv(c)
    one = np.ones(len(x))
    mean = fit.beta + c0.T @ ci @ (topo["z"].to_numpy() - fit.beta)
    for noise, v0 in [(False, 1 - fit.nugget), (True, 1.0)]:
        var = v0 - np.einsum("ij,ik,kj->j", c0, ci, c0) + (1 - one @ ci @ c0) ** 2 / (
            one @ ci @ one)
        got = fit.predict(new, noise=noise)
        np.testing.assert_allclose(got["mean"], mean, rtol=1e-10)
        np.testing.assert_allclose(got["sd"], fit.sigma * np.sqrt(var), rtol=1e-8)
    assert list(got.index) == list(new.index)


def test_sds_positive_and_far_points(fits):
    fit = fits["REML"]
    grid = np.array([[a, b] for a in np.linspace(0, 6.5, 9) for b in np.linspace(0, 6.5, 9)])
    smooth, noisy = fit.predict(grid), fit.predict(grid, noise=True)
    assert (smooth["sd"] > 0).all() and (noisy["sd"] > smooth["sd"]).all()
    far = fit.predict(np.array([[100.0, 100.0]]), noise=True)
    assert far["mean"].iloc[0] == pytest.approx(fit.beta)
    assert far["sd"].iloc[0] == pytest.approx(fit.sigma * np.sqrt(
        1 + 1 / fit._ones_cinv_ones))


def test_units_do_not_matter(topo):
    a = krige_fit(topo, "z", ["x", "y"], method="REML")
    b = krige_fit(topo.assign(x=topo.x * 50, y=topo.y * 50), "z", ["x", "y"], method="REML")
    assert b.range == pytest.approx(50 * a.range, rel=1e-6)
    assert b.loglik == pytest.approx(a.loglik, rel=1e-10)


# --- errors -------------------------------------------------------------------------------

def test_errors(topo):
    with pytest.raises(KrigingError, match="no column 'w'"):
        krige_fit(topo, "w", ["x", "y"])
    with pytest.raises(KrigingError, match="no column 'u'"):
        krige_fit(topo, "z", ["x", "u"])
    with pytest.raises(KrigingError, match="1 missing"):
        krige_fit(topo.assign(z=topo.z.where(topo.index != 3)), "z", ["x", "y"])
    with pytest.raises(KrigingError, match="at least 5 points"):
        krige_fit(topo.head(4), "z", ["x", "y"])
    with pytest.raises(KrigingError, match="method"):
        krige_fit(topo, "z", ["x", "y"], method="OLS")
    with pytest.raises(KrigingError, match="kernel"):
        krige_fit(topo, "z", ["x", "y"], kernel="matern")
    with pytest.raises(KrigingError, match="numeric"):
        krige_fit(topo.assign(x=topo.x.astype(str)), "z", ["x", "y"])
    with pytest.raises(KrigingError, match="constant"):
        krige_fit(topo.assign(z=1.0), "z", ["x", "y"])
    with pytest.raises(KrigingError, match="share a location"):
        krige_fit(pd.concat([topo, topo.head(1)]), "z", ["x", "y"], nugget=False)
    with pytest.raises(KrigingError, match="DataFrame"):
        krige_fit(topo.to_numpy(), "z", ["x", "y"])
    assert issubclass(KrigingError, ValueError)


def test_prediction_errors(fits):
    fit = fits["ML"]
    with pytest.raises(KrigingError, match="no column 'y'"):
        fit.predict(pd.DataFrame({"x": [1.0]}))
    with pytest.raises(KrigingError, match="shape"):
        fit.predict(np.zeros((2, 3)))
    with pytest.raises(KrigingError, match="missing"):
        fit.predict(np.array([[1.0, np.nan]]))


# --- the Bayesian GPs ---------------------------------------------------------------------

def _fake_fit(kind, x, y, draws, basis=None, sqrt_psd=None):
    """A GPFit whose 'posterior' is given draws (one chain), on the standardised scale."""
    posterior = {k: np.asarray(v, float)[None, :] for k, v in draws.items()}
    if sqrt_psd is not None:
        posterior["sqrt_psd"] = sqrt_psd[None, :, :]
    idata = az.from_dict(posterior=posterior)
    return sb.GPFit(kind, "z", ["x", "y"], idata, 0.0, 0.0, 0.0, 1.0, x, y,
                    _basis=basis or {})


def test_exact_gp_prediction_is_the_conditional_normal(fits, topo):
    """With every draw at the kriging estimates, the predictive mean and SD are the GP's
    conditional ones (kriging's mean; its SD without the term for an estimated mean)."""
    fit = fits["REML"]
    params = sb.kriging_as_gp(fit)
    n_draws = 4000
    draws = {k: np.full(n_draws, v) for k, v in params.items()}
    x, y = topo[["x", "y"]].to_numpy(), topo["z"].to_numpy()
    fake = _fake_fit("exact", x, y, draws)
    new = np.array([[1.0, 1.0], [3.0, 5.5]])
    got = fake.predict(new, noise=False)
    krige = fit.predict(new)
    extra = (1 - np.ones(len(x)) @ np.linalg.solve(
        (1 - fit.nugget) * np.exp(-(cdist(x, x) / fit.range) ** 2) + fit.nugget * np.eye(len(x)),
        (1 - fit.nugget) * np.exp(-(cdist(x, new) / fit.range) ** 2))) ** 2 / fit._ones_cinv_ones
    sd = np.sqrt(krige["sd"] ** 2 - fit.sigma**2 * extra)
    np.testing.assert_allclose(got["mean"], krige["mean"], atol=5 * sd.max() / np.sqrt(n_draws))
    np.testing.assert_allclose(got["sd"], sd, rtol=0.05)


def test_hsgp_basis_and_spectral_density_are_pymcs():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 4, size=(30, 2))
    m, c = [6, 5], 1.3
    center = (x.max(0) + x.min(0)) / 2
    L = c * np.abs(x - center).max(0)  # noqa: N806
    with pm.Model():
        cov = 1.7**2 * pm.gp.cov.ExpQuad(2, ls=0.8)
        gp = pm.gp.HSGP(m=m, L=list(L), cov_func=cov)
        phi, sqrt_psd = gp.prior_linearized(x - center)
        phi, sqrt_psd = phi.eval(), sqrt_psd.eval()
    np.testing.assert_allclose(sb.hsgp_basis(x, center, L, m), phi, rtol=1e-10, atol=1e-12)
    # hsgp_plugin_mean's spectral density: through a prediction with one basis function on
    eig = pm.gp.hsgp_approx.calc_eigenvalues(L, m)
    ours = 1.7**2 * 2 * np.pi * 0.8**2 * np.exp(-0.5 * 0.8**2 * eig.sum(1))
    np.testing.assert_allclose(np.sqrt(ours), sqrt_psd, rtol=1e-10)


def test_hsgp_marginal_likelihood_is_the_low_rank_normal():
    """The collapsed HSGP likelihood (Woodbury) equals the normal density with covariance
    tau^2 I + Phi S^2 Phi'."""
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 5, size=(40, 2))
    y = np.sin(x[:, 0]) + 0.1 * rng.standard_normal(40)
    m = (5, 4)
    model, basis = sb.hsgp_model(x, y, m, 1.5)
    point = {"beta": 0.2, "sigma_log__": np.log(0.9), "phi_log__": np.log(1.1),
             "tau_log__": np.log(0.3)}
    [graph] = model.replace_rvs_by_values([model.potentials[0]])
    values = {v.name: v for v in model.value_vars}
    potential = pytensor.function([values[k] for k in point], graph,
                                  on_unused_input="ignore")(*point.values())
    phi = sb.hsgp_basis(x, basis["center"], basis["L"], m)
    eig = pm.gp.hsgp_approx.calc_eigenvalues(basis["L"], m)
    psd = 0.9**2 * 2 * np.pi * 1.1**2 * np.exp(-0.5 * 1.1**2 * eig.sum(1))
    cov = 0.3**2 * np.eye(40) + phi @ np.diag(psd) @ phi.T
    assert float(potential) == pytest.approx(
        stats.multivariate_normal(np.full(40, 0.2), cov).logpdf(y), rel=1e-9)


def test_hsgp_prediction_matches_the_plugin_mean(fits, topo):
    fit = fits["REML"]
    params = sb.kriging_as_gp(fit)
    x, z = topo[["x", "y"]].to_numpy(), topo["z"].to_numpy()
    m, c = (12, 12), 1.5
    model, basis = sb.hsgp_model(x, (z - z.mean()) / z.std(ddof=1), m, c)
    eig = pm.gp.hsgp_approx.calc_eigenvalues(basis["L"], m)
    y_sd = z.std(ddof=1)
    # draws on the standardised scale
    std = {"beta": (params["beta"] - z.mean()) / y_sd, "sigma": params["sigma"] / y_sd,
           "phi": params["phi"], "tau": params["tau"] / y_sd}
    sqrt_psd = np.sqrt(std["sigma"] ** 2 * 2 * np.pi * std["phi"] ** 2
                       * np.exp(-0.5 * std["phi"] ** 2 * eig.sum(1)))
    n_draws = 3000
    fake = sb.GPFit("HSGP", "z", ["x", "y"], az.from_dict(posterior={
        **{k: np.full((1, n_draws), v) for k, v in std.items()},
        "sqrt_psd": np.tile(sqrt_psd, (1, n_draws, 1))}), 0.0, 0.0, float(z.mean()), y_sd,
        x, (z - z.mean()) / y_sd, _basis=basis)
    new = np.array([[1.0, 1.0], [3.0, 5.5], [5.0, 2.0]])
    got = fake.predict(new, noise=False)
    plugin = sb.hsgp_plugin_mean(x, z, new, params, m, c)
    np.testing.assert_allclose(got["mean"], plugin, atol=5 * got["sd"].max() / np.sqrt(n_draws))
    # and with this many basis functions the HSGP is close to the exact GP
    np.testing.assert_allclose(plugin, fit.predict(new)["mean"], atol=2.0)


def test_scores():
    truth = np.array([0.0, 1.0, 2.0, 10.0])
    pred = pd.DataFrame({"mean": [0.0, 1.0, 2.0, 2.0], "sd": [1.0, 1.0, 1.0, 1.0]})
    s = sb.scores(truth, pred)
    assert s["RMSE"] == pytest.approx(4.0)
    assert s["coverage"] == 0.75
    assert s["width"] == pytest.approx(2 * 1.959963984540054)


@pytest.mark.slow
def test_topo_exact_gp_samples(topo, fits):
    """The chapter's model with its settings: it mixes, and the posterior mean of beta is
    near the REML estimate (well within a posterior SD)."""
    fit = sb.gp_fit(topo, "z", ["x", "y"], draws=1000, tune=500, chains=2, seed=20232023)
    summary = fit.summary()
    assert fit.divergences() <= 3
    assert summary["r_hat"].max() < MAX_RHAT
    assert abs(summary.loc["beta", "mean"] - fits["REML"].beta) < summary.loc["beta", "sd"]
    pred = fit.predict(topo.head(5), noise=False)
    assert (pred["lower"] < pred["mean"]).all() and (pred["mean"] < pred["upper"]).all()
    refit = fit.refit(topo.iloc[:40], seed=2)
    assert refit.compile_time == 0.0 and refit._x.shape == (40, 2)
    with pytest.raises(KrigingError, match="at least 5"):
        sb.gp_fit(topo.head(3), "z", ["x", "y"])
