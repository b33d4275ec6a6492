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
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Callable, Hashable, Iterator, Sequence, TypeVar

Key = TypeVar("Key")

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


def in_order_longest_first(pool: ProcessPoolExecutor, workers: int, function: Callable, keys: Sequence[Key],
                           kind: Callable[[Key], Hashable], window: int) -> Iterator[tuple[Key, object]]:
    """``(key, function(key))`` for every key, yielded in the order of ``keys``, computed in
    ``pool``'s ``workers`` processes longest first.

    Why: run in order, a run whose last cell is its longest (a dynamic policy after two static
    ones) leaves one worker idle for most of that cell at the end. A key's expected time is the
    time its ``kind`` (the policy) took last; kinds not seen yet go first, in order. Only keys
    within ``window`` places of the first one not yet yielded may jump ahead, so the results
    held back until their turn stay few.
    """
    pending = list(range(len(keys)))  # positions not yet submitted
    seconds: dict[Hashable, float] = {}  # the time each kind's last cell took
    running: dict[Future, tuple[int, float]] = {}
    finished: dict[int, object] = {}
    next_out = 0

    def submit_next() -> None:
        limit = next_out + window
        eligible = [p for p in pending if p < limit] or pending[:1]
        position = max(eligible, key=lambda p: (seconds.get(kind(keys[p]), float("inf")), -p))
        pending.remove(position)
        running[pool.submit(function, keys[position])] = (position, time.perf_counter())

    # One queued beyond the workers, so none waits for this loop between two cells.
    while pending and len(running) < workers + 1:
        submit_next()
    while running:
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in done:
            position, started = running.pop(future)
            finished[position] = future.result()  # a failed cell raises here
            seconds[kind(keys[position])] = time.perf_counter() - started
        while pending and len(running) < workers + 1:
            submit_next()
        while next_out in finished:
            yield keys[next_out], finished.pop(next_out)
            next_out += 1


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
