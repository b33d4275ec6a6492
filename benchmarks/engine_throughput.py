"""Simulation speed: routesim's simulation phase beside the minimal simpy loop
(``minimal_loop.py``) on the same requests, in the same process.

Three cases, each a trace of ``--requests`` requests shaped like
scenarios/compare.yaml (its workloads and token shapes, the rate raised):
- ``static``: one model (GPT-5), the ``static`` policy;
- ``weighted``: compare.yaml's five models and its ``dynamic`` (weighted) policy;
- ``faults``: outage-drill.yaml's ``dynamic+breaker`` (a 30-minute OpenAI
  outage, retries with backoff and a retry budget, a circuit breaker per model).

Each case runs ``--repeat`` times; the medians are printed with requests per
second and the ratio to the minimal loop. Issue 14's targets: static >= 150k
req/s and within 3.5x of the loop; weighted >= 80k req/s and within 6x; faults
within 1.5x of weighted.

    python benchmarks/engine_throughput.py [--requests 200000] [--repeat 3] [--case weighted]

Timing covers simulating and recording (engine, router, policy, per-column
records), not building the trace and world, writing Parquet or the report.
"""

from __future__ import annotations

import argparse
import copy
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from minimal_loop import minimal_loop  # noqa: E402
from sim.world.beliefs import SharedDraws  # noqa: E402
from sim.world.models import build_model_table  # noqa: E402
from sim.run.runner import load_trace, simulate  # noqa: E402
from sim.scenario.load import load_scenario  # noqa: E402
from sim.world.world import World, draw_difficulty  # noqa: E402

CASES = {  # name -> (scenario file, policy)
    "static": ("compare.yaml", "static"),
    "weighted": ("compare.yaml", "dynamic"),
    "faults": ("outage-drill.yaml", "dynamic+breaker"),
}


def case_scenario(case: str, requests: int) -> tuple[dict, str]:
    """The case's scenario data, its trace scaled to about ``requests`` requests, and its policy."""
    file, policy = CASES[case]
    data = copy.deepcopy(yaml.safe_load((ROOT / "scenarios" / file).read_text()))
    synthetic = data["trace"]["synthetic"]
    spikes = synthetic.pop("spikes", [])
    synthetic["rate_per_s"] = requests / synthetic["duration_s"]
    del spikes  # a steady rate: every case simulates the same number of requests
    data.pop("gates", None)  # one policy is kept: no candidate to gate against a baseline
    if case == "static":
        data["models"] = {"gpt-5": data["models"]["gpt-5"]}
        data["router"].pop("default_model", None)
        data["policies"] = {"static": {"kind": "static", "model": "gpt-5"}}
        data["baseline"] = "static"
    else:
        data["policies"] = {policy: data["policies"][policy]}
        data["baseline"] = policy
    return data, policy


def routesim_run(requests: int, policy: str = "dynamic", case: str | None = None) -> tuple[float, int, int]:
    """Seconds, requests and events of one simulation phase (``case``, or compare.yaml's ``policy``)."""
    if case is None:
        data = copy.deepcopy(yaml.safe_load((ROOT / "scenarios" / "compare.yaml").read_text()))
        data["trace"]["synthetic"]["rate_per_s"] = requests / data["trace"]["synthetic"]["duration_s"]
    else:
        data, policy = case_scenario(case, requests)
    seconds, trace, recorder = _simulate(data, policy)
    return seconds, len(trace), len(trace) + recorder.attempts_made


def _simulate(data: dict, policy: str):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.yaml"
        path.write_text(yaml.safe_dump(data))
        loaded = load_scenario(path)
    sc = loaded.scenario
    trace = load_trace(loaded, sc.seed, 0)
    catalog = build_model_table(loaded, trace.workloads)
    difficulty = draw_difficulty(sc, trace, sc.seed, 0)
    world = World(sc, catalog, trace, difficulty, sc.seed, 0, sc.max_attempts())
    shared = SharedDraws(sc, catalog, difficulty, sc.seed, 0)
    gc.collect()
    start = time.perf_counter()
    recorder, _ = simulate(loaded, policy, world, catalog, shared, sc.seed, 0)
    return time.perf_counter() - start, trace, recorder


def minimal_loop_run(requests: int, seed: int = 0) -> float:
    """Seconds of the minimal loop on ``requests`` Poisson arrivals (compare.yaml's hour, the
    rate raised) with lognormal service times of compare.yaml's scale (median 4 s)."""
    rng = np.random.default_rng(seed)
    arrival = np.cumsum(rng.exponential(3600.0 / requests, requests))
    service = rng.lognormal(np.log(4.0), 0.8, requests)
    gc.collect()
    seconds, _ = minimal_loop(arrival, service)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--case", choices=list(CASES), action="append", help="default: all three")
    args = parser.parse_args()
    cases = args.case or list(CASES)
    loop = statistics.median(minimal_loop_run(args.requests, seed=k) for k in range(args.repeat))
    print(f"minimal simpy loop: {args.requests:,} requests in {loop:.3f} s = {args.requests / loop:,.0f} req/s "
          f"(median of {args.repeat})")
    medians = {}
    for case in cases:
        runs = [routesim_run(args.requests, case=case) for _ in range(args.repeat)]
        seconds = statistics.median(r[0] for r in runs)
        requests, events = runs[0][1], runs[0][2]
        medians[case] = seconds
        print(f"{case:>9}: {requests:,} requests, {events:,} events in {seconds:.3f} s = "
              f"{requests / seconds:,.0f} req/s, {seconds / (loop * requests / args.requests):.2f}x the minimal loop")
    if "faults" in medians and "weighted" in medians:
        print(f"faults / weighted: {medians['faults'] / medians['weighted']:.2f}x")


if __name__ == "__main__":
    main()
