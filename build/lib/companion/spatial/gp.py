"""Bayesian Gaussian-process regression in PyMC, sampled by nutpie (exercises 1 and 5).

The model is the chapter's (section 8.6, exercise 5, ``code/gaussian_process_pred.stan``):
a constant mean ``beta``, a squared-exponential covariance and a nugget,

    y = beta + S(x) + e,   Cov(S(x), S(x')) = sigma^2 exp(-|x - x'|^2 / (2 phi^2)),
    e ~ N(0, tau^2),

which is Stan's ``gp_exp_quad_cov(x, sigma, phi)`` plus ``tau^2`` on the diagonal and
nlme's ``corGaus`` with ``range = sqrt(2) phi``, ``sigma_gls^2 = sigma^2 + tau^2`` and
``nugget = tau^2 / (sigma^2 + tau^2)``.

The chapter does not print its Stan file. The priors are those of the same author's Stan
program for the same model on another data set (``rongelap_gaussian_pred.stan``, book
repository ``XiangyunHuang/data-analysis-in-action``): ``beta ~ N(0, 1)``, ``sigma ~
InvGamma(5, 5)``, ``phi ~ N+(0, 1)``, ``tau ~ N+(0, 1)``. On heights in feet or metres a
N(0, 1) prior on the mean makes no sense, so the response is standardised first (minus
its mean, over its standard deviation) and the priors apply on that scale; ``phi`` is in
the units of the coordinates. Results are reported back on the data scale.

Two fits:

* :func:`gp_fit`: the exact marginal GP (``pm.gp.Marginal``), for a few hundred points
  at most (topo's 52);
* :func:`hsgp_fit`: the Hilbert-space approximation (``pm.gp.HSGP``, Solin and Särkkä
  2020; Riutort-Mayol et al. 2023) with its basis coefficients integrated out
  analytically: given the hyperparameters the coefficients are Gaussian, so the marginal
  likelihood needs only an M x M Cholesky factor (M basis functions) whatever the number
  of points, and NUTS samples just (beta, sigma, phi, tau). The coefficients are drawn
  afterwards, one per posterior draw, from their Gaussian conditional.

Predictions (:meth:`GPFit.predict`) draw, for each posterior draw, one value from the
exact conditional normal at each new point, and summarise the draws: mean, SD and the
central 95% interval.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
from scipy import linalg
from scipy.spatial.distance import cdist
from threadpoolctl import threadpool_limits

from companion.results import posterior_table
from companion.spatial.kriging import KrigeFit, KrigingError, check_data, coordinates

PARAMETERS = ["beta", "sigma", "phi", "tau"]
SEED = 20232023  # the chapter's


def _priors() -> tuple:
    beta = pm.Normal("beta", 0.0, 1.0)
    sigma = pm.InverseGamma("sigma", 5.0, 5.0)
    phi = pm.HalfNormal("phi", 1.0)
    tau = pm.HalfNormal("tau", 1.0)
    return beta, sigma, phi, tau


def _sample(compiled, draws: int, tune: int, chains: int, seed: int):
    """nutpie with one BLAS thread per chain: the chains already use the cores, and
    OpenBLAS threads inside each chain only fight over them."""
    import nutpie

    start = time.perf_counter()
    with threadpool_limits(1):
        idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed,
                              progress_bar=False, save_warmup=False)
    return idata, time.perf_counter() - start


@dataclass
class GPFit:
    """A sampled GP: the posterior, where the data were, and the timings (seconds)."""

    kind: str  # "exact" or "HSGP"
    response: str
    coords: list[str]
    idata: az.InferenceData
    compile_time: float
    sampling_time: float
    y_mean: float  # the standardisation of the response
    y_sd: float
    _x: np.ndarray = field(repr=False)
    _y: np.ndarray = field(repr=False)  # standardised
    _compiled: object = field(repr=False, default=None)
    _basis: dict = field(repr=False, default_factory=dict)
    _settings: dict = field(repr=False, default_factory=dict)

    @property
    def wall_time(self) -> float:
        return self.compile_time + self.sampling_time

    def draws(self) -> dict[str, np.ndarray]:
        """Posterior draws of beta, sigma, phi, tau on the data scale (chains stacked)."""
        post = self.idata.posterior
        out = {k: post[k].to_numpy().ravel() for k in PARAMETERS}
        out["beta"] = self.y_mean + self.y_sd * out["beta"]
        out["sigma"] = self.y_sd * out["sigma"]
        out["tau"] = self.y_sd * out["tau"]
        return out

    def summary(self) -> pd.DataFrame:
        """Posterior mean, SD, 95% interval, bulk ESS and R-hat, on the data scale."""
        draws = self.draws()
        diag = az.summary(self.idata, var_names=PARAMETERS, kind="diagnostics")
        rows = {k: {"mean": v.mean(), "sd": v.std(ddof=1),
                    "2.5%": np.quantile(v, 0.025), "97.5%": np.quantile(v, 0.975),
                    "ess_bulk": diag.loc[k, "ess_bulk"], "r_hat": diag.loc[k, "r_hat"]}
                for k, v in draws.items()}
        return pd.DataFrame.from_dict(rows, orient="index")

    @property
    def fixef_posterior(self) -> pd.DataFrame:
        """The constant mean's posterior under the names Bayesian fits share."""
        return posterior_table({"(Intercept)": self.draws()["beta"]})

    @property
    def fixef(self) -> pd.Series:
        return self.fixef_posterior["mean"].rename("fixef")

    def divergences(self) -> int:
        return int(self.idata.sample_stats["diverging"].sum())

    def predict(self, points, noise: bool = True, seed: int = SEED,
                max_draws: int | None = None) -> pd.DataFrame:
        """Posterior predictive at ``points`` (DataFrame with the coordinate columns or an
        (m, d) array): mean, sd and the 95% interval (``lower``, ``upper``) of a new
        measurement (``noise=True``) or of the surface ``beta + S(x)``."""
        new, index = coordinates(points, self.coords, "points")
        rng = np.random.default_rng(seed)
        post = self.idata.posterior
        draws = {k: post[k].to_numpy().ravel() for k in PARAMETERS}
        keep = np.arange(len(draws["beta"]))
        if max_draws is not None and max_draws < len(keep):
            keep = np.linspace(0, len(keep) - 1, max_draws).round().astype(int)
        with threadpool_limits(1):
            if self.kind == "exact":
                values = self._predict_exact(new, draws, keep, noise, rng)
            else:
                values = self._predict_hsgp(new, draws, keep, noise, rng)
        values = self.y_mean + self.y_sd * values
        lower, upper = np.quantile(values, [0.025, 0.975], axis=0)
        return pd.DataFrame({"mean": values.mean(axis=0), "sd": values.std(axis=0, ddof=1),
                             "lower": lower, "upper": upper}, index=index)

    def _predict_exact(self, new, draws, keep, noise, rng):
        d_train = cdist(self._x, self._x) ** 2
        d_cross = cdist(self._x, new) ** 2
        out = np.empty((len(keep), len(new)))
        for row, k in enumerate(keep):
            beta, sigma, phi, tau = (draws[p][k] for p in PARAMETERS)
            cov = sigma**2 * np.exp(-d_train / (2 * phi**2))
            cov[np.diag_indices_from(cov)] += tau**2 + 1e-6  # pm.gp.Marginal's jitter
            chol = linalg.cholesky(cov, lower=True)
            cross = sigma**2 * np.exp(-d_cross / (2 * phi**2))
            a = linalg.solve_triangular(chol, cross, lower=True)
            w = linalg.solve_triangular(chol, self._y - beta, lower=True)
            var = sigma**2 - np.sum(a**2, axis=0) + (tau**2 if noise else 0.0)
            out[row] = beta + a.T @ w + np.sqrt(np.clip(var, 0, None)) * \
                rng.standard_normal(len(new))
        return out

    def _predict_hsgp(self, new, draws, keep, noise, rng):
        basis = self._basis
        phi_new = hsgp_basis(new, basis["center"], basis["L"], basis["m"])
        sqrt_psd = self.idata.posterior["sqrt_psd"].to_numpy().reshape(-1, phi_new.shape[1])
        gram, b, c = basis["gram"], basis["phi_y"], basis["phi_one"]
        m = gram.shape[0]
        out = np.empty((len(keep), len(new)))
        for row, k in enumerate(keep):
            beta, tau, s = draws["beta"][k], draws["tau"][k], sqrt_psd[k]
            # coefficients w | y, theta ~ N(B^-1 S Phi'(y - beta), tau^2 B^-1),
            # B = tau^2 I + S Phi'Phi S
            big_b = s[:, None] * gram * s[None, :]
            big_b[np.diag_indices(m)] += tau**2
            chol = linalg.cholesky(big_b, lower=True)
            mean_w = linalg.cho_solve((chol, True), s * (b - beta * c))
            w = mean_w + tau * linalg.solve_triangular(chol.T, rng.standard_normal(m))
            out[row] = beta + phi_new @ (s * w)
            if noise:
                out[row] += tau * rng.standard_normal(len(new))
        return out

    def refit(self, data: pd.DataFrame, seed: int | None = None) -> "GPFit":
        """The same model on other data, reusing the compiled sampler (exact GP only)."""
        if self.kind != "exact":
            raise NotImplementedError("refit reuses the compiled exact GP only")
        _, x, z = check_data(data, self.response, self.coords)
        y_mean, y_sd = float(z.mean()), float(z.std(ddof=1))
        y = (z - y_mean) / y_sd
        compiled = self._compiled.with_data(X=x, y_obs=y)
        s = self._settings
        idata, sampling = _sample(compiled, s["draws"], s["tune"], s["chains"],
                                  s["seed"] if seed is None else seed)
        return GPFit("exact", self.response, self.coords, idata, 0.0, sampling, y_mean,
                     y_sd, x, y, compiled, {}, dict(s))


