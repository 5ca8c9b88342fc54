"""Where a study's results came from, and the study that ships with the package.

``python -m companion simulate`` writes, beside its results file ``F``, a record ``F.json``:
the command, scenario, seed, replicates and methods, the versions of Python and the
numerical libraries, the machine, the time it took, and the results file's SHA-256.
:func:`shipped_results` reads the study shipped in ``companion/study_results/`` (one file
per scenario, made that way) after checking each file against its record; the book's
simulation page shows it instead of running a large study at every build.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd

from companion.study.runner import load_results

SHIPPED = Path(__file__).resolve().parents[1] / "study_results"
_LIBRARIES = ("mixed-models-companion", "numpy", "scipy", "pandas", "statsmodels")


def sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def record_path(results: str | os.PathLike) -> Path:
    """``F.json`` for a results file ``F``."""
    results = Path(results)
    return results.with_name(results.name + ".json")


def write_record(results: str | os.PathLike, *, command: str, scenario: str, reps: int,
                 seed: int, methods, workers: int, seconds: float) -> Path:
    """Write ``F.json`` beside the results file ``F``; return its path."""
    results = Path(results)
    frame = load_results(results)
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    record = {"results": results.name, "sha256": sha256(results), "command": command,
              "scenario": scenario, "reps": int(reps), "seed": int(seed),
              "methods": list(methods), "workers": int(workers),
              "rows": len(frame), "seconds": round(float(seconds), 1),
              "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "python": sys.version.split()[0], "versions": versions,
              "machine": {"system": platform.system(), "processor": platform.machine(),
                          "cpus": os.cpu_count()}}
    path = record_path(results)
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return path


def read_record(results: str | os.PathLike) -> dict:
    """The record of a results file, after checking the file's SHA-256 against it."""
    record = json.loads(record_path(results).read_text(encoding="utf-8"))
    found = sha256(results)
    if found != record["sha256"]:
        raise ValueError(f"{Path(results).name} does not match its record (SHA-256 "
                         f"{found[:12]}... against {record['sha256'][:12]}...): the file "
                         "changed after the study that the record describes")
    return record


def shipped_files() -> dict[str, Path]:
    """The shipped results file of each scenario, by scenario name."""
    files = sorted(SHIPPED.glob("*.csv.gz"))
    return {json.loads(record_path(f).read_text(encoding="utf-8"))["scenario"]: f
            for f in files}


def shipped_results() -> tuple[pd.DataFrame, dict[str, dict]]:
    """The shipped study (every scenario's rows, checked) and each scenario's record."""
    records, frames = {}, []
    for scenario, path in shipped_files().items():
        records[scenario] = read_record(path)
        frames.append(load_results(path))
    if not frames:
        raise FileNotFoundError(f"no shipped study in {SHIPPED}")
    return pd.concat(frames, ignore_index=True), records
