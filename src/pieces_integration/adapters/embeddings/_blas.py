"""Set how many threads numpy's BLAS (OpenBLAS here) uses, at run time.

Why one thread: measured on this 2-core machine under the load of a shared host (load
average ~4), multi-threaded OpenBLAS collapsed, because its threads spin and wait for each
other when the cores are oversubscribed: a query took 15-330 ms (p50 over runs) instead of
10-12 ms single-threaded, and long functions embedded at 3-16/s instead of 27-32/s. With one
thread per call, the embedder's two lanes (queries, indexing) each get a core of their own.

threadpoolctl finds the BLAS numpy loaded, whatever its build calls its setter.
"""

from __future__ import annotations

import logging

import numpy  # noqa: F401  (loads the BLAS it links, so threadpoolctl can see it)
from threadpoolctl import threadpool_info, threadpool_limits

log = logging.getLogger(__name__)


def blas_threads() -> int | None:
    """Threads the BLAS currently uses, or None if none is loaded."""
    for library in threadpool_info():
        if library["user_api"] == "blas":
            return int(library["num_threads"])
    return None


def limit_blas_threads(count: int) -> bool:
    """Make the BLAS use `count` threads process-wide; False if none was found."""
    if blas_threads() is None:
        log.debug("no BLAS found to limit; numpy keeps its own threads")
        return False
    threadpool_limits(limits=count, user_api="blas")  # applies now, for the process
    return True