def _standardise(data, response, coords, min_points=5):
    coords, x, z = check_data(data, response, coords)
    if len(z) < min_points:
        raise KrigingError(f"a GP fit needs at least {min_points} points, not {len(z)}")
    y_mean, y_sd = float(z.mean()), float(z.std(ddof=1))
    if y_sd == 0:
        raise KrigingError(f"{response!r} is constant")
    return coords, x, (z - y_mean) / y_sd, y_mean, y_sd


def gp_model(x: np.ndarray, y: np.ndarray) -> pm.Model:
    """The exact GP on standardised ``y`` (``pm.gp.Marginal``), data as ``pm.Data``."""
    with pm.Model() as model:
        x_data = pm.Data("X", x)
        y_data = pm.Data("y_obs", y)
        beta, sigma, phi, tau = _priors()
        cov = sigma**2 * pm.gp.cov.ExpQuad(x.shape[1], ls=phi)
        gp = pm.gp.Marginal(mean_func=pm.gp.mean.Constant(beta), cov_func=cov)
        gp.marginal_likelihood("y", X=x_data, y=y_data, sigma=tau)
    return model


def gp_fit(data: pd.DataFrame, response: str, coords, draws: int = 1000, tune: int = 500,
           chains: int = 2, seed: int = SEED) -> GPFit:
    """The exact Bayesian GP; the defaults are the chapter's (2 chains, 500 warm-up and
    1000 sampling iterations each, seed 20232023)."""
    import nutpie

    coords, x, y, y_mean, y_sd = _standardise(data, response, coords)
    start = time.perf_counter()
    compiled = nutpie.compile_pymc_model(gp_model(x, y))
    compile_time = time.perf_counter() - start
    idata, sampling = _sample(compiled, draws, tune, chains, seed)
    settings = {"draws": draws, "tune": tune, "chains": chains, "seed": seed}
    return GPFit("exact", response, coords, idata, compile_time, sampling, y_mean, y_sd,
                 x, y, compiled, {}, settings)


