"""One BLAS thread while a model is fitted.

numpy and scipy each ship their own OpenBLAS, each with its own pool of threads. A fit
alternates between them thousands of times on small matrices, and on a machine with few
cores the two pools' spinning threads compete for them: the same factorisation was
measured 5 times slower than with one thread (2 cores). The engine's matrices are small or
blocked, so one thread loses nothing; :func:`single_blas_thread` limits both pools for the
duration of a call and restores them afterwards. The few large dense factorisations (a
thousand lecturers crossed with students) run inside :func:`all_blas_threads`, which gives
the pools their threads back for one LAPACK call.
"""

from __future__ import annotations

import contextlib
import functools

_controller = None
_original = None  # the thread counts before the first fit


def single_blas_thread(fit):
    """Decorate ``fit`` so that it runs with one BLAS thread (see the module's text)."""
    @functools.wraps(fit)
    def wrapper(*args, **kwargs):
        global _controller, _original
        if _controller is None:
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController()
            _original = max((lib.num_threads for lib in _controller.lib_controllers),
                            default=1)
        with _controller.limit(limits=1, user_api="blas"):
            return fit(*args, **kwargs)

    return wrapper


@contextlib.contextmanager
def all_blas_threads():
    """Inside a fit, the BLAS threads the process had before it (for one large call)."""
    if _controller is None or _original == 1:
        yield
        return
    with _controller.limit(limits=_original, user_api="blas"):
        yield
