"""Power analysis by simulation for linear mixed models, as simr's ``powerSim``,
``powerCurve`` and ``extend``: responses are simulated from the fitted model (with the
effect of interest set by hand, simr's ``fixef(fit)["x"] <- value``), the model is
refitted to each and the coefficient tested; the power is the proportion of tests
significant at ``alpha``, with a Clopper-Pearson interval (simr's default, ``"exact"``).

The tests (``method``):

* ``"kenward-roger"``, the default, as simr's: for a fixed effect of an lmer fit simr
  compares the models with and without the term by pbkrtest's ``KRmodcomp``; for one
  coefficient that F test (1 numerator df) is the Kenward-Roger t test used here. (simr
  tests a factor variable as a whole, by likelihood ratio; here one coefficient is tested.)
* ``"satterthwaite"``: lmerTest's t test (simr's ``method = "t"`` or ``"sa"``).
* ``"z"``: the t value read as a normal deviate (simr's ``"z"``).
* ``"lr"``: the likelihood ratio of the fit against the fit without the coefficient's
  column, both by ML, on one df (simr's ``"lr"``, as lme4's ``anova``).

A replicate whose refit or test fails is a failure: as in simr it stays in the number of
simulations and counts as not significant.

Replicate ``i`` draws from child ``i`` of ``SeedSequence(seed)`` (see
:mod:`companion.inference.replicates`), so one process, joblib's workers and Dask agree.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from companion.engine.design import formula_offset
from companion.engine.optimize import minimize_deviance
from companion.engine.profiled import ProfiledDeviance
from companion.inference.replicates import check_nsim, run_replicates
from companion.inference.resample import simulate_lmm
from companion.lmm.lmer import lmer
from companion.results import MixedModelResult

METHODS = {
    "kenward-roger": "Kenward-Roger t test (pbkrtest's adjusted SE and df)",
    "satterthwaite": "Satterthwaite t test (lmerTest)",
    "z": "z test (the t value read as a normal deviate)",
    "lr": "Likelihood ratio (ML fits with and without the coefficient)",
}
DEFAULT_METHOD = "kenward-roger"  # simr's default for a fixed effect of an lmer fit
FIRST_BREAK, MAX_BREAKS = 3, 10  # simr's pcmin and pcmax
CONFIDENCE = 0.95


@dataclass(frozen=True)
class SimulationModel:
    """What the responses are simulated from: ``fit``, an lmer fit, supplies the design
    (the rows simulated and refitted); ``fixef``, ``theta`` and ``sigma`` the parameters
    (replace them to set the model by hand, as simr's ``fixef<-``, ``VarCorr<-`` and
    ``sigma<-``; ``theta`` in the order of ``fit.theta``). An lmer fit stands for its own;
    :func:`extend` makes one for a larger design. ``observed``: the parameters are a fit's
    estimates, unchanged (simr then warns of an "observed power")."""

    fit: MixedModelResult
    fixef: pd.Series
    theta: pd.Series
    sigma: float
    observed: bool = False

    @property
    def data(self) -> pd.DataFrame:
        """The rows simulated (for an extended model, its new data)."""
        return self.fit.devfun.design.frame

    @property
    def nobs(self) -> int:
        return self.fit.nobs

    def with_effect(self, effect: str, value: float) -> "SimulationModel":
        """The same model with the coefficient ``effect`` set to ``value``."""
        fixef = self.fixef.copy()
        fixef[effect] = float(value)
        return dataclasses.replace(self, fixef=fixef, observed=False)

    def simulate(self, seed) -> np.ndarray:
        """One response, a number per row, drawn with ``seed``."""
        return simulate_lmm(self.fit.devfun, self.theta.to_numpy(), self.fixef.to_numpy(),
                            self.sigma, 1, seed)[:, 0]


@dataclass
class PowerResult:
    """simr's ``powerSim`` result: the p-value of every simulation (NaN for a failure)."""

    effect: str
    method: str
    effect_size: float
    alpha: float
    nrow: int
    p_values: np.ndarray
    observed: bool  # simulated at the fit's own estimate: an "observed power"

    @property
    def nsim(self) -> int:
        return len(self.p_values)

    @property
    def failures(self) -> int:
        return int(np.isnan(self.p_values).sum())

    @property
    def successes(self) -> int:
        return int((self.p_values[~np.isnan(self.p_values)] < self.alpha).sum())

    @property
    def power(self) -> float:
        return self.successes / self.nsim

    def confint(self, level: float = CONFIDENCE) -> tuple[float, float]:
        """The Clopper-Pearson interval of the power."""
        return clopper_pearson(self.successes, self.nsim, level)

    @property
    def low(self) -> float:
        return self.confint()[0]

    @property
    def high(self) -> float:
        return self.confint()[1]

    def interval_text(self) -> str:
        """simr's ``58.00% (47.71, 67.80)``."""
        return f"{_percent(self.power)}% ({100 * self.low:5.2f}, {100 * self.high:5.2f})"

    def __str__(self) -> str:
        plural = "" if self.failures == 1 else "s"
        lines = [f"Power for predictor '{self.effect}', (95% confidence interval):",
                 f"      {self.interval_text()}", "",
                 f"Test: {METHODS[self.method]}",
                 f"      Effect size for {self.effect} is {self.effect_size:#.2g}", "",
                 f"Based on {self.nsim} simulations, ({self.failures} failure{plural})",
                 f"alpha = {self.alpha:g}, nrow = {self.nrow}"]
        if self.observed:
            lines += ["", "nb: result might be an observed power calculation"]
        return "\n".join(lines)

    __repr__ = __str__