# --- HSGP ---------------------------------------------------------------------------------

def hsgp_basis(x: np.ndarray, center: np.ndarray, L: np.ndarray, m) -> np.ndarray:  # noqa: N803
    """The Laplacian eigenfunctions of ``pm.gp.HSGP`` at ``x`` (as its
    ``prior_linearized``, in NumPy): one column per basis function."""
    eigvals = pm.gp.hsgp_approx.calc_eigenvalues(L, m)
    xs = np.asarray(x, dtype=float) - center
    if np.any(np.abs(xs) > L):
        raise KrigingError("points outside the HSGP domain [center - L, center + L]")
    phi = np.ones((len(xs), len(eigvals)))
    for d in range(len(m)):
        phi *= np.sin(np.sqrt(eigvals[:, d]) * (xs[:, [d]] + L[d])) / np.sqrt(L[d])
    return phi


def hsgp_model(x: np.ndarray, y: np.ndarray, m, c: float):
    """The HSGP on standardised ``y`` with the basis coefficients integrated out.

    Returns the model and the basis (center, L, m, Phi'Phi, Phi'y, Phi'1)."""
    center = (x.max(axis=0) + x.min(axis=0)) / 2
    L = c * np.abs(x - center).max(axis=0)  # noqa: N806  (pm.gp.HSGP's set_boundary)
    phi = hsgp_basis(x, center, L, m)
    n, n_basis = phi.shape
    gram, phi_y, phi_one = phi.T @ phi, phi.T @ y, phi.sum(axis=0)
    yy, y_sum = float(y @ y), float(y.sum())
    with pm.Model() as model:
        beta, sigma, phi_, tau = _priors()
        cov = sigma**2 * pm.gp.cov.ExpQuad(x.shape[1], ls=phi_)
        gp = pm.gp.HSGP(m=list(m), L=list(L), cov_func=cov)
        _, sqrt_psd = gp.prior_linearized(x - center)
        s = pm.Deterministic("sqrt_psd", sqrt_psd)
        # y ~ N(beta, tau^2 I + Phi S^2 Phi'), by Woodbury with B = tau^2 I + S G S:
        #   log det = (n - M) log tau^2 + log det B,
        #   quadratic form = (r'r - (S Phi'r)' B^-1 (S Phi'r)) / tau^2
        phi_r = s * (phi_y - beta * phi_one)
        rr = yy - 2 * beta * y_sum + n * beta**2
        big_b = tau**2 * pt.eye(n_basis) + s[:, None] * gram * s[None, :]
        chol = pt.linalg.cholesky(big_b)
        u = pt.linalg.solve_triangular(chol, phi_r, lower=True)
        logdet = (n - n_basis) * pt.log(tau**2) + 2 * pt.sum(pt.log(pt.diag(chol)))
        quad = (rr - u @ u) / tau**2
        pm.Potential("marginal_loglik", -0.5 * (n * np.log(2 * np.pi) + logdet + quad))
    basis = {"center": center, "L": L, "m": list(m), "gram": gram, "phi_y": phi_y,
             "phi_one": phi_one}
    return model, basis


