"""Kriging: a Gaussian process with a constant mean, fitted by ML or REML.

The frequentist counterpart of R's

    nlme::gls(z ~ 1, data = topo, correlation = corGaus(form = ~x + y, nugget = TRUE),
              method = "REML")   # or "ML"

in nlme's parametrisation: heights ``z_i = beta + e_i`` with ``Var(e_i) = sigma^2`` and, for
two different points at distance ``d``,

    Cov(e_i, e_j) = sigma^2 (1 - nugget) rho(d / range),

``rho(r) = exp(-r^2)`` for ``kernel="gaussian"`` (corGaus) and ``exp(-r)`` for
``kernel="exponential"`` (corExp). So ``sigma^2 (1 - nugget)`` is the partial sill,
``sigma^2 nugget`` the nugget variance, and ``range / sqrt(2)`` the length scale ``l`` of
the kernel ``exp(-d^2 / (2 l^2))`` that Stan's ``gp_exp_quad_cov`` and PyMC's ``ExpQuad``
use.

``beta`` and ``sigma^2`` are profiled out; ``log(range)`` and ``logit(nugget)`` (nlme's
unconstrained parameters) are found by a coarse grid, then BFGS and a few Newton steps
with the analytic gradient of the profiled (restricted) log-likelihood. The
log-likelihoods are nlme's:

* ML:   ``-n/2 (log(2 pi) + 1 + log(s2)) - log|C| / 2`` with ``s2 = r' C^-1 r / n``;
* REML: ``-(n-1)/2 (log(2 pi) + 1 + log(s2)) - log|C| / 2 - log(1' C^-1 1) / 2`` with
  ``s2 = r' C^-1 r / (n - 1)``.

The standard error of ``beta`` is nlme's: ``sqrt(n / (n - 1)) * sigma / sqrt(1' C^-1 1)``
for ML (nlme scales ``sigma`` to the residual degrees of freedom there), ``sigma /
sqrt(1' C^-1 1)`` for REML.

:meth:`KrigeFit.predict` gives the universal-kriging predictor and its standard deviation
(including the uncertainty of the estimated mean), either of the smooth surface
``beta + S(x)`` or of a new measurement there (``noise=True``, adding the nugget).

Example::

    fit = krige_fit(topo, "z", ["x", "y"], method="REML")
    fit.predict(grid)            # DataFrame: mean, sd
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import linalg, optimize
from scipy.spatial.distance import cdist, pdist, squareform

from companion.results import ModelResult, empty_varcorr

try:  # one BLAS thread for the fit: the matrices are small, and more threads only contend
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - threadpoolctl comes with the Bayesian extras
    def threadpool_limits(_limits):
        return nullcontext()

KERNELS = ("gaussian", "exponential")
METHODS = ("ML", "REML")
_LOG_2PI = float(np.log(2 * np.pi))


class KrigingError(ValueError):
    """Bad input to :func:`krige_fit` or :meth:`KrigeFit.predict`."""


# --- correlation --------------------------------------------------------------------------

def _rho(scaled: np.ndarray, kernel: str) -> np.ndarray:
    """The correlation function at ``d / range``."""
    return np.exp(-scaled**2) if kernel == "gaussian" else np.exp(-scaled)


def _drho_dlogrange(scaled: np.ndarray, kernel: str) -> np.ndarray:
    """Derivative of ``rho(d / range)`` with respect to ``log(range)``."""
    if kernel == "gaussian":
        return 2 * scaled**2 * np.exp(-scaled**2)
    return scaled * np.exp(-scaled)


def _logistic(x: float) -> float:
    return float(1 / (1 + np.exp(-x)))


@dataclass
class _Profile:
    """The profiled (restricted) log-likelihood at one (range, nugget), with what the
    estimates, the gradient and the predictions need."""

    loglik: float
    beta: float
    s2: float
    chol: np.ndarray  # lower Cholesky factor of the correlation matrix C
    ones_cinv_ones: float


def _profile(dist: np.ndarray, z: np.ndarray, range_: float, nugget: float, kernel: str,
             method: str, gradient: bool = False):
    n = len(z)
    rho = _rho(dist / range_, kernel)
    corr = (1 - nugget) * rho
    corr[np.diag_indices(n)] = 1.0
    try:
        chol = linalg.cholesky(corr, lower=True, check_finite=False)
    except linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(chol)) or np.min(np.diag(chol)) <= 0:
        return None
    ones = np.ones(n)
    u = linalg.solve_triangular(chol, ones, lower=True, check_finite=False)
    v = linalg.solve_triangular(chol, z, lower=True, check_finite=False)
    ucu = float(u @ u)
    beta = float(u @ v) / ucu
    w = v - beta * u  # L^-1 (z - beta)
    rss = float(w @ w)
    logdet = 2 * float(np.sum(np.log(np.diag(chol))))
    dof = n if method == "ML" else n - 1
    s2 = rss / dof
    loglik = -dof / 2 * (_LOG_2PI + 1 + np.log(s2)) - logdet / 2
    if method == "REML":
        loglik -= np.log(ucu) / 2
    result = _Profile(float(loglik), beta, s2, chol, ucu)
    if not gradient:
        return result
    # d loglik / d theta for theta = (log range, logit nugget):
    #   dof/2 * (a' dC a) / rss - tr(C^-1 dC) / 2  [+ REML: (b' dC b) / (2 * ucu)]
    # with a = C^-1 (z - beta), b = C^-1 1.
    cinv = linalg.cho_solve((chol, True), np.eye(n), check_finite=False)
    a = cinv @ (z - beta)
    b = cinv @ ones
    d_range = (1 - nugget) * _drho_dlogrange(dist / range_, kernel)
    np.fill_diagonal(d_range, 0.0)
    d_nugget = -nugget * (1 - nugget) * rho  # d corr / d logit(nugget), off the diagonal
    np.fill_diagonal(d_nugget, 0.0)
    grad = []
    for dc in (d_range, d_nugget):
        g = dof / 2 * float(a @ dc @ a) / rss - float(np.sum(cinv * dc)) / 2
        if method == "REML":
            g += float(b @ dc @ b) / (2 * ucu)
        grad.append(g)
    return result, np.array(grad)


# --- the fit ------------------------------------------------------------------------------

@dataclass(repr=False)
class KrigeFit(ModelResult):
    """A fitted kriging model (see the module docstring for the parametrisation), under
    the shared names: ``fixef`` is the constant mean (``beta``), ``vcov`` the square of its
    standard error as nlme reports it (``beta_se``)."""

    response: str
    coords: list[str]
    method: str
    kernel: str
    beta: float  # the constant mean (nlme's "(Intercept)")
    beta_se: float  # its standard error as nlme reports it (see the module docstring)
    sigma: float
    range: float
    nugget: float
    loglik: float
    nobs: int
    estimated_nugget: bool
    converged: bool
    evaluations: int
    gradient: np.ndarray
    _x: np.ndarray = field(repr=False)
    _z: np.ndarray = field(repr=False)
    _chol: np.ndarray = field(repr=False)
    _ones_cinv_ones: float = field(repr=False)

    varcorr = property(lambda self: empty_varcorr())  # the spatial correlation is below
    ranef = property(lambda self: {})

    @property
    def title(self) -> str:
        return (f"Kriging fit by {self.method} (nlme::gls with a {self.kernel} spatial "
                f"correlation{' and a nugget' if self.estimated_nugget else ''})")

    @property
    def formula(self) -> str:
        return f"{self.response} ~ 1, correlation in {' and '.join(self.coords)}"

    @property
    def fixef(self) -> pd.Series:
        return pd.Series({"(Intercept)": self.beta}, name="fixef")

    @property
    def vcov(self) -> pd.DataFrame:
        return pd.DataFrame([[self.beta_se**2]], index=["(Intercept)"],
                            columns=["(Intercept)"])

    # derived quantities, under the names the R reference uses
    @property
    def n_params(self) -> int:
        """nlme's ``logLik_df``: the mean, sigma, range and (if estimated) the nugget."""
        return 3 + int(self.estimated_nugget)

    @property
    def aic(self) -> float:
        return float(-2 * self.loglik + 2 * self.n_params)

    @property
    def bic(self) -> float:
        n = self.nobs - (1 if self.method == "REML" else 0)  # nlme uses N - p for REML
        return float(-2 * self.loglik + np.log(n) * self.n_params)

    @property
    def partial_sill(self) -> float:
        return self.sigma**2 * (1 - self.nugget)

    @property
    def nugget_variance(self) -> float:
        return self.sigma**2 * self.nugget

    @property
    def length_scale(self) -> float:
        """``l`` of ``exp(-d^2 / (2 l^2))`` (Gaussian kernel only): ``range / sqrt(2)``."""
        if self.kernel != "gaussian":
            raise AttributeError("length_scale is defined for the Gaussian kernel only")
        return float(self.range / np.sqrt(2))

    def quantities(self) -> dict[str, float]:
        """The fitted numbers, keyed as in the R reference JSON."""
        values = {"coef": self.beta, "se": self.beta_se, "sigma": self.sigma,
                  "range": self.range,
                  "nugget": self.nugget, "logLik": self.loglik, "AIC": self.aic,
                  "BIC": self.bic, "partial_sill": self.partial_sill,
                  "nugget_variance": self.nugget_variance}
        if self.kernel == "gaussian":
            values["length_scale"] = self.length_scale
        return values

    def summary_tables(self) -> list:
        sections = super().summary_tables()
        sections.insert(-1, ("Spatial correlation", pd.DataFrame(
            {"sigma": [self.sigma], "range": [self.range], "nugget": [self.nugget]},
            index=[self.kernel])))
        return sections

    def predict(self, points, noise: bool = False, chunk: int = 2000) -> pd.DataFrame:
        """Kriging mean and standard deviation at ``points``.

        ``points`` is a DataFrame with the coordinate columns or an array of shape
        (m, d). ``noise=False`` predicts the smooth surface ``beta + S(x)``; ``noise=True``
        a new measurement there (its variance adds the nugget ``sigma^2 * nugget``). The
        variance includes the uncertainty of the estimated mean (universal kriging).
        """
        new, index = coordinates(points, self.coords, "points")
        n = len(self._z)
        u = linalg.solve_triangular(self._chol, np.ones(n), lower=True)
        w = linalg.solve_triangular(self._chol, self._z - self.beta, lower=True)
        v0 = 1.0 if noise else 1.0 - self.nugget
        means, sds = [], []
        for start in range(0, len(new), chunk):
            block = new[start:start + chunk]
            cross = (1 - self.nugget) * _rho(cdist(self._x, block) / self.range, self.kernel)
            a = linalg.solve_triangular(self._chol, cross, lower=True)
            means.append(self.beta + a.T @ w)
            var = v0 - np.sum(a**2, axis=0) + (1 - u @ a) ** 2 / self._ones_cinv_ones
            sds.append(self.sigma * np.sqrt(np.clip(var, 0.0, None)))
        return pd.DataFrame({"mean": np.concatenate(means), "sd": np.concatenate(sds)},
                            index=index)

    def __repr__(self) -> str:
        return (f"KrigeFit({self.method}, {self.kernel}, n={self.nobs}: beta={self.beta:.6g}, "
                f"sigma={self.sigma:.6g}, range={self.range:.6g}, nugget={self.nugget:.6g}, "
                f"logLik={self.loglik:.6g})")


