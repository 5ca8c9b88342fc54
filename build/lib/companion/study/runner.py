"""A simulation study of the chapter's GLMM fitting methods (section 8.4, made repeatable).

Each replicate draws a data set from a scenario (:mod:`companion.study.scenarios`) with its own
seed, ``numpy.random.SeedSequence(seed).spawn(reps)[rep]``, and fits it with every method
of :mod:`companion.study.methods` (Laplace, AGHQ, PQL, REML, GEE, INLA).

:func:`run_study` returns one row per replicate, method and parameter (``(Intercept)``,
``x1``, ``x2`` and ``sd_g``, the random-intercept SD): the true value, the estimate, its
standard error (INLA: the posterior SD), a 95% interval, the fit time and any error or
warnings. A failing fit is recorded, never fatal. :mod:`companion.study.summary` turns the
rows into bias, RMSE and coverage with Monte Carlo standard errors, and a figure.

Parallelism: joblib (loky processes) on the local cores with ``workers=K``, or a Dask
cluster with ``scheduler="tcp://host:8786"`` (or a ``distributed.Client``). Every fit runs
with its BLAS limited to one thread, so the numbers are identical whatever the number of
workers or the back end; only ``seconds`` (wall-clock) differs between runs. With ``out``
the results are written after every batch of replicates; a later call with the same file
computes only the replicates it lacks.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from companion.study.methods import FITTERS, METHODS, PARAMETERS, method_truth
from companion.study.scenarios import Scenario, get_scenario
from companion.study.summary import plot_study, summarise, timing

__all__ = ["COLUMNS", "FITTERS", "METHODS", "PARAMETERS", "load_results", "plot_study",
           "run_replicate", "run_study", "summarise", "timing"]

COLUMNS = ["scenario", "seed", "rep", "method", "parameter", "truth", "estimate", "se",
           "lower", "upper", "seconds", "error", "warnings"]
_STRINGS = ["scenario", "method", "parameter", "error", "warnings"]
_FORMATS = {".parquet": "parquet", ".csv": "csv", ".csv.gz": "csv", ".pkl": "pickle",
            ".pickle": "pickle"}


def _format(path: Path) -> str | None:
    """The results file's kind from the end of its name (``.csv.gz`` is gzipped CSV)."""
    name = path.name.lower()
    ending = max((e for e in _FORMATS if name.endswith(e)), key=len, default=None)
    return _FORMATS.get(ending)


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
        scenario: a name in :data:`companion.study.scenarios.SCENARIOS` or a ``Scenario``.
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
    if path is not None and _format(path) is None:
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
        """End the run and stop joblib's worker processes, which would otherwise stay
        alive (each holding its imports) in case another parallel call comes."""
        from joblib.externals.loky import get_reusable_executor

        self.parallel.__exit__(None, None, None)
        if self.parallel.n_jobs != 1:
            get_reusable_executor().shutdown(wait=True)


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
    kind = _format(path)
    if kind == "parquet":
        frame.to_parquet(tmp, index=False)
    elif kind == "csv":
        gzipped = path.name.lower().endswith(".gz")
        frame.to_csv(tmp, index=False, compression={"method": "gzip", "mtime": 0}
                     if gzipped else None)
    else:
        frame.to_pickle(tmp)
    os.replace(tmp, path)


def load_results(path: str | os.PathLike) -> pd.DataFrame:
    """Read a study's results file (``.parquet``, ``.csv``, ``.csv.gz`` or ``.pkl``)."""
    path = Path(path)
    kind = _format(path)
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
