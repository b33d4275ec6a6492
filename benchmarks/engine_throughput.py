"""Engine throughput: routesim vs a bare simpy callback loop of the same event count.

Simulates >= 1,000,000 requests shaped like scenarios/compare.yaml (same models,
workload mix and token shapes, the rate raised so an hour holds a million
requests) with the ``weighted`` policy, then runs a bare simpy callback chain
with as many events as routesim scheduled (one per arrival, one per attempt),
and prints both and their ratio. Targets (issue 2): within 5x of the bare loop
and >= 50,000 simulated requests per second on one core.

    python benchmarks/engine_throughput.py [--requests 1000000] [--policy dynamic]

Timing covers simulating and recording (engine, router, policy, per-column
records), not writing Parquet or the report.
"""

from __future__ import annotations

import argparse
import copy
import gc
import sys
import tempfile
import time
from pathlib import Path

import simpy
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.catalog import build_catalog  # noqa: E402
from sim.runner import load_trace, simulate  # noqa: E402
from sim.scenario import load_scenario  # noqa: E402
from sim.beliefs import SharedDraws  # noqa: E402
from sim.world import World, draw_difficulty  # noqa: E402


def bare_simpy_loop(events: int) -> tuple[float, int]:
    """Seconds for a chain of ``events`` simpy timeouts, each scheduling the next from its
    callback, and how many callbacks ran (``events``, which the test checks)."""
    env = simpy.Environment()
    remaining = [events]

    def callback(_event) -> None:
        remaining[0] -= 1
        if remaining[0] > 0:
            env.timeout(1.0).callbacks.append(callback)

    env.timeout(1.0).callbacks.append(callback)
    start = time.perf_counter()
    env.run()
    return time.perf_counter() - start, events - remaining[0]


def routesim_run(requests: int, policy: str) -> tuple[float, int, int]:
    """Seconds, requests and events for one policy over a compare.yaml-shaped trace."""
    data = yaml.safe_load((ROOT / "scenarios" / "compare.yaml").read_text())
    data = copy.deepcopy(data)
    duration = data["trace"]["synthetic"]["duration_s"]
    data["trace"]["synthetic"]["rate_per_s"] = requests / duration
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.yaml"
        path.write_text(yaml.safe_dump(data))
        loaded = load_scenario(path)
    sc = loaded.scenario
    trace = load_trace(loaded, sc.seed, 0)
    catalog = build_catalog(loaded, trace.workloads)
    difficulty = draw_difficulty(sc, trace, sc.seed, 0)
    world = World(sc, catalog, trace, difficulty, sc.seed, 0, sc.max_attempts())
    gc.collect()
    start = time.perf_counter()
    recorder, _ = simulate(loaded, policy, world, catalog, SharedDraws(sc, catalog, difficulty, sc.seed, 0), sc.seed, 0)
    elapsed = time.perf_counter() - start
    return elapsed, len(trace), len(trace) + len(recorder.a_index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--policy", default="dynamic", help="a policy of compare.yaml (dynamic = weighted)")
    args = parser.parse_args()
    seconds, requests, events = routesim_run(args.requests, args.policy)
    bare, _ = bare_simpy_loop(events)
    print(f"routesim ({args.policy}): {requests:,} requests, {events:,} events in {seconds:.2f} s "
          f"= {requests / seconds:,.0f} requests/s, {events / seconds:,.0f} events/s")
    print(f"bare simpy callback loop: {events:,} events in {bare:.2f} s = {events / bare:,.0f} events/s")
    ratio = seconds / bare
    print(f"ratio routesim / bare simpy: {ratio:.2f}x (target <= 5x); "
          f"requests/s target >= 50,000: {'met' if requests / seconds >= 50_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