@dataclass
class PowerCurve:
    """simr's ``powerCurve`` result: one :class:`PowerResult` per break, the number of
    levels of ``along`` kept."""

    along: str
    nlevels: list[int]
    results: list[PowerResult]

    @property
    def table(self) -> pd.DataFrame:
        """One row per break: levels kept, rows, successes, power and its interval."""
        return pd.DataFrame({
            "nlevels": self.nlevels, "nrow": [r.nrow for r in self.results],
            "successes": [r.successes for r in self.results],
            "nsim": [r.nsim for r in self.results],
            "power": [r.power for r in self.results], "low": [r.low for r in self.results],
            "high": [r.high for r in self.results]})

    def __str__(self) -> str:
        first = self.results[0]
        lines = [f"Power for predictor '{first.effect}', (95% confidence interval),",
                 f"by number of levels in {self.along}:"]
        lines += [f"{k:7d}: {r.interval_text()} - {r.nrow} rows"
                  for k, r in zip(self.nlevels, self.results)]
        failures = sum(r.failures for r in self.results)
        lines += ["", f"Test: {METHODS[first.method]}, {failures} failures in all"]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return self.table.to_html(float_format=lambda v: f"{v:.4g}", index=False)

    def plot(self, ax=None, target: float = 0.8):
        """Power against the number of levels, the intervals as error bars, a dashed line
        at ``target``; returns the matplotlib Axes."""
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(6, 4), layout="constrained")
        from matplotlib.ticker import PercentFormatter

        table = self.table
        errors = [table.power - table.low, table.high - table.power]
        ax.errorbar(table.nlevels, table.power, yerr=errors, marker="o", capsize=3)
        ax.axhline(target, linestyle="--", color="grey")
        ax.set(ylim=(0, 1), xlabel=f"number of levels in {self.along}", ylabel="power")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        return ax


def clopper_pearson(successes: int, trials: int,
                    level: float = CONFIDENCE) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a binomial proportion, R's binom.test."""
    tail = (1 - level) / 2
    low = stats.beta.ppf(tail, successes, trials - successes + 1) if successes else 0.0
    high = (stats.beta.ppf(1 - tail, successes + 1, trials - successes)
            if successes < trials else 1.0)
    return float(low), float(high)