def coordinates(table, columns: list[str], what: str):
    """The coordinates as a float array (and the index to give the predictions)."""
    if isinstance(table, pd.DataFrame):
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise KrigingError(f"{what} has no column {', '.join(map(repr, missing))}; "
                               f"its columns are {', '.join(map(str, table.columns))}")
        values = table[columns].to_numpy(dtype=float)
        index = table.index
    else:
        values = np.asarray(table, dtype=float)
        if values.ndim != 2 or values.shape[1] != len(columns):
            raise KrigingError(f"{what} must be a DataFrame with columns {columns} or an "
                               f"array of shape (m, {len(columns)}), not shape {values.shape}")
        index = pd.RangeIndex(len(values))
    if not np.all(np.isfinite(values)):
        raise KrigingError(f"{what} has missing or infinite coordinates "
                           f"({int(np.sum(~np.isfinite(values).all(axis=1)))} rows)")
    return values, index


def check_data(data: pd.DataFrame, response: str, coords: list[str]):
    """The data checked for kriging: coordinate columns, response values, no gaps."""
    if not isinstance(data, pd.DataFrame):
        raise KrigingError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    if len(data) == 0:
        raise KrigingError("the data frame has no rows: there is nothing to fit")
    if isinstance(coords, str):
        coords = [coords]
    coords = list(coords)
    if not coords:
        raise KrigingError("give at least one coordinate column")
    missing = [c for c in [response, *coords] if c not in data.columns]
    if missing:
        raise KrigingError(f"data has no column {', '.join(map(repr, missing))}; "
                           f"its columns are {', '.join(map(str, data.columns))}")
    for column in [response, *coords]:
        if not pd.api.types.is_numeric_dtype(data[column]):
            raise KrigingError(f"column {column!r} must be numeric, not {data[column].dtype}")
        bad = int((~np.isfinite(data[column].to_numpy(dtype=float))).sum())
        if bad:
            raise KrigingError(f"column {column!r} has {bad} missing or infinite values; "
                               "drop those rows first")
    return coords, data[coords].to_numpy(dtype=float), data[response].to_numpy(dtype=float)


