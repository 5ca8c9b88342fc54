"""Speed of companion.lmer against statsmodels MixedLM, and a scale case.

Run: ``.venv/bin/python benchmarks/bench_lmm.py`` (``make bench``). Prints, in one run:

* sleepstudy, ``Reaction ~ Days + (Days | Subject)`` by REML, end to end (formula to
  result): the median time of companion.lmer and of statsmodels' MixedLM and their ratio
  (targets: 6 ms or less, at least 4x faster than MixedLM; lme4 takes about 12 ms);
* a scale case generated here: 1,000,000 rows, 20,000 groups, a correlated random
  intercept and slope, REML: wall time and peak memory of the fit, in a fresh process
  (targets: 3 s or less, under 2 GB; lme4 takes about 8.5 s).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd
from timing import median_time



def sleepstudy(repeats: int) -> None:
    import statsmodels.formula.api as smf

    import companion

    sleep = companion.load_dataset("sleepstudy")
    ours, _ = median_time(lambda: companion.lmer("Reaction ~ Days + (Days | Subject)", sleep),
                          repeats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' own convergence chatter
        peer, _ = median_time(lambda: smf.mixedlm("Reaction ~ Days", sleep,
                                                  groups=sleep["Subject"],
                                                  re_formula="~Days").fit(reml=True),
                              repeats)
    print(f"sleepstudy REML  companion.lmer {ours * 1e3:8.1f} ms   "
          f"statsmodels MixedLM {peer * 1e3:8.1f} ms   ratio {peer / ours:5.1f}x   "
          f"(target <= 6 ms and >= 4x)")


def scale_data(rows: int, groups: int, seed: int = 2023) -> pd.DataFrame:
    """Correlated random intercepts and slopes: sd 25 and 6, correlation 0.3, noise 25."""
    rng = np.random.default_rng(seed)
    cov = np.array([[25.0**2, 0.3 * 25 * 6], [0.3 * 25 * 6, 6.0**2]])
    effects = rng.multivariate_normal([0, 0], cov, size=groups)
    g = rng.integers(groups, size=rows)
    x = rng.uniform(0, 9, size=rows)
    y = 250 + 10 * x + effects[g, 0] + effects[g, 1] * x + rng.normal(0, 25, size=rows)
    return pd.DataFrame({"y": y, "x": x,
                         "g": pd.Categorical(g, categories=np.arange(groups))})


def scale_case(rows: int, groups: int) -> None:
    """Fit the scale case in this process and print its time and peak memory."""
    import companion

    data = scale_data(rows, groups)
    started = time.perf_counter()
    fit = companion.lmer("y ~ x + (x | g)", data)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # KiB -> MiB
    sd = fit.varcorr.sdcor.round(2).tolist()
    print(f"scale {rows:,} rows, {groups:,} groups  companion.lmer {seconds:6.2f} s   "
          f"peak memory {peak:6.0f} MB (process, data included)   estimates {sd}   "
          "(target <= 3 s, < 2 GB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--groups", type=int, default=20_000)
    parser.add_argument("--scale-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scale_only:
        scale_case(args.rows, args.groups)
        return
    sleepstudy(args.repeats)
    subprocess.run([sys.executable, __file__, "--scale-only", "--rows", str(args.rows),
                    "--groups", str(args.groups)], check=True)


if __name__ == "__main__":
    main()
