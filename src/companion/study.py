"""A simulation study of the chapter's GLMM fitting methods (section 8.4, made repeatable).

Each replicate draws a data set from a scenario (:mod:`companion.simulate`) with its own
seed, ``numpy.random.SeedSequence(seed).spawn(reps)[rep]``, and fits it with every method:

========  ============================================================================
laplace   ``companion.glmer`` (Laplace approximation, lme4's default)
aghq      ``companion.glmer(..., nagq=11)`` (adaptive Gauss-Hermite quadrature)
pql       ``companion.glmmpql`` (MASS::glmmPQL)
reml      ``companion.glmer_reml`` (restricted Laplace; glmmTMB REML = TRUE, mgcv)
gee       statsmodels ``GEE`` with an exchangeable working correlation
inla      ``companion.inla`` (nested Laplace, R-INLA's default priors)
========  ============================================================================

:func:`run_study` returns one row per replicate, method and parameter (``(Intercept)``,
``x1``, ``x2`` and ``sd_g``, the random-intercept SD): the estimate, its standard error
(INLA: the posterior SD), a 95% interval (Wald for the likelihood methods, a credible
interval for INLA, gam.vcomp's interval for the REML SD), the fit time and any error or
warnings. A failing fit is recorded, never fatal. :func:`summarise` gives bias, RMSE and
coverage with Monte Carlo standard errors; :func:`plot_study` draws them.

What is estimated where:

* Laplace, AGHQ and PQL give no interval for the SD (lme4's profile intervals are not
  implemented for GLMMs here), so its coverage is missing.
* INLA's SD is the posterior median ``1 / sqrt(median precision)``, its interval the
  transformed precision quantiles, its "SE" the delta-method posterior SD.
* GEE estimates the *population-averaged* coefficients and no SD. Its ``truth`` is the
  marginal parameter: for the log link the intercept is ``b0 + sd^2 / 2`` (exact), the
  slopes unchanged; for the logit link every coefficient is ``b / sqrt(1 + c^2 sd^2)``,
  ``c = 16 sqrt(3) / (15 pi)`` (Zeger, Liang & Albert 1988; an approximation).

Parallelism: joblib (loky processes) on the local cores with ``workers=K``, or a Dask
cluster with ``scheduler="tcp://host:8786"`` (or a ``distributed.Client``). Every fit runs
with its BLAS limited to one thread, so the numbers are identical whatever the number of
workers or the back end; only ``seconds`` (wall-clock) differs between runs. With ``out``
the results are written after every batch of replicates; a later call with the same file
computes only the replicates it lacks.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from companion.simulate import Scenario, get_scenario

METHODS = ("laplace", "aghq", "pql", "reml", "gee", "inla")
PARAMETERS = ("(Intercept)", "x1", "x2", "sd_g")
FORMULA = "y ~ x1 + x2 + (1 | g)"
COLUMNS = ["scenario", "seed", "rep", "method", "parameter", "truth", "estimate", "se",
           "lower", "upper", "seconds", "error", "warnings"]
_STRINGS = ["scenario", "method", "parameter", "error", "warnings"]
_FORMATS = {".parquet": "parquet", ".csv": "csv", ".pkl": "pickle", ".pickle": "pickle"}
Z = stats.norm.ppf(0.975)


# --- one fit per method: a dict parameter -> (estimate, se, lower, upper) ----------------

def _wald(fixef: pd.Series, se: pd.Series) -> dict[str, tuple]:
    return {name: (float(fixef[name]), float(se[name]), float(fixef[name] - Z * se[name]),
                   float(fixef[name] + Z * se[name])) for name in fixef.index}


def _group_sd(fit) -> float:
    row = fit.varcorr[fit.varcorr["group"] == "g"]
    return float(row["sdcor"].iloc[0])


def _fit_glmer(data, family, nagq=1):
    from companion.glmer import glmer

    fit = glmer(FORMULA, data, family=family, nagq=nagq, offset=np.log(data["o"].to_numpy()))
    return {**_wald(fit.fixef, fit.se), "sd_g": (_group_sd(fit), np.nan, np.nan, np.nan)}


def _fit_pql(data, family):
    from companion.pql import glmmpql

    fit = glmmpql(FORMULA, data, family=family, offset=np.log(data["o"].to_numpy()))
    return {**_wald(fit.fixef, fit.se), "sd_g": (_group_sd(fit), np.nan, np.nan, np.nan)}


def _fit_reml(data, family):
    from companion.glmm_reml import glmer_reml

    fit = glmer_reml(FORMULA, data, family=family, offset=np.log(data["o"].to_numpy()))
    sd = (_group_sd(fit), np.nan, np.nan, np.nan)
    if fit.vcomp is not None and len(fit.vcomp):
        row = fit.vcomp.iloc[0]
        sd = (float(row["std.dev"]), np.nan, float(row["lower"]), float(row["upper"]))
    return {**_wald(fit.fixef, fit.se), "sd_g": sd}


def _fit_gee(data, family):
    import statsmodels.api as sm

    fam = sm.families.Poisson() if family == "poisson" else sm.families.Binomial()
    exog = pd.DataFrame({"(Intercept)": 1.0, "x1": data["x1"], "x2": data["x2"]})
    model = sm.GEE(data["y"].astype(float), exog, groups=data["g"].cat.codes.to_numpy(),
                   family=fam, cov_struct=sm.cov_struct.Exchangeable(),
                   offset=np.log(data["o"].to_numpy()))
    fit = model.fit()
    return {**_wald(fit.params, fit.bse), "sd_g": (np.nan, np.nan, np.nan, np.nan)}


def _fit_inla(data, family):
    from companion.inla import inla

    ntrials = np.ones(len(data)) if family == "binomial" else None
    fit = inla(FORMULA, data, family=family, ntrials=ntrials,
               offset=np.log(data["o"].to_numpy()))
    out = {name: (float(row["mean"]), float(row["sd"]), float(row["0.025quant"]),
                  float(row["0.975quant"])) for name, row in fit.fixed.iterrows()}
    prec = fit.hyperpar.iloc[0]  # "Precision for g"
    sd_post = prec["sd"] / (2 * prec["mean"] ** 1.5)  # delta method, SD = precision^-1/2
    out["sd_g"] = (float(prec["0.5quant"] ** -0.5), float(sd_post),
                   float(prec["0.975quant"] ** -0.5), float(prec["0.025quant"] ** -0.5))
    return out


FITTERS: dict[str, Callable] = {
    "laplace": lambda data, family: _fit_glmer(data, family, 1),
    "aghq": lambda data, family: _fit_glmer(data, family, 11),
    "pql": _fit_pql,
    "reml": _fit_reml,
    "gee": _fit_gee,
    "inla": _fit_inla,
}


def method_truth(scenario: Scenario, method: str) -> dict[str, float]:
    """The values a method estimates: the scenario's, except GEE's marginal coefficients."""
    truth = scenario.truth()
    if method != "gee":
        return truth
    s2 = scenario.sd**2
    names = ["(Intercept)", "x1", "x2"]
    if scenario.family == "poisson":
        marginal = {**{n: truth[n] for n in names}, "(Intercept)": truth["(Intercept)"] + s2 / 2}
    else:
        c = 16 * math.sqrt(3) / (15 * math.pi)
        marginal = {n: truth[n] / math.sqrt(1 + c**2 * s2) for n in names}
    return {**marginal, "sd_g": np.nan}


# --- one replicate ------------------------------------------------------------------------

@contextlib.contextmanager
def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with the dev extras
        yield
        return
    with threadpool_limits(limits=1):
        yield


def run_replicate(scenario: str | Scenario, rep: int, seed_seq: np.random.SeedSequence,
                  methods: Sequence[str] = METHODS) -> pd.DataFrame:
    """Simulate replicate ``rep`` from ``seed_seq`` and fit it by every method: the rows of
    :func:`run_study` for this replicate. Exceptions and warnings are recorded per fit."""
    scenario = get_scenario(scenario)
    seed = int(seed_seq.entropy) if isinstance(seed_seq.entropy, int) else -1
    rows = []
    with _one_blas_thread():
        data = scenario.simulate(seed_seq)
        for method in methods:
            truth = method_truth(scenario, method)
            error, result = "", {}
            started = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    result = FITTERS[method](data, scenario.family)
                except Exception as exc:  # noqa: BLE001 - recorded, the study goes on
                    error = f"{type(exc).__name__}: {exc}"
            seconds = time.perf_counter() - started
            messages = " | ".join(dict.fromkeys(f"{w.category.__name__}: {w.message}"
                                                for w in caught))
            for parameter in PARAMETERS:
                est, se, lower, upper = result.get(parameter, (np.nan,) * 4)
                rows.append({"scenario": scenario.name, "seed": seed, "rep": rep,
                             "method": method, "parameter": parameter,
                             "truth": truth[parameter], "estimate": est, "se": se,
                             "lower": lower, "upper": upper, "seconds": seconds,
                             "error": error, "warnings": messages})
    return _normalize(pd.DataFrame(rows, columns=COLUMNS))


# --- the study -----------------------------------------------------------------------------

def run_study(scenario: str | Scenario = "chapter", reps: int = 100, *, seed: int = 2023,
              methods: Sequence[str] = METHODS, workers: int = 1,
              scheduler=None, out: str | os.PathLike | None = None,
              batch_size: int | None = None, progress: bool = True) -> pd.DataFrame:
    """Run (or resume) a simulation study; return its rows (see the module docstring).

    Args:
        scenario: a name in :data:`companion.simulate.SCENARIOS` or a ``Scenario``.
        reps: the number of replicates wanted in all.
        seed: the master seed; replicate ``r`` uses ``SeedSequence(seed).spawn(reps)[r]``,
            so the replicates do not depend on ``reps``, ``workers`` or the back end.
        methods: a subset of :data:`METHODS`.
        workers: local processes for joblib (1 runs in this process).
        scheduler: a Dask scheduler address (``"tcp://..."``) or a ``distributed.Client``;
            when given, the replicates run on that cluster and ``workers`` is not used.
        out: a ``.parquet``, ``.csv`` or ``.pkl`` file, written after every batch; the
            replicates it already holds (same scenario, seed and methods) are not redone.
        batch_size: replicates per batch (default ``4 * workers``, or 8 on Dask).
        progress: show a tqdm progress bar.
    """
    scenario = get_scenario(scenario)
    methods = _check_methods(methods)
    reps = _positive_int("reps", reps)
    workers = _positive_int("workers", workers)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    if batch_size is not None:
        batch_size = _positive_int("batch_size", batch_size)
    path = Path(out) if out is not None else None
    if path is not None and path.suffix.lower() not in _FORMATS:
        raise ValueError(f"out must end in one of {', '.join(_FORMATS)}, not {path.name!r}")
    done = _load_existing(path, scenario, int(seed), methods) if path else _empty()
    have = set(done["rep"].unique().tolist())
    todo = [r for r in range(reps) if r not in have]
    children = np.random.SeedSequence(int(seed)).spawn(reps)
    frames = [done]
    if todo:
        from tqdm import tqdm

        bar = tqdm(total=reps, initial=reps - len(todo), disable=not progress,
                   desc=f"{scenario.name}", unit="rep")
        backend = _DaskBackend(scheduler) if scheduler is not None else _JoblibBackend(workers)
        size = batch_size or (8 if scheduler is not None else 4 * workers)
        try:
            for start in range(0, len(todo), size):
                batch = todo[start:start + size]
                for frame in backend.map(scenario, [(r, children[r]) for r in batch], methods):
                    frames.append(frame)
                    bar.update(1)
                if path is not None:
                    _save(_combine(frames), path)
        finally:
            backend.close()
            bar.close()
    result = _combine(frames)
    return result[result["rep"] < reps].reset_index(drop=True)


class _JoblibBackend:
    def __init__(self, workers: int):
        from joblib import Parallel

        self.parallel = Parallel(n_jobs=workers, return_as="generator_unordered")
        self.parallel.__enter__()

    def map(self, scenario, jobs, methods):
        from joblib import delayed

        yield from self.parallel(delayed(run_replicate)(scenario, r, s, tuple(methods))
                                 for r, s in jobs)

    def close(self):
        self.parallel.__exit__(None, None, None)


class _DaskBackend:
    def __init__(self, scheduler):
        from distributed import Client

        if isinstance(scheduler, Client):
            self.client, self.owned = scheduler, False
        elif isinstance(scheduler, str) and scheduler.strip():
            self.client, self.owned = Client(scheduler, timeout="30s"), True
        else:
            raise ValueError(f"scheduler must be an address such as 'tcp://host:8786' or a "
                             f"distributed.Client, not {scheduler!r}")

    def map(self, scenario, jobs, methods):
        from distributed import as_completed

        futures = [self.client.submit(run_replicate, scenario, r, s, tuple(methods),
                                      pure=False) for r, s in jobs]
        for future in as_completed(futures):
            yield future.result()

    def close(self):
        if self.owned:
            self.client.close()


# --- files and tables --------------------------------------------------------------------

def _empty() -> pd.DataFrame:
    return _normalize(pd.DataFrame(columns=COLUMNS))


def _normalize(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[COLUMNS].copy()
    for name in _STRINGS:
        frame[name] = frame[name].fillna("").astype(str)
    frame["seed"] = frame["seed"].astype(np.int64)
    frame["rep"] = frame["rep"].astype(np.int64)
    for name in ("truth", "estimate", "se", "lower", "upper", "seconds"):
        frame[name] = frame[name].astype(np.float64)
    return frame


def _combine(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return _empty()
    combined = pd.concat(frames, ignore_index=True)
    return _normalize(combined.sort_values("rep", kind="stable").reset_index(drop=True))


def _save(frame: pd.DataFrame, path: Path) -> None:
    """Write atomically: a temporary file renamed over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    kind = _FORMATS[path.suffix.lower()]
    if kind == "parquet":
        frame.to_parquet(tmp, index=False)
    elif kind == "csv":
        frame.to_csv(tmp, index=False)
    else:
        frame.to_pickle(tmp)
    os.replace(tmp, path)


