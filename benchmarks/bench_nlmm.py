"""Speed of companion.nlme on the chapter's nonlinear mixed model, in one run.

Run: ``.venv/bin/python benchmarks/bench_nlmm.py``. Prints the median end-to-end time
(formula to result) of the chapter's nfm2, ``height ~ SSasymp(age, Asym, R0, lrc)`` with a
random ``Asym`` by ``Seed`` on Loblolly, ML (target: 10 ms or less; R's nlme takes about
9.5 ms), beside the time of the reference run in R and the fit's log-likelihood against
R's. No Python package fits nonlinear mixed models by nlme's algorithm, so there is no
Python peer to time.
"""

from __future__ import annotations


import companion
from timing import median_time
from companion.nlmm.nlme import nlme

MODEL = "height ~ SSasymp(age, Asym, R0, lrc)"
START = {"Asym": 103, "R0": -8.5, "lrc": -3.3}



def main(repeats: int = 20) -> None:
    loblolly = companion.load_dataset("Loblolly")
    seconds, fit = median_time(
        lambda: nlme(MODEL, loblolly, random="Asym", groups="Seed", start=START), repeats)
    reference = companion.reference("loblolly_nlme_asym")
    print(f"Loblolly, {MODEL}, random Asym | Seed, ML\n"
          f"  companion.nlme           {seconds * 1e3:8.1f} ms   logLik {fit.loglik:.7f}   "
          f"(target <= 10 ms)\n"
          f"  R nlme (reference run)   {reference['fit_seconds_single_run'] * 1e3:8.1f} ms   "
          f"logLik {reference['logLik']:.7f}   ratio "
          f"{reference['fit_seconds_single_run'] / seconds:6.1f}x")


if __name__ == "__main__":
    main()
