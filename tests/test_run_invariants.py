"""The simulation core's invariants, each checked against figures computed here
from the trace with pandas/numpy, not with the simulator's own code."""

from __future__ import annotations

import numpy as np
import pandas as pd

from conftest import FAST, read, run_scenario_data, scenario


def make_trace(folder, n=400, seed=0, duration=400.0, workloads=("chat", "code")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "request_id": [f"q{i}" for i in range(n)],
        "arrival_s": np.sort(rng.uniform(0, duration, n)).round(6),
        "workload": rng.choice(list(workloads), n),
        "input_tokens": rng.integers(1, 5000, n),
        "output_tokens": rng.integers(0, 800, n),
    })
    frame.to_csv(folder / "trace.csv", index=False)
    return frame


def no_fault_models():
    """Two models that never error, never time out, never overflow."""
    models = scenario()["models"]
    for spec in models.values():
        spec["error_rate"] = 0.0
        spec["context_window"] = 10_000_000
    return models


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    data = scenario(policies={"static-big": {"kind": "static", "model": "big"},
                              "dyn": {"kind": "weighted", "weights": {"cost": 1, "quality": 1}}})
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir(), (tmp_path / "c").mkdir()
    out_a = run_scenario_data(tmp_path / "a", data)
    out_b = run_scenario_data(tmp_path / "b", data)
    out_c = run_scenario_data(tmp_path / "c", data, seed=2)
    for table in ("requests", "attempts"):
        a = (out_a / f"{table}.parquet").read_bytes()
        assert a == (out_b / f"{table}.parquet").read_bytes(), table
        assert a != (out_c / f"{table}.parquet").read_bytes(), table


def test_every_request_ends_exactly_once(tmp_path):
    trace = make_trace(tmp_path, n=300)
    data = scenario(trace={"path": "trace.csv"}, replications=3,
                    policies={"static-big": {"kind": "static", "model": "big"},
                              "manual": {"kind": "manual", "routes": {"chat": "small", "code": ["big", "small"]}},
                              "dyn": {"kind": "weighted", "weights": {"cost": 1, "latency": 1}}})
    out = run_scenario_data(tmp_path, data)
    requests = read(out)
    assert len(requests) == 3 * 3 * len(trace)
    assert not requests.duplicated(["policy", "replication", "request_id"]).any()
    for _, group in requests.groupby(["policy", "replication"]):
        assert sorted(group.request_id) == sorted(trace.request_id)
    assert set(requests.status) <= {"ok", "failed", "rejected"}
    # Attempts agree with the request rows.
    attempts = read(out, "attempts")
    counted = attempts.groupby(["policy", "replication", "request_id"]).size()
    merged = requests.set_index(["policy", "replication", "request_id"]).attempts
    assert (counted.reindex(merged.index, fill_value=0) == merged).all()


def test_without_faults_cost_is_tokens_times_price_at_arrival(tmp_path):
    trace = make_trace(tmp_path, n=500, duration=600)
    events = [{"kind": "price", "model": "big", "at_s": 200.0, "input_per_mtok": 4.0, "output_per_mtok": 16.0},
              {"kind": "price", "model": "big", "at_s": 450.0, "input_per_mtok": 1.0, "output_per_mtok": 5.0}]
    data = scenario(trace={"path": "trace.csv"}, models=no_fault_models(), events=events,
                    router={"timeout_s": 1e6, "max_attempts": 3})
    out = run_scenario_data(tmp_path, data)
    requests = read(out)
    assert (requests.status == "ok").all()
    assert (requests.attempts == 1).all()
    # Expected cost from the trace and the schedule written above.
    schedule = pd.DataFrame({"at_s": [0.0, 200.0, 450.0], "pin": [2.0, 4.0, 1.0], "pout": [8.0, 16.0, 5.0]})
    priced = pd.merge_asof(trace.sort_values("arrival_s"), schedule, left_on="arrival_s", right_on="at_s")
    expected_big = (priced.input_tokens * priced.pin + priced.output_tokens * priced.pout) / 1e6
    big = requests[requests.policy == "static-big"]
    for _, rep in big.groupby("replication"):
        got = rep.set_index("request_id").cost_usd.loc[priced.request_id].to_numpy()
        np.testing.assert_allclose(got, expected_big.to_numpy(), rtol=1e-12)
    small = requests[requests.policy == "static-small"].set_index(["replication", "request_id"]).cost_usd
    expected_small = (trace.input_tokens * 0.2 + trace.output_tokens * 0.8) / 1e6
    for r in (0, 1):
        np.testing.assert_allclose(small.loc[r].loc[trace.request_id].to_numpy(), expected_small.to_numpy(), rtol=1e-12)