def p_value(fit: MixedModelResult, effect: str, method: str = DEFAULT_METHOD) -> float:
    """The two-sided p-value of the coefficient ``effect`` of an lmer fit, by ``method``
    (see :data:`METHODS`)."""
    _check_method(method)
    if method == "lr":
        return _likelihood_ratio_p_value(fit, effect)
    if method == "z":
        return float(2 * stats.norm.sf(abs(fit.fixef[effect] / fit.se[effect])))
    ddf = "Kenward-Roger" if method == "kenward-roger" else "Satterthwaite"
    return float(fit.coef_table(ddf).loc[effect, "Pr(>|t|)"])


def power_sim(fit, effect: str, nsim: int = 1000, seed: int | None = None,
              alpha: float = 0.05, method: str = DEFAULT_METHOD,
              effect_size: float | None = None, workers: int = 1, scheduler=None,
              progress: bool = True) -> PowerResult:
    """simr's ``powerSim(fit, fixed(effect, method), nsim, alpha)``: the power to detect
    the coefficient ``effect`` of an lmer fit (or a :class:`SimulationModel`), set to
    ``effect_size`` if given (the fit is not changed). ``workers``: local processes
    (joblib); ``scheduler``: a Dask address or ``distributed.Client`` instead."""
    model = _prepared(fit, effect, nsim, alpha, method, effect_size)
    replicates = _Replicates(model, [_Target(model.fit, None)], effect, method)
    p = run_replicates(replicates, nsim, seed, workers, scheduler, progress,
                       desc="power", unit="simulation")
    return _result(p[:, 0], model, effect, method, alpha, model.nobs)


def power_curve(fit, effect: str, along: str, breaks=None, nsim: int = 1000,
                seed: int | None = None, alpha: float = 0.05, method: str = DEFAULT_METHOD,
                effect_size: float | None = None, workers: int = 1, scheduler=None,
                progress: bool = True) -> PowerCurve:
    """simr's ``powerCurve(fit, test, along, breaks)``: the power on the rows of the
    first ``k`` levels of ``along`` (a factor's order, sorted values otherwise) for each
    break ``k``; by default up to 10 evenly spaced ``k`` from 3 to all levels, as simr.
    Each simulation draws one response for all rows and refits it on every subset, as
    simr does. The other arguments are :func:`power_sim`'s."""
    model = _prepared(fit, effect, nsim, alpha, method, effect_size)
    if along not in model.data.columns:
        raise ValueError(f"along must be a column of the data; the columns are: "
                         f"{', '.join(map(str, model.data.columns))}")
    levels = _ordered_levels(model.data[along])
    breaks = default_breaks(len(levels)) if breaks is None else _checked_breaks(
        breaks, len(levels), along)
    targets = [_subset_target(model, along, levels[:k]) for k in breaks]
    p = run_replicates(_Replicates(model, targets, effect, method), nsim, seed, workers,
                       scheduler, progress, desc="power curve", unit="simulation")
    results = [_result(p[:, j], model, effect, method, alpha,
                       model.nobs if target.positions is None else len(target.positions))
               for j, target in enumerate(targets)]
    return PowerCurve(along, list(breaks), results)


def default_breaks(nlevels: int) -> list[int]:
    """simr's ``tidySeq``: 3 to ``nlevels`` levels, at most 10 values evenly spaced."""
    if nlevels < FIRST_BREAK:
        return [nlevels]
    if nlevels - FIRST_BREAK + 1 <= MAX_BREAKS:
        return list(range(FIRST_BREAK, nlevels + 1))
    return [int(k) for k in np.round(np.linspace(FIRST_BREAK, nlevels, MAX_BREAKS))]


def extend_data(data: pd.DataFrame, along: str, n: int) -> pd.DataFrame:
    """simr's ``extend`` of a data frame: the rows of ``n`` levels of ``along``, copies of
    its levels in turn (the first, the second ... and again from the first), labelled
    ``"1"`` to ``"n"`` (a categorical column)."""
    return _extended(data, along, n)[0]


