"""release_memory gives the pages a finished phase freed back to the system (the
process's resident size drops), so a run's report does not grow on top of them."""

from __future__ import annotations

import pytest


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def test_freed_pages_go_back_to_the_system():
    from sim.memory import _libc, release_memory

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
    assert before - after > 200, (before, after)
    assert len(kept) == 1172