def test_outage_fails_exactly_the_arrivals_inside_the_window(tmp_path):
    trace = make_trace(tmp_path, n=400, duration=400)
    t1, t2 = 100.0, 200.0
    data = scenario(trace={"path": "trace.csv"}, models=no_fault_models(),
                    events=[{"kind": "outage", "model": "big", "start_s": t1, "end_s": t2}],
                    router={"timeout_s": 1e6, "max_attempts": 3},
                    policies={"alone": {"kind": "static", "model": "big"},
                              "with-fallback": {"kind": "static", "model": "big", "fallbacks": ["small"]}},
                    baseline="alone")
    out = run_scenario_data(tmp_path, data)
    requests = read(out)
    inside = set(trace.request_id[(trace.arrival_s >= t1) & (trace.arrival_s < t2)])
    assert 0 < len(inside) < len(trace)
    for _, rep in requests[requests.policy == "alone"].groupby("replication"):
        assert set(rep.request_id[rep.status == "failed"]) == inside
        assert set(rep.request_id[rep.status == "ok"]) == set(trace.request_id) - inside
    fallback = requests[requests.policy == "with-fallback"]
    assert (fallback.status == "ok").all()
    moved = fallback[fallback.request_id.isin(inside)]
    assert (moved.model == "small").all() and (moved.attempts == 2).all()
    stayed = fallback[~fallback.request_id.isin(inside)]
    assert (stayed.model == "big").all() and (stayed.attempts == 1).all()


def test_common_random_numbers_across_policies(tmp_path):
    """Whichever policy sends request i to model m (first try on m), it sees the same draws."""
    models = no_fault_models()
    models["flaky"] = {"provider": "pc", "price": {"input_per_mtok": 0.1, "output_per_mtok": 0.1},
                       "latency": FAST, "quality": {"default": 0.0}}
    data = scenario(models=models, router={"timeout_s": 1e6, "max_attempts": 3},
                    events=[{"kind": "outage", "model": "flaky", "start_s": 0, "end_s": 1e9}],
                    policies={"big-first": {"kind": "static", "model": "big"},
                              "big-second": {"kind": "static", "model": "flaky", "fallbacks": ["big"]},
                              "by-workload": {"kind": "manual", "routes": {"chat": "big", "code": "small"}},
                              "dyn": {"kind": "weighted", "weights": {"quality": 1}}},
                    baseline="big-first")
    out = run_scenario_data(tmp_path, data)
    attempts = read(out, "attempts")
    requests = read(out).set_index(["policy", "replication", "request_id"])
    on_big = attempts[(attempts.model == "big") & (attempts.outcome == "ok")].copy()
    on_big["duration"] = on_big.end_s - on_big.start_s
    duration = on_big.set_index(["policy", "replication", "request_id"]).duration
    first, second = duration.loc["big-first"], duration.loc["big-second"]
    # big-second reaches big at overall attempt 2, but it is the request's first try on big.
    np.testing.assert_allclose(second.to_numpy(), first.loc[second.index].to_numpy(), rtol=1e-12)
    quality_first = requests.loc["big-first"].quality
    quality_second = requests.loc["big-second"].quality
    assert (quality_second == quality_first.loc[quality_second.index]).all()
    # A different policy type routing some requests to big sees the same latency and quality there.
    manual = duration.loc["by-workload"]
    assert len(manual) > 50
    np.testing.assert_allclose(manual.to_numpy(), first.loc[manual.index].to_numpy(), rtol=1e-12)
    manual_quality = requests.loc["by-workload"].quality.loc[manual.index]
    assert (manual_quality == quality_first.loc[manual.index]).all()
    # small has the same latency distribution as big but its own draws: durations differ.
    small = attempts[(attempts.policy == "by-workload") & (attempts.model == "small")].copy()
    small["duration"] = small.end_s - small.start_s
    small = small.set_index(["replication", "request_id"]).duration
    assert len(small) > 50
    big_same_requests = first.loc[small.index].to_numpy()
    assert np.mean(np.isclose(small.to_numpy(), big_same_requests, rtol=1e-9)) < 0.01
