"""Router defences end to end: retries and backoff, deadlines, breakers during
an outage, cooldowns, context-window fallbacks, retry budgets, bad config."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from sim.core.defences import backoff_s
from sim.scenario.schema.routing import BackoffSpec

from conftest import read, write_scenario, scenario
from test_world import model, one_model_run, trace_file


# --------------------------------------------------------------------------- backoff formulas
@given(base=st.floats(0.01, 5), factor=st.floats(1, 100), n=st.integers(0, 12), u=st.floats(0, 0.999999),
       previous_factor=st.one_of(st.none(), st.floats(1, 100)))
def test_backoff_stays_inside_each_formula_bounds(base, factor, n, u, previous_factor):
    cap = base * factor
    # A previous decorrelated wait is never below base_s (each is min(cap, >= base)).
    previous = None if previous_factor is None else min(cap, base * previous_factor)
    ceiling = min(cap, base * 2 ** n)
    for jitter, (lo, hi) in {"none": (ceiling, ceiling), "full": (0, ceiling), "equal": (ceiling / 2, ceiling)}.items():
        wait = backoff_s(BackoffSpec(base_s=base, cap_s=cap, jitter=jitter), n, u, previous)
        assert lo - 1e-12 <= wait <= hi + 1e-12
    wait = backoff_s(BackoffSpec(base_s=base, cap_s=cap, jitter="decorrelated"), n, u, previous)
    upper = max(base, 3 * (base if previous is None else previous))
    assert min(base, cap) - 1e-12 <= wait <= min(cap, upper) + 1e-12


def retry_run(tmp_path, jitter="full", per_model=2, max_attempts=5, n=400, **router):
    trace_file(tmp_path, n, output_tokens=10, gap=100.0)
    models = {"broken": model(error_rate=1.0), "backup": model()}
    return one_model_run(tmp_path, None, models=models, policies={"p": {"kind": "static", "model": "broken", "fallbacks": ["backup"]}},
                         router={"timeout_s": 60, "max_attempts": max_attempts,
                                 "retry": {"per_model": per_model, "backoff": {"base_s": 0.5, "cap_s": 4.0, "jitter": jitter}},
                                 **router})


def waits(attempts: pd.DataFrame) -> pd.DataFrame:
    a = attempts.sort_values(["request_id", "attempt"]).copy()
    a["wait"] = a.start_s - a.groupby("request_id").end_s.shift()
    a["retry_number"] = a.groupby("request_id").cumcount() - 1
    return a.dropna(subset=["wait"])


def test_retries_the_same_model_then_falls_back(tmp_path):
    out = retry_run(tmp_path)
    attempts = read(out, "attempts")
    per_request = attempts.sort_values("attempt").groupby("request_id").model.apply(list)
    assert (per_request.apply(lambda models: models == ["broken"] * 3 + ["backup"])).all()
    assert (read(out).status == "ok").all()
    w = waits(attempts)
    retry = w[w.model == "broken"]
    ceiling = np.minimum(4.0, 0.5 * 2.0 ** retry.retry_number)
    assert ((retry.wait >= 0) & (retry.wait <= ceiling + 1e-9)).all()
    assert (w[w.model == "backup"].wait.abs() < 1e-9).all()  # a fallback does not wait


def test_full_jitter_is_uniform_under_its_ceiling(tmp_path):
    out = retry_run(tmp_path, per_model=1, max_attempts=2, n=3000)
    w = waits(read(out, "attempts"))
    scaled = (w.wait / 0.5).to_numpy()  # first retry: ceiling = base_s
    assert len(scaled) == 3000
    assert stats.kstest(scaled, "uniform").pvalue > 0.001


def test_retries_only_listed_outcomes(tmp_path):
    trace_file(tmp_path, 50, output_tokens=10, gap=100.0)
    out = one_model_run(tmp_path, None, models={"broken": model(error_rate=1.0), "backup": model()},
                        policies={"p": {"kind": "static", "model": "broken", "fallbacks": ["backup"]}},
                        router={"timeout_s": 60, "max_attempts": 5, "retry": {"on_outcomes": ["timeout"]}})
    attempts = read(out, "attempts")
    assert (attempts.groupby("request_id").size() == 2).all()  # errors are not retried: straight to backup


def test_no_request_outlives_its_deadline(tmp_path):
    trace_file(tmp_path, 300, output_tokens=400, gap=5.0)
    slow = model(ttft=(2.0, 8.0), tps=(20, 5))  # answers of ~20 s, some far longer
    out = one_model_run(tmp_path, None, models={"a": slow, "b": slow},
                        policies={"p": {"kind": "static", "model": "a", "fallbacks": ["b"]}},
                        router={"timeout_s": 25, "deadline_s": 40, "max_attempts": 4,
                                "retry": {"per_model": 1, "backoff": {"base_s": 1, "cap_s": 2}}})
    requests, attempts = read(out), read(out, "attempts")
    assert (requests.latency_s <= 40 + 1e-9).all()
    assert requests.attempts.max() <= 4
    assert ((attempts.end_s - attempts.start_s) <= 25 + 1e-9).all()
    # An attempt started late gets only what is left of the deadline.
    merged = attempts.merge(requests[["request_id", "arrival_s"]], on="request_id")
    assert ((merged.end_s - merged.arrival_s) <= 40 + 1e-9).all()
    assert (requests.status == "failed").any() and (requests.status == "ok").any()


def test_during_an_outage_a_breaker_sends_only_probes(tmp_path):
    trace_file(tmp_path, 1200, output_tokens=10, gap=0.5)  # 600 s, 2 req/s
    breaker = {"window": "count", "size": 10, "min_calls": 5, "failure_rate": 0.5, "open_s": 30, "half_open_calls": 2}
    models = {"primary": model(), "backup": model()}
    outage = [{"kind": "outage", "model": "primary", "start_s": 100, "end_s": 400}]
    policies = {"p": {"kind": "static", "model": "primary", "fallbacks": ["backup"]}}
    with_breaker = read(one_model_run(tmp_path, None, models=models, events=outage, policies=policies,
                                      router={"timeout_s": 60, "max_attempts": 3, "circuit_breaker": breaker}), "attempts")
    to_primary = with_breaker[(with_breaker.model == "primary") & with_breaker.start_s.between(100, 400, inclusive="left")]
    # 5 failures open it; then every 30 s exactly 2 probes (which fail and reopen it).
    probe_rounds = math.ceil((300 - 5 * 0.5) / 30)
    assert 5 <= len(to_primary) <= 5 + 2 * probe_rounds
    starts = to_primary.start_s.to_numpy()[5:]
    rounds = np.split(starts, np.flatnonzero(np.diff(starts) > 1.0) + 1)
    assert all(len(r) == 2 for r in rounds[:-1]) and len(rounds[-1]) <= 2
    assert all(b[0] - a[0] >= 30 - 1e-9 for a, b in zip(rounds, rounds[1:]))
    requests = read(tmp_path / "out")
    assert (requests.status == "ok").all()
    # After the outage the probes succeed and traffic returns to the primary.
    late = requests[requests.arrival_s > 460]
    assert (late.model == "primary").all()


def test_cooldown_takes_a_model_out_of_rotation(tmp_path):
    trace_file(tmp_path, 600, output_tokens=10, gap=0.5)
    out = one_model_run(tmp_path, None, models={"primary": model(), "backup": model()},
                        events=[{"kind": "outage", "model": "primary", "start_s": 60, "end_s": 120}],
                        policies={"p": {"kind": "static", "model": "primary", "fallbacks": ["backup"]}},
                        router={"timeout_s": 60, "max_attempts": 3, "cooldown": {"allowed_fails": 3, "cooldown_s": 20}})
    attempts = read(out, "attempts")
    failed = attempts[(attempts.model == "primary") & (attempts.outcome == "error")].start_s.to_numpy()
    # LiteLLM's count of failures lives 20 s from its first failure: 4 failures (more than 3)
    # cool the model for 20 s, after which the count has expired and it takes 4 again.
    expected, t, cooled_until = [], 60.0, 0.0
    while t < 120:
        if t >= cooled_until:
            expected.append(t)
            if len(expected) % 4 == 0:
                cooled_until = t + 0.1 + 20  # from the failure's end: an outage fails after fail_fast_s
        t += 0.5
    assert np.allclose(failed, expected, atol=0.2)


def test_context_window_fallbacks_come_first(tmp_path):
    trace_file(tmp_path, 10, output_tokens=100, input_tokens=np.r_[np.full(5, 1000), np.full(5, 9000)])
    models = {"small-ctx": model(context_window=4000), "cheap": model(context_window=4000), "long-ctx": model()}
    out = one_model_run(tmp_path, None, models=models,
                        policies={"p": {"kind": "static", "model": "small-ctx", "fallbacks": ["cheap", "long-ctx"]}},
                        router={"timeout_s": 60, "max_attempts": 2, "context_window_fallbacks": {"small-ctx": ["long-ctx"]}})
    requests = read(out)
    assert (requests.status == "ok").all()
    assert list(requests.model) == ["small-ctx"] * 5 + ["long-ctx"] * 5
    assert (requests.attempts[5:] == 2).all()  # 'cheap' would have overflowed too and used the second attempt


def test_retry_budget_caps_retries_in_progress(tmp_path):
    trace_file(tmp_path, 2000, output_tokens=10, gap=0.05)  # 20 req/s
    router = {"timeout_s": 60, "max_attempts": 4, "retry": {"per_model": 3, "backoff": {"base_s": 1, "cap_s": 4},
                                                             "budget": 0.2, "min_retry_concurrency": 2}}
    out = one_model_run(tmp_path, None, models={"flaky": model(error_rate=0.6), "backup": model()},
                        policies={"p": {"kind": "static", "model": "flaky", "fallbacks": ["backup"]}}, router=router)
    requests, attempts = read(out), read(out, "attempts").sort_values(["request_id", "attempt"])
    attempts["previous_model"] = attempts.groupby("request_id").model.shift()
    attempts["previous_end"] = attempts.groupby("request_id").end_s.shift()
    retries = attempts[attempts.model == attempts.previous_model]
    assert len(retries) > 0
    starts, ends = retries.previous_end.to_numpy(), retries.end_s.to_numpy()  # a retry holds budget from the failure
    begin, finish = requests.arrival_s.to_numpy(), (requests.arrival_s + requests.latency_s).to_numpy()
    for t in starts:
        in_progress = np.sum((starts < t) & (ends > t))
        active = np.sum((begin <= t) & (finish > t))
        assert in_progress < max(2, 0.2 * active) + 1e-9
    # Without a budget, more retries are made.
    del router["retry"]["budget"]
    (tmp_path / "free").mkdir()
    (tmp_path / "free" / "trace.csv").write_text((tmp_path / "trace.csv").read_text())
    free = read(one_model_run(tmp_path / "free", None, models={"flaky": model(error_rate=0.6), "backup": model()},
                              policies={"p": {"kind": "static", "model": "flaky", "fallbacks": ["backup"]}},
                              router=router), "attempts")
    assert len(free) > len(attempts)


@pytest.mark.parametrize("router, expected", [
    ({"retry": {"backoff": {"base_s": 4, "cap_s": 1}}}, "router.retry.backoff: cap_s (1) must be >= base_s (4)"),
    ({"retry": {"backoff": {"base_s": -1}}}, "router.retry.backoff.base_s: must be > 0"),
    ({"retry": {"budget": 0}}, "router.retry.budget: must be > 0"),
    ({"retry": {"on_outcomes": ["context_overflow"]}}, "router.retry.on_outcomes[0]: must be one of"),
    ({"circuit_breaker": {"failure_rate": 1.5}}, "router.circuit_breaker.failure_rate: must be <= 1"),
    ({"circuit_breaker": {"failure_rate": 0}}, "router.circuit_breaker.failure_rate: must be > 0"),
    ({"circuit_breaker": {"open_s": -5}}, "router.circuit_breaker.open_s: must be > 0"),
    ({"circuit_breaker": {"size": 5, "min_calls": 10}}, "min_calls (10) can never be reached"),
    ({"cooldown": {"cooldown_s": 0}}, "router.cooldown.cooldown_s: must be > 0"),
    ({"deadline_s": -1}, "router.deadline_s: must be > 0"),
    ({"context_window_fallbacks": {"big": ["ghost"]}}, "router.context_window_fallbacks.big[0]: unknown model 'ghost'"),
])
def test_bad_router_config_is_named(cli, tmp_path, router, expected):
    data = scenario(router={"timeout_s": 60, **router})
    result = cli("validate", write_scenario(tmp_path, data))
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output


def test_a_policys_router_override_is_checked_too(cli, tmp_path):
    data = scenario(policies={"static-big": {"kind": "static", "model": "big",
                                             "router": {"default_model": "ghost", "retry": {"per_model": 0}}}})
    result = cli("validate", write_scenario(tmp_path, data))
    assert result.exit_code == 2
    assert "policies.static-big.router.retry.per_model: must be >= 1" in result.output
    data = scenario(policies={"static-big": {"kind": "static", "model": "big", "router": {"default_model": "ghost"}}})
    result = cli("validate", write_scenario(tmp_path, data))
    assert result.exit_code == 2 and "policies.static-big.router.default_model: unknown model 'ghost'" in result.output