def krige_fit(data: pd.DataFrame, response: str, coords, method: str = "REML",
              kernel: str = "gaussian", nugget: bool = True, start: dict | None = None
              ) -> KrigeFit:
    """Fit ``response ~ 1`` with a spatial correlation over ``coords`` by ML or REML.

    ``coords`` names the coordinate columns (Euclidean distances). ``nugget=False`` fixes
    the nugget at zero (nlme's ``nugget = FALSE``): the predictor then interpolates the
    data. ``start`` may give ``range`` and ``nugget`` to start the optimizer from instead
    of the built-in grid search. BLAS runs on one thread during the fit.
    """
    with threadpool_limits(1):
        return _krige_fit(data, response, coords, method, kernel, nugget, start)


def _krige_fit(data, response, coords, method, kernel, nugget, start) -> KrigeFit:
    if method not in METHODS:
        raise KrigingError(f"method must be one of {METHODS}, not {method!r}")
    if kernel not in KERNELS:
        raise KrigingError(f"kernel must be one of {KERNELS}, not {kernel!r}")
    coords, x, z = check_data(data, response, coords)
    n = len(z)
    needed = 3 + int(nugget) + 1
    if n < needed:
        raise KrigingError(f"kriging with {3 + int(nugget)} parameters needs at least "
                           f"{needed} points, not {n}")
    dist = squareform(pdist(x))
    positive = dist[np.triu_indices(n, 1)]
    if np.any(positive == 0) and not nugget:
        raise KrigingError("two points share a location; without a nugget the correlation "
                           "matrix is singular (use nugget=True or average them)")
    if np.ptp(z) == 0:
        raise KrigingError(f"{response!r} is constant; there is no spatial variation to fit")
    positive = positive[positive > 0]

    def unpack(theta):
        r = float(np.exp(theta[0]))
        g = _logistic(theta[1]) if nugget else 0.0
        return r, g

    evaluations = 0

    def objective(theta):
        nonlocal evaluations
        evaluations += 1
        r, g = unpack(theta)
        out = _profile(dist, z, r, g, kernel, method, gradient=True)
        if out is None:
            return 1e300, np.zeros(len(theta))
        prof, grad = out
        return -prof.loglik, -grad[: len(theta)]

    def value_only(theta):
        nonlocal evaluations
        evaluations += 1
        out = _profile(dist, z, *unpack(theta), kernel, method)
        return np.inf if out is None else -out.loglik

    if start is not None:
        s_nugget = float(np.clip(start.get("nugget", 0.1), 1e-6, 1 - 1e-6))
        theta0 = [np.log(start["range"])] + ([np.log(s_nugget / (1 - s_nugget))] if nugget
                                             else [])
    else:  # a coarse grid, then the best point
        ranges = np.geomspace(positive.min(), positive.max(), 16)
        nuggets = [0.002, 0.02, 0.1, 0.3] if nugget else [None]
        best = (np.inf, None)
        for r in ranges:
            for g in nuggets:
                theta = [np.log(r)] + ([np.log(g / (1 - g))] if nugget else [])
                value = value_only(np.array(theta))
                if value < best[0]:
                    best = (value, theta)
        if best[1] is None:
            raise KrigingError("the correlation matrix is singular at every starting value")
        theta0 = best[1]
    # BFGS to the neighbourhood of the optimum (its line search stalls on rounding noise
    # once the log-likelihood changes by ~1e-13 relative), then Newton steps on the gradient
    fit = optimize.minimize(objective, np.array(theta0, dtype=float), jac=True,
                            method="BFGS", options={"gtol": 1e-4, "maxiter": 200})
    theta = _newton_polish(objective, fit.x)
    value, grad = objective(theta)
    range_, g = unpack(theta)
    prof = _profile(dist, z, range_, g, kernel, method)
    sigma = float(np.sqrt(prof.s2))
    se = sigma / np.sqrt(prof.ones_cinv_ones)
    if method == "ML":
        se *= np.sqrt(n / (n - 1))
    return KrigeFit(response=response, coords=coords, method=method, kernel=kernel,
                    beta=prof.beta, beta_se=float(se), sigma=sigma,
                    range=range_, nugget=g, loglik=prof.loglik, nobs=n,
                    estimated_nugget=nugget,
                    converged=bool(np.max(np.abs(grad)) < 1e-4), evaluations=evaluations,
                    gradient=-grad, _x=x, _z=z, _chol=prof.chol,
                    _ones_cinv_ones=prof.ones_cinv_ones)


