"""The policy contract holds outside the simulator: examples/live_router.py runs a
built-in policy unchanged on the wall clock, without simpy."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_live_router_example_runs_without_the_simulator():
    code = ("import sys; sys.path.insert(0, 'examples'); import live_router; outcomes = live_router.demo(); "
            "print(len(outcomes), sum(o.status == 'ok' for o in outcomes), "
            "sorted({o.model for o in outcomes}), max(o.attempts for o in outcomes), "
            "'simpy' in sys.modules, 'sim.core.engine' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    n, ok, models, max_attempts, simpy_loaded, engine_loaded = out.strip().split(" ", 5)[0:6]
    assert n == "20" and ok == "20"  # every request answered, by falling back from the dead cheap model
    assert "strong-model" in models and "cheap-model" not in models
    assert max_attempts == "2"  # the first requests tried the cheap model first
    assert out.strip().endswith("False False")


def test_live_router_learns_that_the_cheap_model_is_down():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import live_router
    finally:
        sys.path.pop(0)
    outcomes = live_router.demo()
    # After three consecutive failures the router reports the cheap model unhealthy and
    # the weighted policy stops trying it first: later requests take one attempt.
    assert [o.attempts for o in outcomes[:3]] == [2, 2, 2]
    assert all(o.attempts == 1 for o in outcomes[3:])
