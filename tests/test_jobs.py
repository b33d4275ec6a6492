"""``--jobs``: the (replication, policy) cells in several processes give the outputs one
process gives (all but the wall-clock timing of decisions)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from conftest import ROOT, patience, scenario, write_scenario

TIMING = ["decision_us", "decision_cpu_us"]  # wall-clock and CPU time of route(): differ between any two runs


def test_two_processes_write_what_one_writes(tmp_path):
    import yaml

    from sim.run.runner import run_to_folder
    from sim.scenario.load import load_scenario

    data = yaml.safe_load((ROOT / "scenarios" / "outage-drill.yaml").read_text())
    data["trace"]["synthetic"].update(rate_per_s=0.5, spikes=[])
    data["replications"] = 2
    loaded = load_scenario(write_scenario(tmp_path, data))
    one = run_to_folder(loaded, tmp_path / "one", report=False, jobs=1)
    two = run_to_folder(loaded, tmp_path / "two", report=False, jobs=2)
    for table in ("requests", "attempts", "decisions"):
        a = pd.read_parquet(tmp_path / "one" / f"{table}.parquet")
        b = pd.read_parquet(tmp_path / "two" / f"{table}.parquet")
        assert len(a) > 1000 and list(a.columns) == list(b.columns)
        pd.testing.assert_frame_equal(a.drop(columns=TIMING, errors="ignore"), b.drop(columns=TIMING, errors="ignore"))
    assert (tmp_path / "one" / "faults.csv").read_text() == (tmp_path / "two" / "faults.csv").read_text()
    summaries = [json.loads((tmp_path / run / "summary.json").read_text())["policies"] for run in ("one", "two")]
    for policy, metrics in summaries[0].items():
        for metric, value in metrics.items():
            if not metric.startswith("decision_us"):
                assert value == summaries[1][policy][metric], (policy, metric)
    assert one.fault_windows == two.fault_windows and one.requests_per_replication == two.requests_per_replication


def test_a_worker_that_dies_fails_the_run_and_writes_nothing(tmp_path, monkeypatch):
    from conftest import install_plugin
    from sim.run.runner import run_to_folder
    from sim.scenario.load import load_scenario

    install_plugin(tmp_path, monkeypatch, "crashing", '''
from sim.policies import Decision

class Late:
    """Fine for a while, then its process dies (as a crash in a native extension would)."""
    def __init__(self):
        self.n = 0
    def route(self, request, view):
        self.n += 1
        if self.n > 50:
            import os
            os._exit(1)
        return Decision(("big",), "ok")
''')
    data = scenario(replications=2, policies={"late": {"kind": "crashing:Late"}, "s": {"kind": "static", "model": "big"}},
                    baseline="s")
    loaded = load_scenario(write_scenario(tmp_path, data))
    out = tmp_path / "out"
    from concurrent.futures.process import BrokenProcessPool

    import pytest

    with pytest.raises(BrokenProcessPool):
        run_to_folder(loaded, out, report=False, jobs=2)
    assert not out.exists()  # nor a partial folder beside it
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_the_default_is_one_process_for_small_runs_and_every_core_for_large_ones():
    import os

    from sim.run.pools import PARALLEL_FROM_REQUESTS, default_jobs

    assert default_jobs(PARALLEL_FROM_REQUESTS - 1) == 1
    assert default_jobs(PARALLEL_FROM_REQUESTS) == len(os.sched_getaffinity(0))


def test_workers_of_a_run_killed_outright_stop_too(tmp_path):
    """SIGKILL (or the OOM killer) gives the parent no chance to stop its workers: each
    notices it was orphaned and exits instead of waiting for work for ever."""
    import signal
    import subprocess
    import sys
    import time

    from sim.run.pools import PARENT_CHECK_S

    path = write_scenario(tmp_path, scenario(replications=200))  # long enough to be killed midway
    proc = subprocess.Popen([sys.executable, "-m", "sim", "run", str(path), "--out", str(tmp_path / "out"),
                             "--jobs", "2", "--no-report"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + patience(60)
        workers: list[int] = []
        while time.time() < deadline and len(workers) < 2:
            time.sleep(0.1)
            workers = [pid for pid in _children(proc.pid) if b"spawn_main" in _cmdline(pid)]
        assert len(workers) == 2, "the run started its two workers"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.time() + patience(20 * PARENT_CHECK_S)
    while time.time() < deadline and any(_running(pid) for pid in workers):
        time.sleep(0.1)
    left = [pid for pid in workers if _running(pid)]
    for pid in left:  # not to leave them behind for the rest of the suite
        os.kill(pid, signal.SIGKILL)
    assert not left, "orphaned workers still running"


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name: state, parent pid, ..."""
    return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat_fields(int(entry.name))[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError):
                continue  # it ended meanwhile
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return b""


def _running(pid: int) -> bool:
    try:
        return _stat_fields(pid)[0] != "Z"  # a zombie has stopped; its parent just has not reaped it
    except OSError:
        return False


def _timed_cells(window: int) -> tuple[list, list]:
    """(results in the order yielded, keys in the order started) of 4 replications of a short
    and a long cell, on 2 threads."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from sim.run.pools import in_order_longest_first

    keys = [(r, kind) for r in range(4) for kind in ("short", "long")]
    started, lock = [], threading.Lock()

    def cell(key):
        with lock:
            started.append(key)
        time.sleep(0.01 if key[1] == "short" else 0.15)
        return f"{key[0]}-{key[1]}"

    with ThreadPoolExecutor(2) as pool:
        results = list(in_order_longest_first(pool, 2, cell, keys, kind=lambda key: key[1], window=window))
    return results, started


def test_cells_come_back_in_order_and_the_long_ones_start_first():
    results, started = _timed_cells(window=8)
    keys = [(r, kind) for r in range(4) for kind in ("short", "long")]
    assert results == [(key, f"{key[0]}-{key[1]}") for key in keys]
    assert sorted(started) == sorted(keys)
    # Once both kinds were timed, the long cells jump ahead: the run ends on short ones, where
    # in order it would end on a long one with the other worker idle.
    assert started[-1][1] == "short" and started[-2][1] == "short"
    assert started.index((3, "long")) < started.index((2, "short"))


def test_a_window_of_one_keeps_the_order():
    results, started = _timed_cells(window=1)
    keys = [(r, kind) for r in range(4) for kind in ("short", "long")]
    assert started == keys and [key for key, _ in results] == keys