def _newton_polish(objective, theta: np.ndarray, steps: int = 5) -> np.ndarray:
    """A few Newton steps with a finite-difference Hessian of the analytic gradient."""
    theta = np.asarray(theta, dtype=float)
    value, grad = objective(theta)
    for _ in range(steps):
        if np.max(np.abs(grad)) < 1e-10:
            break
        h = 1e-5
        hess = np.empty((len(theta), len(theta)))
        for k in range(len(theta)):
            step = np.zeros(len(theta))
            step[k] = h
            hess[:, k] = (objective(theta + step)[1] - objective(theta - step)[1]) / (2 * h)
        hess = (hess + hess.T) / 2
        try:
            if np.any(np.linalg.eigvalsh(hess) <= 0):
                break
            proposal = theta - np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            break
        new_value, new_grad = objective(proposal)
        if new_value > value + 1e-10 * max(1.0, abs(value)):
            break
        theta, value, grad = proposal, new_value, new_grad
    return theta


def reference_table(fit: KrigeFit, name: str) -> pd.DataFrame:
    """R's ``gls`` numbers (reference ``name``) beside ours: R | Python | relative difference."""
    from companion.compare.tables import reference

    r = reference(name)
    r_values = {"coef": r["coef"]["(Intercept)"], "se": r["se"]["(Intercept)"],
                "sigma": r["sigma"], "range": r["corStruct_params"]["range"],
                "nugget": r["corStruct_params"]["nugget"], "logLik": r["logLik"],
                "AIC": r["AIC"], "BIC": r["BIC"]}
    ours = fit.quantities()
    rows = [(k, v, ours[k], (ours[k] - v) / abs(v)) for k, v in r_values.items()]
    return pd.DataFrame(rows, columns=["quantity", "R (nlme::gls)", "Python",
                                       "relative difference"]).set_index("quantity")