def extend(fit, along: str, n: int) -> SimulationModel:
    """simr's ``extend(fit, along, n)``: the fitted model on a design with ``n`` levels of
    the grouping factor ``along`` (see :func:`extend_data`), with the fit's parameters;
    for :func:`power_sim` and :func:`power_curve`. The fit's prior weights and offsets
    are copied with their rows."""
    model = _as_model(fit)
    design = model.fit.devfun.design
    if not any(along in block.term.group for block in design.blocks):
        groups = sorted({name for block in design.blocks for name in block.term.group})
        raise ValueError(f"along must be a grouping factor of the random effects "
                         f"({', '.join(groups)}), not {along!r}")
    frame, positions = _extended(design.frame, along, n)
    base = _fit_rows(model, frame, positions, f"{n} levels of {along!r}")
    return SimulationModel(base, model.fixef, model.theta[base.theta.index], model.sigma,
                           model.observed)


# --- the simulations ------------------------------------------------------------------

@dataclass
class _Target:
    """A fit refitted to each simulated response's ``positions`` (``None``: all rows)."""

    fit: MixedModelResult
    positions: np.ndarray | None


@dataclass
class _Replicates:
    """The p-values of a chunk of simulations, one row each, one column per target."""

    model: SimulationModel
    targets: list[_Target]
    effect: str
    method: str

    def __call__(self, seeds) -> np.ndarray:
        rows = []
        for seed in seeds:
            y = self.model.simulate(seed)
            rows.append([self._tested(target, y) for target in self.targets])
        return np.array(rows, dtype=float)

    def _tested(self, target: _Target, y: np.ndarray) -> float:
        response = y if target.positions is None else y[target.positions]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a refit's convergence notes, as simr's
            try:
                return p_value(target.fit.refit(response), self.effect, self.method)
            except (ValueError, ArithmeticError):  # LinAlgError is a ValueError
                return np.nan


def _prepared(fit, effect: str, nsim, alpha: float, method: str,
              effect_size) -> SimulationModel:
    """The model to simulate from, after the checks every analysis needs."""
    check_nsim(nsim)
    _check_method(method)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, not {alpha!r}")
    model = _as_model(fit)
    if effect not in model.fixef.index:
        raise ValueError(f"{effect!r} is not a fixed effect of the model; the "
                         f"coefficients are: {', '.join(model.fixef.index)}")
    if effect_size is not None:
        if not np.isfinite(effect_size):
            raise ValueError(f"effect_size must be a finite number, not {effect_size!r}")
        model = model.with_effect(effect, effect_size)
    try:
        p_value(model.fit, effect, method)
    except ValueError as error:
        raise ValueError(f"the {method!r} test fails on the fit itself: {error}") from error
    return model


def _as_model(fit) -> SimulationModel:
    if isinstance(fit, SimulationModel):
        return fit
    if not (isinstance(fit, MixedModelResult) and isinstance(fit.devfun, ProfiledDeviance)
            and fit.refitter is not None):
        kind = getattr(fit, "title", type(fit).__name__)
        raise ValueError(f"power by simulation is for linear mixed models (lmer fits), "
                         f"not a {kind!r}")
    return SimulationModel(fit, fit.fixef, fit.theta, fit.sigma, observed=True)


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, "
                         f"not {method!r}")


def _result(p_values, model, effect, method, alpha, nrow) -> PowerResult:
    return PowerResult(effect, method, float(model.fixef[effect]), alpha, nrow,
                       np.asarray(p_values, dtype=float), model.observed)


def _percent(value: float) -> str:
    return "100.0" if value == 1 else f"{100 * value:5.2f}"


# --- the likelihood-ratio test ---------------------------------------------------------

