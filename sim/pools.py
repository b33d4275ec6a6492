"""Local worker processes, as ``run --jobs`` and sweeps use them.

Workers are spawned, not forked: the parent may hold threads (Arrow's pools,
the progress bar) that a forked child would inherit in whatever state they
were. If the work is interrupted or a task fails, the other workers are
stopped at once rather than left to finish cells nobody will read; and a
worker whose parent was killed outright (SIGKILL, the OOM killer), which no
cleanup of the parent's can handle, notices within a second and exits instead
of waiting for work forever.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterator

#: Below this many simulated requests (requests x policies x replications) a run stays in one
#: process: starting workers (each imports routesim, about a second) would cost more than it saves.
PARALLEL_FROM_REQUESTS = 200_000


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_jobs(simulated_requests: int) -> int:
    """Every core for a large run, one process for a small one."""
    return cores() if simulated_requests >= PARALLEL_FROM_REQUESTS else 1


@contextlib.contextmanager
def worker_pool(workers: int, initializer: Callable | None = None,
                initargs: tuple = ()) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` spawned processes, each set up by ``initializer(*initargs)``."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(os.getpid(), initializer, initargs))
    finished = False
    try:
        yield pool
        finished = True
    finally:
        if not finished:  # interrupted, or a task failed: stop the others now, not when they end
            for process in list(getattr(pool, "_processes", {}).values()):  # the executor has no public kill
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=not finished)


def _start_worker(parent: int, initializer: Callable | None, initargs: tuple) -> None:
    threading.Thread(target=_exit_when_orphaned, args=(parent,), name="routesim-parent-watch", daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


def _exit_when_orphaned(parent: int) -> None:
    """A worker's watch: once its parent is gone (it is re-parented), it stops at once."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(1)


PARENT_CHECK_S = 1.0  # how often a worker checks that its parent is still there