def hsgp_fit(data: pd.DataFrame, response: str, coords, m=(24, 17), c: float = 1.2,
             draws: int = 400, tune: int = 400, chains: int = 2, seed: int = SEED) -> GPFit:
    """The HSGP approximation with ``m`` basis functions per coordinate, domain ``c``
    times the half-range of the training points; NUTS on (beta, sigma, phi, tau)."""
    import nutpie

    coords, x, y, y_mean, y_sd = _standardise(data, response, coords)
    if len(m) != len(coords):
        raise KrigingError(f"give one number of basis functions per coordinate ({coords})")
    start = time.perf_counter()
    model, basis = hsgp_model(x, y, m, c)
    compiled = nutpie.compile_pymc_model(model)
    compile_time = time.perf_counter() - start
    idata, sampling = _sample(compiled, draws, tune, chains, seed)
    settings = {"draws": draws, "tune": tune, "chains": chains, "seed": seed, "m": list(m),
                "c": c}
    return GPFit("HSGP", response, coords, idata, compile_time, sampling, y_mean, y_sd,
                 x, y, compiled, basis, settings)


# --- comparison helpers -------------------------------------------------------------------

def kriging_as_gp(fit: KrigeFit) -> dict[str, float]:
    """A kriging fit in the GP parametrisation (beta, sigma, phi, tau)."""
    if fit.kernel != "gaussian":
        raise KrigingError("only the Gaussian kernel has the GP's (sigma, phi) form")
    return {"beta": fit.beta, "sigma": float(np.sqrt(fit.partial_sill)),
            "phi": fit.length_scale, "tau": float(np.sqrt(fit.nugget_variance))}


def scores(truth, prediction: pd.DataFrame) -> dict[str, float]:
    """RMSE, share of ``truth`` inside the 95% intervals, and their mean width.

    ``prediction`` has ``mean`` and either ``lower``/``upper`` or ``sd`` (then the
    interval is mean +- 1.96 sd)."""
    truth = np.asarray(truth, dtype=float)
    mean = prediction["mean"].to_numpy()
    if "lower" in prediction:
        lower, upper = prediction["lower"].to_numpy(), prediction["upper"].to_numpy()
    else:
        half = 1.959963984540054 * prediction["sd"].to_numpy()
        lower, upper = mean - half, mean + half
    return {"RMSE": float(np.sqrt(np.mean((truth - mean) ** 2))),
            "coverage": float(np.mean((truth >= lower) & (truth <= upper))),
            "width": float(np.mean(upper - lower))}


def hsgp_plugin_mean(x_train: np.ndarray, y_train: np.ndarray, x_new: np.ndarray,
                     params: dict[str, float], m, c: float) -> np.ndarray:
    """The HSGP's predictive mean with fixed ``params`` (beta, sigma, phi, tau, data
    scale): how close the basis of ``m`` functions comes to the exact GP, whose mean is
    the kriging predictor with the same parameters."""
    x_train, x_new = np.asarray(x_train, float), np.asarray(x_new, float)
    center = (x_train.max(axis=0) + x_train.min(axis=0)) / 2
    L = c * np.abs(x_train - center).max(axis=0)  # noqa: N806
    phi_train = hsgp_basis(x_train, center, L, m)
    eigvals = pm.gp.hsgp_approx.calc_eigenvalues(L, m)
    d = x_train.shape[1]
    ell, sigma = params["phi"], params["sigma"]
    psd = sigma**2 * (2 * np.pi) ** (d / 2) * ell**d * np.exp(-0.5 * ell**2 * eigvals.sum(1))
    s = np.sqrt(psd)
    big_b = s[:, None] * (phi_train.T @ phi_train) * s[None, :]
    big_b[np.diag_indices_from(big_b)] += params["tau"] ** 2
    w = linalg.solve(big_b, s * (phi_train.T @ (np.asarray(y_train, float) - params["beta"])),
                     assume_a="pos")
    return params["beta"] + hsgp_basis(x_new, center, L, m) @ (s * w)
