"""What routing a LiteLLM router with a routesim policy costs per call: the same mock
deployments (answering at once, no network) called through the real ``litellm.Router``
with its own default routing and with ``RoutesimStrategy`` (a weighted policy over three
deployments), side by side in one run.

    python benchmarks/litellm_plugin_overhead.py [--calls 2000]

Prints each router's per-call time (p50/p99 µs of ``acompletion``), the difference, and the
policy's own decision time as the strategy measures it (``decision_us``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def quantiles(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[98]


async def timed_calls(router, calls: int) -> list[float]:
    out = []
    for i in range(calls):
        start = time.perf_counter()
        await router.acompletion(model="support" if i % 3 else "code",
                                 messages=[{"role": "user", "content": "Please review this. " + "word " * (i % 50)}])
        out.append((time.perf_counter() - start) * 1e6)
    return out


def main() -> None:
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    calls = parser.parse_args().calls
    from litellm_harness import _close
    from test_litellm_plugin import QUALITY, _Mock, _router

    from sim.integrations.litellm import RoutesimStrategy
    from sim.policies import build

    _Mock()
    plain, routed = _router(), _router()
    strategy = RoutesimStrategy(build("weighted", {"weights": {"cost": 0.5, "quality": 0.5}}), routed,
                                quality=QUALITY).install()
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(timed_calls(plain, 100))  # warm both: imports, tokenizer, clients
        loop.run_until_complete(timed_calls(routed, 100))
        results = {}
        for name, router in (("LiteLLM's default routing", plain), ("routesim weighted policy", routed)):
            results[name] = quantiles(loop.run_until_complete(timed_calls(router, calls)))
    finally:
        strategy.uninstall()
        _close(loop)
    for name, (p50, p99) in results.items():
        print(f"{name:28s} per call: p50 {p50:8.0f} µs, p99 {p99:8.0f} µs")
    (a50, a99), (b50, b99) = results.values()
    decided = strategy.decision_us()
    print(f"difference (the strategy's pick, its token count and view, the hand-off to the policy's thread, and "
          f"its callback): p50 {b50 - a50:+.0f} µs, p99 {b99 - a99:+.0f} µs; ratio p50 {b50 / a50:.2f}x")
    print(f"the policy's route() alone: p50 {decided['p50']:.1f} µs, p99 {decided['p99']:.1f} µs "
          f"over {decided['decisions']:,} decisions")


if __name__ == "__main__":
    main()
