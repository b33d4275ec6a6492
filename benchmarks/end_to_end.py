"""End to end: ``routesim run`` as a user runs it, each in its own process, beside
the minimal simpy loop (``minimal_loop.py``) of the same number of requests
measured in the same run.

- ``--requests`` (default 1,000,000) requests of compare.yaml's ``dynamic``
  (weighted) policy, one replication, report included: wall time, its ratio to
  the minimal loop, and peak memory (the process's max RSS);
- ``--jobs``: compare.yaml at ``--jobs-requests`` (default 100,000) requests an
  hour, 5 replications, three policies, with ``--jobs 1`` and ``--jobs 2``: the speed-up, and whether the
  tables are the same;
- the fixed cost: ``routesim run --no-report`` of a 1,000-request scenario, and
  ``routesim run`` of a file that does not exist.

Issue 14's targets: 1M end to end within 8x the minimal loop and <= 600 MB;
--jobs >= 1.7x on 2 cores; <= 1 s for the 1,000-request run.

    python benchmarks/end_to_end.py [--requests 1000000] [--skip-jobs] [--jobs-requests 100000]
"""

from __future__ import annotations

import argparse
import copy
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from minimal_loop import minimal_loop  # noqa: E402


def compare_scenario(folder: Path, requests: int, replications: int, only_dynamic: bool) -> Path:
    data = copy.deepcopy(yaml.safe_load((ROOT / "scenarios" / "compare.yaml").read_text()))
    data["trace"]["synthetic"]["rate_per_s"] = requests / data["trace"]["synthetic"]["duration_s"]
    data["replications"] = replications
    if only_dynamic:
        data["policies"] = {"dynamic": data["policies"]["dynamic"]}
        data["baseline"] = "dynamic"
        data.pop("gates", None)  # its candidate against a baseline: one policy has neither
    path = folder / f"compare-{requests}-{replications}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def routesim(*args: str) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB of that process, exit code) of one routesim command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sim", *args], cwd=ROOT, capture_output=True)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest of any child so far: measure the big run first.
    return wall, max(peak, before) / 1024, done.returncode


def minimal_loop_seconds(requests: int) -> float:
    rng = np.random.default_rng(0)
    arrival = np.cumsum(rng.exponential(3600.0 / requests, requests))
    service = rng.lognormal(np.log(4.0), 0.8, requests)
    return minimal_loop(arrival, service)[0]


def same_tables(a: Path, b: Path) -> bool:
    import pandas as pd

    timing = ["decision_us", "decision_cpu_us"]
    for table in ("requests", "attempts", "decisions"):
        x = pd.read_parquet(a / f"{table}.parquet").drop(columns=timing, errors="ignore")
        y = pd.read_parquet(b / f"{table}.parquet").drop(columns=timing, errors="ignore")
        if not x.equals(y):
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--skip-jobs", action="store_true")
    parser.add_argument("--jobs-requests", type=int, default=100_000,
                        help="requests per replication of the --jobs case (the fixed cost of workers weighs less "
                             "on a longer run)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        big = compare_scenario(folder, args.requests, 1, only_dynamic=True)
        wall, peak, code = routesim("run", str(big), "--out", str(folder / "big"), "--jobs", "1")
        loop = minimal_loop_seconds(args.requests)
        print(f"routesim run, {args.requests:,} weighted requests with the report: {wall:.1f} s (exit {code}), "
              f"{wall / loop:.1f}x the minimal loop's {loop:.2f} s; peak {peak:,.0f} MB")
        if not args.skip_jobs:
            mid = compare_scenario(folder, args.jobs_requests, 5, only_dynamic=False)
            one, _, _ = routesim("run", str(mid), "--out", str(folder / "one"), "--jobs", "1", "--no-report")
            two, _, _ = routesim("run", str(mid), "--out", str(folder / "two"), "--jobs", "2", "--no-report")
            print(f"--jobs: 5 replications x 3 policies of ~{args.jobs_requests:,} requests: {one:.1f} s on one process, "
                  f"{two:.1f} s on two = {one / two:.2f}x; same tables: {same_tables(folder / 'one', folder / 'two')}")
        small = compare_scenario(folder, 1000, 1, only_dynamic=False)
        walls = sorted(routesim("run", str(small), "--out", str(folder / f"small{k}"), "--no-report")[0]
                       for k in range(3))
        missing = sorted(routesim("run", str(folder / "nope.yaml"))[0] for _ in range(3))
        print(f"fixed cost: 1,000-request run --no-report {walls[1]:.2f} s (median of 3); "
              f"a missing file {missing[1]:.2f} s")


if __name__ == "__main__":
    main()
