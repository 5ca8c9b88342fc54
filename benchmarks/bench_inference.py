"""Inference after the fit, timed side by side in one run (issue #18's benchmarks).

Run: ``make bench``. Prints, on sleepstudy (``Reaction ~ Days + (Days | Subject)``, REML):

* 1,000 parametric bootstrap refits of the fixed effects: ``companion.bootstrap`` on one
  process and on two joblib workers, beside mixedlm's ``bootMer`` (PyPI, Rust core) with
  ``n_jobs`` 1 and 2, and lme4's ``bootMer`` as recorded by
  ``tests/reference/boot/make_boot.R`` on a machine of this project's kind (target: 4 s or
  less on 2 cores);
* the Satterthwaite table after the fit, ``fit.coef_table()`` (lmerTest's summary), and
  the Kenward-Roger summary, ``fit.summary(ddf="Kenward-Roger")`` (target: 50 ms or less),
  beside mixedlm's ``satterthwaite_df`` and ``kenward_roger_df``.

Each after a warm-up call.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import companion

REFERENCE = Path(__file__).resolve().parents[1] / "tests" / "reference" / "boot"


def seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    warnings.simplefilter("ignore")
    sleep = companion.load_dataset("sleepstudy")
    fit = companion.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    r_seconds = json.loads((REFERENCE / "sleepstudy_bootmer.json").read_text())["seconds"]
    print("1,000 parametric bootstrap refits of sleepstudy's fixed effects")
    for workers in (1, 2):
        companion.bootstrap(fit, nsim=20, seed=1, workers=workers, progress=False)
        took = seconds(lambda: companion.bootstrap(fit, nsim=1000, seed=1, workers=workers,
                                                   progress=False))
        print(f"  companion.bootstrap, workers={workers}: {took:6.2f} s")
    try:
        import mixedlm

        peer = mixedlm.lmer("Reaction ~ Days + (Days | Subject)", sleep)
        for jobs in (1, 2):
            mixedlm.bootMer(peer, nsim=20, seed=1, n_jobs=jobs)
            took = seconds(lambda: mixedlm.bootMer(peer, nsim=1000, seed=1, n_jobs=jobs))
            print(f"  mixedlm.bootMer, n_jobs={jobs}:        {took:6.2f} s")
    except ImportError:
        print("  mixedlm is not installed (the bench extra has it)")
    print(f"  lme4's bootMer (recorded):           {r_seconds:6.2f} s   (target: <= 4 s)")
    peer_tables = {}
    try:
        import mixedlm

        peer = mixedlm.lmer("Reaction ~ Days + (Days | Subject)", sleep)
        peer_tables = {"Satterthwaite": lambda: mixedlm.satterthwaite_df(peer),
                       "Kenward-Roger": lambda: mixedlm.kenward_roger_df(peer)}
    except ImportError:
        pass
    for ddf, ours in (("Satterthwaite", fit.coef_table),
                      ("Kenward-Roger", lambda: fit.summary(ddf="Kenward-Roger"))):
        ours()
        took = seconds(ours)
        line = f"{ddf} after the fit: companion {1000 * took:.1f} ms"
        if ddf in peer_tables:
            peer_tables[ddf]()
            theirs = seconds(peer_tables[ddf])
            line += f", mixedlm {1000 * theirs:.1f} ms (ratio {took / theirs:.2f})"
        print(line)

if __name__ == "__main__":
    main()
