"""numba compilation with an on-disk cache where one can be written: the one JIT decorator of the backend."""

import warnings

import numba


def njit_cached(**options):
    """numba.njit with an on-disk cache when a cache location is writable, without one otherwise. Kernels release
    the GIL (nogil) unless told otherwise: the server's socket thread keeps answering heartbeats, and a render
    overlaps a generate, while a kernel runs for seconds."""
    options.setdefault("nogil", True)

    def wrap(fn):
        try:
            return numba.njit(cache=True, **options)(fn)
        except RuntimeError:  # no writable cache locator (e.g. a read-only install without NUMBA_CACHE_DIR)
            warnings.warn(f"numba cannot cache {fn.__name__}; it compiles on every process start", stacklevel=2)
            return numba.njit(cache=False, **options)(fn)

    return wrap