def load_results(path: str | os.PathLike) -> pd.DataFrame:
    """Read a study's results file (``.parquet``, ``.csv`` or ``.pkl``)."""
    path = Path(path)
    kind = _FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"not a results file: {path.name!r} (use {', '.join(_FORMATS)})")
    if kind == "parquet":
        frame = pd.read_parquet(path)
    elif kind == "csv":
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""],
                            dtype={name: str for name in _STRINGS})
    else:
        frame = pd.read_pickle(path)
    missing = set(COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"{path} is not a study's results file: no {sorted(missing)}")
    return _normalize(frame)


def _load_existing(path: Path, scenario: Scenario, seed: int, methods) -> pd.DataFrame:
    if not path.exists():
        return _empty()
    frame = load_results(path)
    if not len(frame):
        return frame
    for column, wanted in (("scenario", scenario.name), ("seed", seed)):
        found = sorted(set(frame[column].tolist()))
        if found != [wanted]:
            raise ValueError(f"{path} holds a study with {column} {found}, not {wanted!r}: "
                             "use another file to start a new study")
    found = list(dict.fromkeys(frame["method"]))
    if sorted(found) != sorted(methods):
        raise ValueError(f"{path} holds the methods {found}, not {list(methods)}: use the "
                         "same methods to resume, or another file")
    # keep complete replicates only (a file cut short mid-write is not possible, but a
    # hand-edited one may be)
    counts = frame.groupby("rep").size()
    complete = counts.index[counts == len(methods) * len(PARAMETERS)]
    return frame[frame["rep"].isin(complete)].reset_index(drop=True)


