"""Inference after the fit, timed side by side in one run (issue #18's benchmarks).

Run: ``make bench``. Prints, on sleepstudy (``Reaction ~ Days + (Days | Subject)``, REML):

* 1,000 parametric bootstrap refits of the fixed effects: ``companion.bootstrap`` on one
  process and on two joblib workers, beside mixedlm's ``bootMer`` (PyPI, Rust core) with
  ``n_jobs`` 1 and 2, and lme4's ``bootMer`` as recorded by
  ``tests/reference/boot/make_boot.R`` on a machine of this project's kind (target: 4 s or
  less on 2 cores);
* 1,000 bootstrap refits of cbpp's binomial GLMM, beside mixedlm's and lme4's recorded
  ``bootMer`` (``tests/reference/boot/make_boot_glmm.R``);
* 200 simulations of ``power_sim`` on sleepstudy, beside mixedlm's ``powerSim``;
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
    cbpp = companion.load_dataset("cbpp")
    formulas = {"sleepstudy": "Reaction ~ Days + (Days | Subject)",
                "cbpp": "cbind(incidence, size - incidence) ~ period + (1 | herd)"}
    fits = {"sleepstudy": companion.lmer(formulas["sleepstudy"], sleep),
            "cbpp": companion.glmer(formulas["cbpp"], cbpp)}
    try:
        import mixedlm

        peers = {"sleepstudy": mixedlm.lmer(formulas["sleepstudy"], sleep),
                 "cbpp": mixedlm.glmer(  # no cbind(): proportions with trials as weights
                     "proportion ~ period + (1 | herd)",
                     cbpp.assign(proportion=cbpp["incidence"] / cbpp["size"]),
                     family=mixedlm.families.Binomial(), weights=cbpp["size"].to_numpy())}
    except ImportError:
        mixedlm, peers = None, {}
        print("mixedlm is not installed (the bench extra has it)")
    for name, target in (("sleepstudy", "(target: <= 4 s)"), ("cbpp", "")):
        recorded = json.loads((REFERENCE / f"{name}_bootmer.json").read_text())["seconds"]
        print(f"1,000 parametric bootstrap refits of {name}'s fixed effects")
        for workers in (1, 2):
            companion.bootstrap(fits[name], nsim=20, seed=1, workers=workers, progress=False)
            took = seconds(lambda: companion.bootstrap(fits[name], nsim=1000, seed=1,
                                                       workers=workers, progress=False))
            print(f"  companion.bootstrap, workers={workers}: {took:6.2f} s")
        for jobs in (1, 2) if name in peers else ():
            mixedlm.bootMer(peers[name], nsim=20, seed=1, n_jobs=jobs)
            took = seconds(lambda: mixedlm.bootMer(peers[name], nsim=1000, seed=1,
                                                   n_jobs=jobs))
            print(f"  mixedlm.bootMer, n_jobs={jobs}:        {took:6.2f} s")
        print(f"  lme4's bootMer (recorded):           {recorded:6.2f} s   {target}")
    fit = fits["sleepstudy"]
    print("200 power simulations of sleepstudy's Days (Kenward-Roger; mixedlm: its default)")
    took = seconds(lambda: companion.power_sim(fit, "Days", effect_size=3, nsim=200, seed=1,
                                               progress=False))
    print(f"  companion.power_sim: {took:6.2f} s")
    if peers:
        took = seconds(lambda: mixedlm.powerSim(peers["sleepstudy"], test="Days", nsim=200,
                                                seed=1))
        print(f"  mixedlm.powerSim:    {took:6.2f} s")
    peer_tables = {}
    if peers:
        peer = peers["sleepstudy"]
        peer_tables = {"Satterthwaite": lambda: mixedlm.satterthwaite_df(peer),
                       "Kenward-Roger": lambda: mixedlm.kenward_roger_df(peer)}
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
