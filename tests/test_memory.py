"""release_memory gives the pages a finished phase freed back to the system (the
process's resident size drops), so a run's report does not grow on top of them."""

from __future__ import annotations

import pytest


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def test_freed_pages_go_back_to_the_system():
    from sim.run.memory import _libc, release_memory

    if _libc() is None:
        pytest.skip("no malloc_trim in this C library")
    # 300 MB in blocks of 4 KB (from the C heap, not Python's small-object arenas), every
    # 64th kept alive so that the heap cannot simply shrink from its top when the rest go.
    blocks = [bytearray(4096) for _ in range(75_000)]
    kept = blocks[::64]
    del blocks
    before = _rss_mb()
    release_memory()
    after = _rss_mb()
    del kept  # alive until after the release: the heap's holes, not its top
    assert before - after > 200, (before, after)


def test_a_written_slice_of_a_request_column_gives_its_pages_back():
    """The recorder's columns that only the tables need (sim.core.recorder._Pages): once a slice
    is written, its whole pages go back to the system; values beyond it stay."""
    import numpy as np

    from sim.core.recorder import _Pages

    n = 25_000_000  # 200 MB of doubles
    pages = _Pages(8, n)
    column = pages.column("d")
    values = np.frombuffer(column, dtype=float)
    values[:] = 1.5  # every page touched
    before = _rss_mb()
    pages.release(0, n - 1001)
    after = _rss_mb()
    assert before - after > 150, (before, after)
    assert values[n - 1000:].sum() == 1.5 * 1000  # past the slice: kept
    assert values[:1000].sum() == 0.0  # inside it: given back, reads as zeros
    assert column[n - 1] == 1.5