def _check_methods(methods) -> tuple[str, ...]:
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    methods = tuple(methods)
    unknown = [m for m in methods if m not in FITTERS]
    if unknown or not methods:
        raise ValueError(f"unknown methods {unknown or '(none given)'}: choose from "
                         f"{', '.join(METHODS)}")
    if len(set(methods)) != len(methods):
        raise ValueError(f"methods repeated: {list(methods)}")
    return methods


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return int(value)


# --- summaries ---------------------------------------------------------------------------

def summarise(results: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per scenario, method and parameter: bias, empirical SE, RMSE and the coverage of the
    95% intervals, each with its Monte Carlo SE (Morris, White & Crowther 2019), the mean
    model SE, the mean time per fit and the counts of fits, failures and warnings."""
    del level  # the intervals are stored at 95%
    rows = []
    order = {m: i for i, m in enumerate(METHODS)}
    for (scen, method, parameter), part in results.groupby(
            ["scenario", "method", "parameter"], sort=False):
        failed = part["error"] != ""
        ok = part[~failed & part["estimate"].notna()]
        n = len(ok)
        err = ok["estimate"] - ok["truth"]
        bias = err.mean() if n else np.nan
        emp_se = ok["estimate"].std(ddof=1) if n > 1 else np.nan
        mse = (err**2).mean() if n else np.nan
        rmse = math.sqrt(mse) if n else np.nan
        if n > 1:
            mse_mcse = math.sqrt(((err**2 - mse) ** 2).sum() / (n * (n - 1)))
            rmse_mcse = mse_mcse / (2 * rmse) if rmse > 0 else np.nan
        else:
            rmse_mcse = np.nan
        intervals = ok[ok["lower"].notna() & ok["upper"].notna()]
        n_int = len(intervals)
        if n_int:
            covered = (intervals["lower"] <= intervals["truth"]) & (
                intervals["truth"] <= intervals["upper"])
            coverage = float(covered.mean())
            coverage_mcse = math.sqrt(coverage * (1 - coverage) / n_int)
        else:
            coverage = coverage_mcse = np.nan
        rows.append({
            "scenario": scen, "method": method, "parameter": parameter,
            "truth": float(part["truth"].iloc[0]), "n_reps": part["rep"].nunique(),
            "n_ok": n, "n_failed": int(failed.sum()),
            "n_warned": int((part["warnings"] != "").sum()),
            "mean": ok["estimate"].mean() if n else np.nan,
            "bias": bias, "bias_mcse": emp_se / math.sqrt(n) if n > 1 else np.nan,
            "emp_se": emp_se, "model_se": ok["se"].mean() if ok["se"].notna().any() else np.nan,
            "rmse": rmse, "rmse_mcse": rmse_mcse,
            "coverage": coverage, "coverage_mcse": coverage_mcse, "n_intervals": n_int,
            "seconds_per_fit": part["seconds"].mean(),
        })
    table = pd.DataFrame(rows)
    if len(table):
        table["_m"] = table["method"].map(order).fillna(len(order))
        table["_p"] = table["parameter"].map({p: i for i, p in enumerate(PARAMETERS)})
        table = table.sort_values(["scenario", "_m", "_p"]).drop(columns=["_m", "_p"])
    return table.reset_index(drop=True)


def timing(results: pd.DataFrame) -> pd.DataFrame:
    """Seconds per fit by method (each fit is repeated over the parameter rows)."""
    fits = results.drop_duplicates(["scenario", "rep", "method"])
    return (fits.groupby(["scenario", "method"], sort=False)["seconds"]
            .agg(["mean", "median", "min", "max", "count"]).reset_index())


def plot_study(summary: pd.DataFrame, parameters: Sequence[str] = PARAMETERS):
    """Bias (with +-2 Monte Carlo SE) and coverage (with +-2 MCSE, the 95% line) of each
    parameter, by method: one row of panels per measure, one column per parameter."""
    import matplotlib.pyplot as plt

    parameters = [p for p in parameters if p in set(summary["parameter"])]
    fig, axes = plt.subplots(2, len(parameters), figsize=(3.2 * len(parameters), 5.5),
                             squeeze=False, sharey="row")
    for j, parameter in enumerate(parameters):
        part = summary[summary["parameter"] == parameter]
        y = np.arange(len(part))
        for i, (measure, mcse, ref) in enumerate((("bias", "bias_mcse", 0.0),
                                                  ("coverage", "coverage_mcse", 0.95))):
            ax = axes[i, j]
            ax.errorbar(part[measure], y, xerr=2 * part[mcse].fillna(0), fmt="o",
                        color="C0" if i == 0 else "C1", capsize=3)
            ax.axvline(ref, color="grey", lw=1, ls="--")
            ax.set_yticks(y, part["method"])
            ax.set_title(f"{parameter}: {measure}", fontsize=10)
            if i == 1:
                ax.set_xlim(min(0.5, np.nanmin(part[measure].to_numpy(), initial=0.95) - 0.05),
                            1.0)
    fig.suptitle(f"Simulation study: {', '.join(map(str, summary['scenario'].unique()))}")
    fig.tight_layout()
    return fig
