"""Resilience metrics against the request and attempt tables (pandas) and by hand."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sim.metrics.resilience import time_to_failover

from conftest import read, run_scenario_data, scenario
from test_world import model


def test_time_to_failover_by_hand():
    arrival = np.arange(0.0, 300.0, 1.0)
    ok = np.ones(300, dtype=bool)
    ok[100:130] = False  # the first 30 s of the fault fail
    # From t = 130 on, the next 30 s of arrivals all succeed: 30 s after the start at 100.
    assert time_to_failover(arrival, ok, 100.0, 200.0) == (30.0, True)
    assert time_to_failover(arrival, np.ones(300, dtype=bool), 100.0, 200.0) == (0.0, True)
    never = np.ones(300, dtype=bool)
    never[100:200] = False
    # Every request of the fault fails; those after it succeed again, which is no recovery: the
    # look-ahead of the fault's last 30 s used to reach them and call t = 171 a recovery.
    assert time_to_failover(arrival, never, 100.0, 200.0) == (100.0, False)
    late = np.ones(300, dtype=bool)
    late[100:180] = False  # recovers at 180, with only 20 s of the fault left to look at
    assert time_to_failover(arrival, late, 100.0, 200.0) == (100.0, False)
    in_time = np.ones(300, dtype=bool)
    in_time[100:170] = False  # recovers at 170: its 30 s look-ahead ends with the fault
    assert time_to_failover(arrival, in_time, 100.0, 200.0) == (70.0, True)
    # A fault shorter than the look-ahead: its first request looks to its end.
    assert time_to_failover(arrival, ok, 150.0, 160.0) == (0.0, True)
    assert time_to_failover(arrival, never, 150.0, 160.0) == (10.0, False)
    t, recovered = time_to_failover(arrival, ok, 400.0, 500.0)  # no traffic in the window
    assert np.isnan(t) and not recovered


def test_fault_metrics_match_the_tables(tmp_path):
    rng = np.random.default_rng(2)
    n = 2000
    pd.DataFrame({"arrival_s": np.sort(rng.uniform(0, 1000, n)), "input_tokens": 100, "output_tokens": 50}).to_csv(
        tmp_path / "trace.csv", index=False)
    windows = [(200.0, 350.0), (600.0, 700.0)]
    events = [{"kind": "outage", "model": "a", "start_s": s, "end_s": e} for s, e in windows]
    data = scenario(trace={"path": "trace.csv"}, replications=2, models={"a": model(), "b": model(ttft=(1.0, 2.0))},
                    events=events, slo={"availability": 0.99},
                    router={"timeout_s": 60, "max_attempts": 2},
                    policies={"alone": {"kind": "static", "model": "a"},
                              "fallback": {"kind": "static", "model": "a", "fallbacks": ["b"]}}, baseline="alone")
    out = run_scenario_data(tmp_path, data)
    summary = json.loads((out / "summary.json").read_text())["policies"]
    requests = read(out)
    inside = np.zeros(len(requests), dtype=bool)
    for s, e in windows:
        inside |= requests.arrival_s.between(s, e, inclusive="left").to_numpy()
    requests["inside"] = inside
    for policy, runs in requests.groupby("policy"):
        ok_in = runs[runs.inside].groupby("replication").status.apply(lambda s: (s == "ok").mean())
        failed_in = runs[runs.inside].groupby("replication").status.apply(lambda s: (s != "ok").sum())
        success = runs.groupby("replication").status.apply(lambda s: (s == "ok").mean())
        assert summary[policy]["fault_success_rate"]["mean"] == pytest.approx(ok_in.mean())
        assert summary[policy]["failed_in_faults"]["mean"] == pytest.approx(failed_in.mean())
        assert summary[policy]["error_budget_burn"]["mean"] == pytest.approx(((1 - success) / 0.01).mean())
    # Without a fallback the traffic never recovers during either window; with one it never noticed.
    assert summary["alone"]["time_to_failover_s"]["mean"] == pytest.approx(np.mean([150.0, 100.0]))
    assert summary["fallback"]["time_to_failover_s"]["mean"] == 0.0
    assert summary["alone"]["never_recovered_share"]["mean"] == 1.0
    assert summary["fallback"]["never_recovered_share"]["mean"] == 0.0
    # Served during the fault by the slower backup: extra latency is the difference of means.
    fallback = requests[(requests.policy == "fallback") & (requests.status == "ok")]
    extra = []
    for r, run in fallback.groupby("replication"):
        calm = run[~run.inside].latency_s.mean()
        extra += [run[run.arrival_s.between(s, e, inclusive="left")].latency_s.mean() - calm for s, e in windows]
    assert summary["fallback"]["extra_latency_in_faults_s"]["mean"] == pytest.approx(np.mean(extra))
    faults = pd.read_csv(out / "faults.csv")
    assert len(faults) == 2 * 2 * 2  # policies x replications x windows
    assert (faults[faults.policy == "alone"].success_rate == 0).all()


def test_defence_costs_match_the_attempts(tmp_path):
    rng = np.random.default_rng(3)
    n = 1500
    pd.DataFrame({"arrival_s": np.sort(rng.uniform(0, 300, n)), "input_tokens": 500, "output_tokens": 200}).to_csv(
        tmp_path / "trace.csv", index=False)
    models = {"slowish": model(ttft=(1.0, 6.0), rate_limit={"rpm": 200}), "b": model()}
    data = scenario(trace={"path": "trace.csv"}, replications=1, models=models,
                    router={"timeout_s": 60, "max_attempts": 3, "hedge": {"after_s": 2.5},
                            "circuit_breaker": {"size": 10, "min_calls": 5, "failure_rate": 0.5, "open_s": 5}},
                    events=[{"kind": "outage", "model": "slowish", "start_s": 100, "end_s": 150}],
                    policies={"p": {"kind": "static", "model": "slowish", "fallbacks": ["b"]}}, baseline="p")
    out = run_scenario_data(tmp_path, data)
    summary = json.loads((out / "summary.json").read_text())["policies"]["p"]
    attempts = read(out, "attempts")
    assert summary["rate_limited_share"]["mean"] == pytest.approx((attempts.outcome == "rate_limited").mean())
    assert summary["rate_limited_share"]["mean"] > 0
    cancelled_cost = attempts.cost_usd[attempts.outcome == "cancelled"].sum()
    assert summary["hedge_cost_share"]["mean"] == pytest.approx(cancelled_cost / attempts.cost_usd.sum())
    assert summary["hedge_cost_share"]["mean"] > 0
    assert summary["attempts_per_request"]["mean"] == pytest.approx(len(attempts) / n)
    # The breaker opened during the outage, for at most the outage plus one wait and a probe round.
    assert 0 < summary["breaker_open_s"]["mean"] <= 50 + 5 + 10
