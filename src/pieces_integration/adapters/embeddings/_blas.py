"""Set how many threads numpy's OpenBLAS uses, at run time (Linux; elsewhere a no-op).

Why one thread: measured on this 2-core machine under the load of a shared host (load
average ~4), multi-threaded OpenBLAS collapsed, because its threads spin and wait for each
other when the cores are oversubscribed: a query took 15-330 ms (p50 over runs) instead of
10-12 ms single-threaded, and long functions embedded at 3-16/s instead of 27-32/s. With one
thread per call, the embedder's two lanes (queries, indexing) each get a core of their own.

The library is found among the ones already mapped into the process (numpy loads it on
import); the setter's name depends on the build (numpy's wheels ship `scipy_openblas64_`).
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

_GETTERS = (
    "scipy_openblas_get_num_threads64_",
    "scipy_openblas_get_num_threads",
    "openblas_get_num_threads64_",
    "openblas_get_num_threads",
)
_SETTERS = tuple(name.replace("_get_", "_set_") for name in _GETTERS)


def _openblas_libraries() -> list[ctypes.CDLL]:
    import numpy  # noqa: F401  (loads the BLAS it links)

    try:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    paths = set()
    for line in maps.splitlines():
        path = line.split()[-1] if " /" in line else ""
        name = Path(path).name.lower()
        if "openblas" in name and ".so" in name:
            paths.add(path)
    libraries = []
    for path in sorted(paths):
        try:
            libraries.append(ctypes.CDLL(path))
        except OSError:
            continue
    return libraries


def _first(library: ctypes.CDLL, names: tuple[str, ...]) -> Callable[..., int] | None:
    for name in names:
        function: Callable[..., int] | None = getattr(library, name, None)
        if function is not None:
            return function
    return None


def blas_threads() -> int | None:
    """Threads OpenBLAS currently uses, or None if it cannot be found."""
    for library in _openblas_libraries():
        getter = _first(library, _GETTERS)
        if getter is not None:
            return int(getter())
    return None


def limit_blas_threads(count: int) -> bool:
    """Make OpenBLAS use `count` threads process-wide; False if no OpenBLAS was found."""
    found = False
    for library in _openblas_libraries():
        setter = _first(library, _SETTERS)
        if setter is not None:
            setter(ctypes.c_int(count))
            found = True
    if not found:
        log.debug("no OpenBLAS found to limit; numpy's BLAS keeps its own threads")
    return found
