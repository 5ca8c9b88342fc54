"""The corpus's models with several random terms: companion against mixedlm, in one run.

Run: ``make bench`` (installs the ``bench`` extra, with mixedlm from PyPI). For each model
of ``tests/reference/corpus`` with more than one random term, the median end-to-end time
(formula to result) of ``companion.lmer``/``glmer`` and of ``mixedlm.lmer``/``glmer``, each
after a warm-up fit, their ratio, how far each log-likelihood is from lme4's tight optimum,
companion's peak memory during one fit (tracemalloc, the data excluded), and lme4's own time as the corpus recorded it (R 4.2.2, lme4 1.1-31, on a 2-core machine
of this project's kind, see the corpus's README). The targets (issue #16): companion at
most 0.6 x mixedlm's time on every model both can fit.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import companion
from timing import median_time

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from corpus import data_name, load_data, load_fit  # noqa: E402

MODELS = ["Penicillin_reml_crossed", "Pastes_reml_nested", "Machines_reml_nested",
          "sim_school_reml_3level", "sim_partial_crossed_ml", "sleepstudy_reml_uncorr",
          "InstEval_ml_crossed", "VerbAgg_bern_crossed", "sim_bern_crossed_slope",
          "grouseticks_pois3"]
SLOW_SECONDS = 2.0  # fits slower than this are timed once after the warm-up
TARGET = 0.6  # companion's time as a share of mixedlm's (issue #16)


def fitters(r: dict, data):
    """``companion`` and ``mixedlm`` fits of the corpus model ``r``."""
    import mixedlm

    if r["family"] == "gaussian":
        return (lambda: companion.lmer(r["formula"], data, reml=r["REML"]),
                lambda: mixedlm.lmer(r["formula"], data, REML=r["REML"]))
    family = {"binomial": mixedlm.families.Binomial(),
              "poisson": mixedlm.families.Poisson()}[r["family"]]
    return (lambda: companion.glmer(r["formula"], data, family=r["family"]),
            lambda: mixedlm.glmer(r["formula"], data, family=family))


def timed(fit) -> tuple[float, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; the logLik column tells
        first_seconds, result = median_time(fit, 1)
        if first_seconds < SLOW_SECONDS:
            return median_time(fit, 5)
    return first_seconds, result


def peak_megabytes(fit) -> float:
    """The largest memory Python and numpy held at once during ``fit()`` (tracemalloc
    sees numpy's arrays), data excluded."""
    import tracemalloc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tracemalloc.start()
        fit()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    print(f"{'model':28} {'companion s':>11} {'mixedlm s':>10} {'ratio':>6} "
          f"{'lme4 s':>7} {'dlogLik ours':>12} {'dlogLik mixedlm':>15} {'peak MB':>8} "
          f"{'<= 0.6x':>8}")
    for name in MODELS:
        r = load_fit(name)
        data = load_data(data_name(r))
        ours, peer = fitters(r, data)
        tight = r["tight_optimum"]["logLik"]
        t_ours, fit = timed(ours)
        try:
            t_peer, peer_fit = timed(peer)
            peer_gap = float(peer_fit.logLik().value) - tight
        except Exception as error:  # noqa: BLE001 - a peer that cannot fit is reported
            t_peer, peer_gap = float("nan"), float("nan")
            print(f"  mixedlm failed on {name}: {type(error).__name__}: {error}")
        print(f"{name:28} {t_ours:11.3f} {t_peer:10.3f} {t_ours / t_peer:6.2f} "
              f"{r['lme4_seconds']:7.3f} {fit.loglik - tight:12.2e} {peer_gap:15.2e} "
              f"{peak_megabytes(ours):8.0f} {'yes' if t_ours <= TARGET * t_peer else 'no':>8}")


if __name__ == "__main__":
    main()
