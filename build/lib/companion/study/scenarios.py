"""Simulated data for the chapter's comparison of GLMM fitting methods (section 8.4).

The chapter's design (R code in section 8.4) is a Poisson model with an offset::

    y_ij | u ~ Poisson(lambda_ij),  lambda_ij = o_ij * exp(b0 + b1 x1_ij + b2 x2_ij + u_j),
    u_j ~ N(0, sigma^2)

with 25 groups of 100 rows, ``beta = (0.5, 0.3, 0.2)``, ``(x1, x2)`` bivariate normal with
unit variances and correlation 0.8, ``o = 2`` for the first half of the rows and ``4`` for
the second, and ``sigma = 0.5``. :func:`simulate` draws such a data set, for any number of
groups, group size, coefficients, random-effect SD and family (``"poisson"`` or
``"binomial"``, a Bernoulli 0/1 outcome with the logit link).

The numbers are NumPy's (``numpy.random.default_rng``), not R's: ``seed=2023`` does not
reproduce the chapter's ``set.seed(2023)`` data, which ``companion.load_dataset("sim_data")``
holds.

:data:`SCENARIOS` names two designs for the simulation study (:mod:`companion.study`):

``"chapter"``
    the chapter's Poisson design above; every method does well here (many large groups).
``"binary-small"``
    where the approximate methods struggle: a Bernoulli outcome in 100 clusters of 4 rows,
    a large random-intercept SD of 1.5 and the chapter's ``beta = (0.5, 0.3, 0.2)`` and
    covariates, no offset (``o = 1``). Small binary clusters carry little information on
    each ``u_j``, so the Laplace approximation and, more so, PQL bias the SD (and the
    fixed effects) towards zero; adaptive quadrature is the reference method.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

FAMILIES = ("poisson", "binomial")


def _check_design(n_groups, group_size, beta, sd, family, rho, offset) -> None:
    for name, value in (("n_groups", n_groups), ("group_size", group_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    if len(beta) != 3:
        raise ValueError(f"beta needs 3 numbers (intercept, x1, x2), not {len(beta)}")
    if not np.all(np.isfinite(beta)):
        raise ValueError("beta must be finite")
    if not np.isfinite(sd) or sd < 0:
        raise ValueError(f"sd must be a non-negative number, not {sd!r}")
    if family not in FAMILIES:
        raise ValueError(f"family {family!r} is not supported: choose one of "
                         f"{', '.join(FAMILIES)}")
    if not -1 < rho < 1:
        raise ValueError(f"rho must lie strictly between -1 and 1, not {rho!r}")
    if offset is not None:
        values = np.atleast_1d(np.asarray(offset, dtype=float))
        if values.size == 0 or np.any(~np.isfinite(values)) or np.any(values <= 0):
            raise ValueError("offset values must be positive numbers (o enters as log(o))")
        if values.size > n_groups * group_size:
            raise ValueError("more offset values than rows")


@dataclass(frozen=True)
class Scenario:
    """A data-generating design; :meth:`simulate` draws one data set from it."""

    name: str
    n_groups: int = 25
    group_size: int = 100
    beta: tuple[float, ...] = (0.5, 0.3, 0.2)
    sd: float = 0.5
    family: str = "poisson"
    rho: float = 0.8
    offset: tuple[float, ...] | None = (2.0, 4.0)
    description: str = field(default="", compare=False)

    def __post_init__(self):
        _check_design(self.n_groups, self.group_size, self.beta, self.sd, self.family,
                      self.rho, self.offset)

    @property
    def nobs(self) -> int:
        return self.n_groups * self.group_size

    def simulate(self, seed=None) -> pd.DataFrame:
        return simulate(self.n_groups, self.group_size, self.beta, self.sd, self.family,
                        rho=self.rho, offset=self.offset, seed=seed)

    def truth(self) -> dict[str, float]:
        """The true values: the fixed effects by name, and ``sd_g``, the random-effect SD."""
        names = ["(Intercept)", "x1", "x2"]
        return {**dict(zip(names, map(float, self.beta))), "sd_g": float(self.sd)}


SCENARIOS: dict[str, Scenario] = {
    "chapter": Scenario(
        "chapter", 25, 100, (0.5, 0.3, 0.2), 0.5, "poisson", 0.8, (2.0, 4.0),
        "the chapter's section 8.4: Poisson with offset o = 2, 4; 25 groups of 100; SD 0.5"),
    "binary-small": Scenario(
        "binary-small", 100, 4, (0.5, 0.3, 0.2), 1.5, "binomial", 0.8, None,
        "Bernoulli (logit) outcome, 100 clusters of 4, SD 1.5, no offset: hard for "
        "Laplace and PQL"),
}


def get_scenario(scenario: str | Scenario) -> Scenario:
    """A :class:`Scenario` by name (see :data:`SCENARIOS`), or the object itself."""
    if isinstance(scenario, Scenario):
        return scenario
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}: choose one of "
                         f"{', '.join(SCENARIOS)}")
    return SCENARIOS[scenario]


def simulate(n_groups: int = 25, group_size: int = 100, beta=(0.5, 0.3, 0.2), sd: float = 0.5,
             family: str = "poisson", *, rho: float = 0.8, offset=(2.0, 4.0),
             seed=None) -> pd.DataFrame:
    """Draw one data set of the chapter's design (defaults) or a variant of it.

    Args:
        n_groups, group_size: the groups ``g`` (levels ``"1"``, ``"2"``, ...), each with
            ``group_size`` consecutive rows.
        beta: intercept and the coefficients of ``x1`` and ``x2`` (three numbers).
        sd: the SD of the random intercepts ``u_g`` (0 gives no random effect).
        family: ``"poisson"`` (log link, ``lambda = o * exp(eta)``) or ``"binomial"``
            (a 0/1 outcome, ``P(y = 1) = 1 / (1 + exp(-(log(o) + eta)))``).
        rho: the correlation of ``x1`` and ``x2`` (standard normal each).
        offset: the values of ``o``, each for an equal consecutive share of the rows as R's
            ``rep(c(2, 4), each = N / 2)``; ``None`` sets ``o = 1`` (no offset).
        seed: anything ``numpy.random.default_rng`` takes (an int, a ``SeedSequence``).

    Returns:
        a DataFrame with the columns of ``load_dataset("sim_data")``: ``y`` (int), ``x1``,
        ``x2``, ``o`` (float) and ``g`` (a Categorical); fit it with the formula
        ``y ~ x1 + x2 + (1 | g)`` and ``offset=np.log(data.o)``.
    """
    beta = tuple(float(b) for b in np.atleast_1d(beta))
    _check_design(n_groups, group_size, beta, sd, family, rho, offset)
    rng = np.random.default_rng(seed)
    n = n_groups * group_size
    # the draws in the R code's order: covariates, random effects, responses
    X = rng.multivariate_normal([0.0, 0.0], [[1.0, rho], [rho, 1.0]], size=n,
                                method="cholesky")
    if offset is None:
        o = np.ones(n)
    else:
        o = np.concatenate([np.full(len(part), float(value)) for value, part in
                            zip(offset, np.array_split(np.arange(n), len(offset)))])
    codes = np.repeat(np.arange(n_groups), group_size)
    u = rng.normal(0.0, sd, size=n_groups)
    eta = beta[0] + X @ np.asarray(beta[1:]) + u[codes]
    if family == "poisson":
        y = rng.poisson(o * np.exp(eta))
    else:
        y = rng.binomial(1, 1.0 / (1.0 + np.exp(-(np.log(o) + eta))))
    levels = [str(k) for k in range(1, n_groups + 1)]
    g = pd.Categorical.from_codes(codes, categories=levels)
    return pd.DataFrame({"y": y.astype(np.int64), "x1": X[:, 0], "x2": X[:, 1], "o": o,
                         "g": g})
