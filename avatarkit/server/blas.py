"""One BLAS thread for the Motion Server, also when it runs inside an app (EmbeddedServer).

The server runs many small per-session matrix products on one event loop; BLAS worker
threads only fight it and each other for the cores (the model ran ~10x slower under load).
Before numpy loads, the environment decides; once it is loaded, OpenBLAS is told through
its own C entry point (no threadpoolctl needed). This is process-wide, as BLAS threads are.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

log = logging.getLogger(__name__)

THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# numpy's wheels bundle scipy-openblas (64-bit ints, suffixed symbols); distro builds don't.
_SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)
_GETTERS = (
    "scipy_openblas_get_num_threads64_",
    "openblas_get_num_threads64_",
    "openblas_get_num_threads",
)


def limit_blas_threads(threads: int = 1) -> bool:
    """Use at most ``threads`` BLAS threads from now on; False if no way was found."""
    if "numpy" not in sys.modules:
        for name in THREAD_ENV:
            os.environ[name] = str(threads)
        return True
    done = False
    for lib in _loaded_openblas():
        for setter in _SETTERS:
            fn = getattr(lib, setter, None)
            if fn is not None:
                fn.argtypes = [ctypes.c_int]
                fn(threads)
                done = True
                break
    if not done:
        log.info("could not limit BLAS threads: set OPENBLAS_NUM_THREADS=1 before numpy loads")
    return done


def blas_threads() -> int | None:
    """OpenBLAS's current thread count, or None when no OpenBLAS is loaded."""
    for lib in _loaded_openblas():
        for getter in _GETTERS:
            fn = getattr(lib, getter, None)
            if fn is not None:
                fn.restype = ctypes.c_int
                return int(fn())
    return None


def _loaded_openblas() -> list[ctypes.CDLL]:
    paths: list[str] = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.rsplit(" ", 1)[-1].strip()
                if "openblas" in os.path.basename(path) and path not in paths:
                    paths.append(path)
    except OSError:  # not Linux: only the environment route works
        return []
    libs = []
    for path in paths:
        try:
            libs.append(ctypes.CDLL(path))
        except OSError:
            continue
    return libs
