"""The benchmarks' one timer: the median wall time of repeated fits after a warm-up."""

import statistics
import time


def median_time(fit, repeats: int) -> tuple[float, object]:
    """Median seconds of ``fit()`` over ``repeats`` runs (after one to warm up imports
    and caches), and the last result."""
    result = fit()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = fit()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result
