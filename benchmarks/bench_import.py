"""Start-up time: ``python -c "import companion"`` (target 0.5 s or less on 2 cores), and
what a student's first steps cost on top of it, each in a fresh interpreter.

Run: ``.venv/bin/python benchmarks/bench_import.py`` (``make bench``). Prints the median
of several fresh processes for: the bare interpreter, ``import companion``, loading a data
set, and the first ``lmer`` fit (which loads numpy, scipy, pandas and patsy)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

STEPS = {
    "python (nothing imported)": "pass",
    "import companion": "import companion",
    "+ load_dataset('sleepstudy')": "import companion; companion.load_dataset('sleepstudy')",
    "+ lmer(...) on sleepstudy": ("import companion; d = companion.load_dataset('sleepstudy');"
                                 " companion.lmer('Reaction ~ Days + (Days | Subject)', d)"),
}
TARGET = 0.5  # seconds for "import companion", issue #17


def fresh_seconds(code: str, repeats: int) -> float:
    """Median wall time of ``python -c code`` in new processes."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(repeats: int = 7) -> None:
    fresh_seconds("import companion", 1)  # warm the file cache
    print(f"{'step':34s} {'median s':>9s}  ({repeats} fresh processes each)")
    for label, code in STEPS.items():
        seconds = fresh_seconds(code, repeats)
        note = ""
        if label == "import companion":
            note = f"  target <= {TARGET} s: {'met' if seconds <= TARGET else 'MISSED'}"
        print(f"{label:34s} {seconds:9.3f}{note}")


if __name__ == "__main__":
    main()