def _likelihood_ratio_p_value(fit: MixedModelResult, effect: str) -> float:
    """The ML deviances of the fit's design with and without the column ``effect``,
    each minimized from the fit's theta; chi-square on one df."""
    design = fit.devfun.design
    keep = [name != effect for name in design.fixed_names]
    reduced = dataclasses.replace(design, X=design.X[:, keep],
                                  fixed_names=[n for n in design.fixed_names if n != effect])
    start = fit.theta.to_numpy()
    chisq = _ml_deviance(reduced, start) - _ml_deviance(design, start)
    return float(stats.chi2.sf(max(chisq, 0.0), 1))


def _ml_deviance(design, start: np.ndarray) -> float:
    deviance = ProfiledDeviance(design, reml=False)
    lower = deviance.layout.lower_bounds()
    # a start on a bound can stall there (a zero SD's gradient is zero): start inside
    record = minimize_deviance(deviance.value_and_gradient, np.maximum(start, lower + 1e-3),
                               lower)
    return deviance(record.final)


# --- designs: subsets and extensions ---------------------------------------------------

def _ordered_levels(column: pd.Series) -> list:
    """A column's values in simr's order: a factor's levels (those used), else sorted."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return list(column.cat.remove_unused_categories().cat.categories)
    return sorted(column.unique())


def _checked_breaks(breaks, nlevels: int, along: str) -> list[int]:
    breaks = [int(k) for k in breaks]
    if not breaks or min(breaks) < 1 or max(breaks) > nlevels:
        raise ValueError(f"breaks must be numbers of levels of {along!r}, from 1 to "
                         f"{nlevels}, not {breaks}")
    return breaks


def _subset_target(model: SimulationModel, along: str, kept: list) -> _Target:
    positions = np.flatnonzero(model.data[along].isin(kept).to_numpy())
    if len(positions) == model.nobs:
        return _Target(model.fit, None)
    frame = model.data.iloc[positions].reset_index(drop=True)
    what = f"the first {len(kept)} levels of {along!r}"
    return _Target(_fit_rows(model, frame, positions, what), positions)


def _extended(data: pd.DataFrame, along: str, n: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The extended rows and, for each, its row in ``data``."""
    if along not in data.columns:
        raise ValueError(f"along must be a column of the data; the columns are: "
                         f"{', '.join(map(str, data.columns))}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, not {n!r}")
    rows_of = data.groupby(along, observed=True, sort=False).indices
    levels = _ordered_levels(data[along])
    copied = [rows_of[levels[k % len(levels)]] for k in range(n)]
    labels = [str(k + 1) for k in range(n)]
    frame = data.iloc[np.concatenate(copied)].reset_index(drop=True)
    frame[along] = pd.Categorical(np.repeat(labels, [len(rows) for rows in copied]),
                                  categories=labels)
    return frame, np.concatenate(copied)


def _fit_rows(model: SimulationModel, frame: pd.DataFrame, positions: np.ndarray,
              what: str) -> MixedModelResult:
    """The model fitted to ``frame``, whose rows copy the model's rows ``positions``
    (weights and offsets with them): the design its simulations are refitted on."""
    design = model.fit.devfun.design
    weights = design.weights[positions]
    offset = (design.offset - formula_offset(design.formula_offsets, design.frame))[positions]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a singular fit to copied data is no matter
        try:
            fit = lmer(model.fit.formula, frame, reml=model.fit.method == "REML",
                       weights=None if np.all(weights == 1) else weights,
                       offset=offset if np.any(offset) else None)
        except ValueError as error:
            raise ValueError(f"the model cannot be fitted to {what}: {error}") from error
    same = (list(fit.fixef.index) == list(model.fixef.index)
            and np.allclose(fit.devfun.design.X, design.X[positions])
            and set(fit.theta.index) == set(model.theta.index))
    if not same:
        raise ValueError(f"on {what} the model's fixed effects are {list(fit.fixef.index)}, "
                         f"not the fit's {list(model.fixef.index)}: too few levels for "
                         "every coefficient, or contrasts given to lmer (code the columns "
                         "in the data instead)")
    return fit
