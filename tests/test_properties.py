"""Router invariants over random scenarios (hypothesis): whatever the faults,
error rates, timeouts and attempt limits, every request ends once, attempts stay
within limits, and records agree with each other."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import read, run_scenario_data, scenario

models_st = st.lists(
    st.fixed_dictionaries({
        "ttft": st.floats(0.05, 5.0), "spread": st.floats(1.0, 4.0), "tps": st.floats(5.0, 200.0),
        "error_rate": st.sampled_from([0.0, 0.05, 0.5, 1.0]), "context": st.sampled_from([2000, 8000, 1_000_000]),
        "price_in": st.floats(0.0, 20.0), "price_out": st.floats(0.0, 60.0),
        # Provider-side limits: a rate limit (429s with retry-after) and a capacity queue.
        "rpm": st.sampled_from([None, None, 20, 60]), "concurrency": st.sampled_from([None, None, 1, 3]),
        "queue_timeout_s": st.sampled_from([None, 2.0]),
    }), min_size=1, max_size=4)


defences_st = st.fixed_dictionaries({}, optional={
    "deadline_s": st.floats(1.0, 60.0),
    "retry": st.fixed_dictionaries({"per_model": st.integers(1, 3), "backoff": st.fixed_dictionaries(
        {"base_s": st.just(0.2), "cap_s": st.just(2.0), "jitter": st.sampled_from(["none", "full", "equal", "decorrelated"])}),
        "budget": st.sampled_from([None, 0.2])}),
    "circuit_breaker": st.fixed_dictionaries({"size": st.just(10), "min_calls": st.integers(1, 10), "open_s": st.just(20.0)}),
    "cooldown": st.fixed_dictionaries({"allowed_fails": st.integers(0, 3), "cooldown_s": st.just(10.0)}),
    "hedge": st.fixed_dictionaries({"after_s": st.sampled_from([0.3, 1.5]), "max_hedges": st.integers(1, 2)}),
})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(models=models_st, max_attempts=st.integers(1, 4), timeout=st.floats(0.5, 30.0),
       outage=st.tuples(st.floats(0, 200), st.floats(1, 200)), seed=st.integers(0, 2**32 - 1), defences=defences_st)
def test_invariants_hold_for_random_scenarios(tmp_path_factory, models, max_attempts, timeout, outage, seed, defences):
    folder = tmp_path_factory.mktemp("prop")
    names = [f"m{i}" for i in range(len(models))]
    spec = {name: {"provider": f"p{i % 2}",
                   "price": {"input_per_mtok": m["price_in"], "output_per_mtok": m["price_out"]},
                   "latency": {"ttft_s": {"median": m["ttft"], "p95": m["ttft"] * m["spread"]},
                               "tokens_per_s": {"median": m["tps"], "p5": m["tps"] / m["spread"]}},
                   "quality": {"default": 1.0}, "error_rate": m["error_rate"], "context_window": m["context"],
                   **({"rate_limit": {"rpm": m["rpm"]}} if m["rpm"] else {}),
                   **({"capacity": {"concurrency": m["concurrency"], "queue_timeout_s": m["queue_timeout_s"]}}
                      if m["concurrency"] else {})}
            for i, (name, m) in enumerate(zip(names, models))}
    limited = any(m["rpm"] for m in models)  # a retry may wait for a 429's retry-after, up to a minute
    start, length = outage
    data = scenario(seed=seed, replications=1, models=spec,
                    trace={"synthetic": {"duration_s": 300, "rate_per_s": 1,
                                         "input_tokens": {"median": 1000, "p95": 6000},
                                         "output_tokens": {"median": 100, "p95": 800}}},
                    events=[{"kind": "outage", "provider": "p0", "start_s": start, "end_s": start + length}],
                    router={"timeout_s": timeout, "max_attempts": max_attempts, **defences},
                    policies={"static": {"kind": "static", "model": names[0], "fallbacks": names[1:]},
                              "dyn": {"kind": "weighted", "weights": {"cost": 1, "latency": 1}}},
                    baseline="static")
    out = run_scenario_data(folder, data, report=False)  # the tables are under test here, not the figures
    requests, attempts = read(out), read(out, "attempts")
    # --hypothesis-show-statistics: the defences and limits below are really exercised.
    for label, seen in (("hedged", (attempts.outcome == "cancelled").any()),
                        ("429s", (attempts.outcome == "rate_limited").any()), ("queued", (attempts.queued_s > 0).any())):
        event(f"{label}: {bool(seen)}")
    n = requests.groupby("policy").size()
    assert n.nunique() == 1  # both policies saw the same trace
    assert not requests.duplicated(["policy", "replication", "request_id"]).any()
    retries = "retry" in defences
    assert requests.attempts.between(0, max_attempts if retries else min(max_attempts, len(names))).all()
    if "deadline_s" in defences:
        assert (requests.latency_s <= defences["deadline_s"] + 1e-9).all()
    ok = requests.status == "ok"
    assert (requests.model[ok] != "").all() and (requests.model[~ok] == "").all()
    assert (requests.quality[~ok] == 0).all() and requests.quality.isin([0.0, 1.0]).all()
    assert (requests.latency_s >= 0).all() and (requests.cost_usd >= 0).all()
    # Every attempt lasts at most the per-attempt timeout; attempts of a request follow each other.
    assert ((attempts.end_s - attempts.start_s) <= timeout + 1e-9).all()
    per_request = attempts.sort_values(["policy", "request_id", "attempt"]).groupby(["policy", "request_id"])
    gaps = (per_request.start_s.shift(-1) - attempts.sort_values(["policy", "request_id", "attempt"]).end_s).dropna()
    hedged = "hedge" in defences  # a hedge starts while the attempt before it still runs
    wait = 60.0 if limited and retries else 2.0  # at most one backoff (cap 2 s), or a retry-after
    if not hedged:
        assert (gaps >= -1e-9).all() and (gaps <= wait + 1e-9).all()
        if not retries:
            assert (gaps.abs() < 1e-9).all()
    else:  # each hedge starts its delay after an attempt that was still running then
        starts = per_request.start_s.diff().dropna()
        assert (starts >= -1e-9).all()
    # Costs and attempt counts add up; a request ends with its last attempt.
    keyed = requests.set_index(["policy", "request_id"])
    np.testing.assert_allclose(per_request.cost_usd.sum().reindex(keyed.index, fill_value=0), keyed.cost_usd, rtol=1e-9, atol=1e-15)
    assert (per_request.size().reindex(keyed.index, fill_value=0) == keyed.attempts).all()
    last_end = per_request.end_s.max().reindex(keyed.index)
    served = keyed.attempts > 0
    # A request ends with its last attempt, or, when a retry was refused after its backoff
    # (breaker or cooldown) and nothing was left to try, one backoff (cap 2 s) later.
    after_last = (keyed.latency_s - (last_end - keyed.arrival_s))[served]
    assert (after_last >= -1e-9).all() and (after_last <= wait + 1e-9).all()
    if not retries:
        assert (after_last.abs() < 1e-9).all()
    # Only the last attempt of an ok request succeeded; no model is tried twice for one request.
    assert (attempts.outcome == "ok").sum() == ok.sum()
    if not retries:
        assert not attempts.duplicated(["policy", "request_id", "model"]).any()
    # Nothing sent to a model of provider p0 during its outage succeeded: it failed fast, or
    # the router stopped waiting first (the deadline left less than the fail-fast time).
    p0 = [name for i, name in enumerate(names) if i % 2 == 0]
    inside = attempts.model.isin(p0) & (attempts.start_s >= start) & (attempts.start_s < start + length)
    assert attempts.outcome[inside].isin(["error", "timeout", "cancelled"]).all()
    # A model without a rate limit never answers 429; one with a capacity queue never serves more at once.
    unlimited = [name for name, m in zip(names, models) if not m["rpm"]]
    assert not (attempts.model.isin(unlimited) & (attempts.outcome == "rate_limited")).any()
    for name, m in zip(names, models):
        if m["concurrency"]:
            mine = attempts[(attempts.model == name) & (attempts.outcome == "ok")]
            # Rounded to the nanosecond: start + queued_s is the serving start up to float rounding, and a
            # slot freed at t serves the next attempt from t (ends sort before starts at one instant).
            served_from = (mine.start_s + mine.queued_s).round(9)
            for policy in mine.policy.unique():
                rows = mine.policy == policy
                edges = sorted([(t, 1) for t in served_from[rows]] + [(t, -1) for t in mine.end_s[rows].round(9)],
                               key=lambda e: (e[0], e[1]))
                assert max(np.cumsum([d for _, d in edges]), default=0) <= m["concurrency"], (name, policy)
