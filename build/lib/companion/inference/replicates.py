"""Simulation replicates shared out without changing their numbers: replicate ``i`` draws
from child ``i`` of ``numpy.random.SeedSequence(seed)``, and the children go out in
chunks to this process, to joblib's workers or to a Dask cluster, so every way of running
them gives the same rows. The parametric bootstrap and the power simulations use it."""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np

CHUNK_LIMIT = 50  # replicates per task, at most


def check_nsim(nsim) -> None:
    """A clear error unless ``nsim`` is a positive integer."""
    if isinstance(nsim, bool) or not isinstance(nsim, (int, np.integer)) or nsim < 1:
        raise ValueError(f"nsim must be a positive integer, not {nsim!r}")


def run_replicates(block: Callable[[Sequence[np.random.SeedSequence]], np.ndarray],
                   nsim: int, seed: int | None = None, workers: int = 1, scheduler=None,
                   progress: bool = True, desc: str = "replicates",
                   unit: str = "refit") -> np.ndarray:
    """The rows of ``nsim`` replicates, in order. ``block(seeds)`` runs the replicates of
    a chunk of seeds and returns one row each; it must pickle for joblib and Dask.
    ``workers``: local processes (joblib); ``scheduler``: a Dask address or
    ``distributed.Client`` instead; ``progress``: a tqdm bar."""
    check_nsim(nsim)
    children = np.random.SeedSequence(seed).spawn(nsim)
    size = max(1, min(CHUNK_LIMIT, nsim // (4 * max(workers, 1))))
    chunks = [children[start:start + size] for start in range(0, nsim, size)]
    from tqdm import tqdm

    bar = tqdm(total=nsim, disable=not progress, desc=desc, unit=unit)
    rows = []
    try:
        for part in _chunk_results(block, chunks, workers, scheduler):
            rows.append(part)
            bar.update(len(part))
    finally:
        bar.close()
    return np.vstack(rows)


def _chunk_results(block, chunks, workers: int, scheduler) -> Iterator[np.ndarray]:
    """``block`` of each chunk, in order, from this process, joblib or Dask."""
    if scheduler is not None:
        yield from _on_dask(block, chunks, scheduler)
    elif workers == 1:
        for chunk in chunks:
            yield block(chunk)
    else:
        from joblib import Parallel, delayed

        yield from Parallel(n_jobs=workers, return_as="generator")(
            delayed(block)(chunk) for chunk in chunks)


def _on_dask(block, chunks, scheduler) -> Iterator[np.ndarray]:
    from distributed import Client

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler,
                                                                    timeout="30s")
    try:
        futures = [client.submit(block, chunk, pure=False) for chunk in chunks]
        for future in futures:
            yield future.result()
    finally:
        if client is not scheduler:
            client.close()
