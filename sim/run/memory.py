"""Giving freed memory back to the system between the phases of a command.

A million-request run frees most of what it allocated when it ends, but the
allocators keep the pages for reuse: CPython's and glibc's (many small objects)
and Arrow's pool. The report that follows would then grow on top of them, and
the process's peak would be the sum of both phases instead of the larger.
"""

from __future__ import annotations

import ctypes
import gc


def release_memory() -> None:
    """Collect garbage and hand free pages back: Arrow's pool, then the C heap (glibc's
    ``malloc_trim``; elsewhere the C heap is left as it is)."""
    gc.collect()
    import pyarrow

    pyarrow.default_memory_pool().release_unused()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def _libc():
    """The C library the interpreter runs on (its own symbols), if it has ``malloc_trim``."""
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None
