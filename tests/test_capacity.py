"""Provider capacity against queueing theory, rate limits against an independent
re-simulation of the buckets, and hedging."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import read, run_scenario_data, scenario
from test_world import model


def erlang_c_wait(c: int, arrival_rate: float, mean_service: float) -> float:
    """Mean wait in queue of an M/M/c queue (Erlang C)."""
    a = arrival_rate * mean_service
    top = a ** c / math.factorial(c) * c / (c - a)
    p_wait = top / (sum(a ** k / math.factorial(k) for k in range(c)) + top)
    return p_wait / (c / mean_service - arrival_rate)


def mmc_run(folder, seed: int, n: int, rate: float, c: int):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"arrival_s": np.cumsum(rng.exponential(1 / rate, n)), "input_tokens": 10,
                          "output_tokens": np.rint(rng.exponential(1000.0, n)).astype(int)})
    frame.to_csv(folder / "trace.csv", index=False)
    # TTFT and speed fixed: service = 0.001 s + tokens / 100, exponential with mean ~10 s.
    server = model(ttft=(0.001, 0.001), tps=(100, 100), capacity={"concurrency": c}, context_window=10**7)
    data = scenario(trace={"path": "trace.csv"}, replications=1, models={"m": server}, seed=seed,
                    router={"timeout_s": 1e6, "max_attempts": 1}, policies={"p": {"kind": "static", "model": "m"}},
                    baseline="p")
    out = run_scenario_data(folder, data)
    return frame, read(out, "attempts")


def test_mean_wait_matches_erlang_c_and_littles_law(tmp_path):
    c, rate, n = 4, 0.3, 15000
    waits, littles = [], []
    for seed in range(5):  # independent traffic per replication
        folder = tmp_path / f"r{seed}"
        folder.mkdir()
        frame, attempts = mmc_run(folder, seed, n, rate, c)
        assert (attempts.outcome == "ok").all()
        queued = attempts.queued_s.to_numpy()
        waits.append(queued.mean())
        # Little's law via PASTA: the queue length an arrival sees, on average, is lambda x W.
        start = attempts.start_s.to_numpy()
        leave = start + queued
        order = np.argsort(start)
        # In the queue just before t: entered before t, not yet left before t.
        seen = (np.searchsorted(np.sort(start), start, side="left")
                - np.searchsorted(np.sort(leave), start, side="left"))
        lam = n / (frame.arrival_s.iloc[-1] - frame.arrival_s.iloc[0])
        littles.append((seen.mean(), lam * queued.mean()))
        # FIFO: among attempts that waited, service starts in arrival order.
        waited = order[queued[order] > 0]
        assert (np.diff(leave[waited]) >= -1e-9).all()
    mean_service = 0.001 + 1000.0 / 100
    expected = erlang_c_wait(c, rate, mean_service)
    lo, hi = stats.t.interval(0.95, len(waits) - 1, loc=np.mean(waits), scale=stats.sem(waits))
    assert lo <= expected <= hi, (expected, lo, hi)
    for seen, little in littles:
        assert seen == pytest.approx(little, rel=0.05)


def test_queue_timeout_gives_up_with_an_error(tmp_path):
    frame = pd.DataFrame({"arrival_s": np.arange(20) * 0.01, "input_tokens": 10, "output_tokens": 1000})
    frame.to_csv(tmp_path / "trace.csv", index=False)
    server = model(ttft=(0.001, 0.001), tps=(100, 100), capacity={"concurrency": 2, "queue_timeout_s": 5.0})
    out = run_scenario_data(tmp_path, scenario(trace={"path": "trace.csv"}, replications=1, models={"m": server},
                                               router={"timeout_s": 60, "max_attempts": 1},
                                               policies={"p": {"kind": "static", "model": "m"}}, baseline="p"))
    attempts = read(out, "attempts").sort_values("start_s")
    assert (attempts.outcome.iloc[:2] == "ok").all()
    gave_up = attempts.iloc[2:]
    assert (gave_up.outcome == "error").all() and np.allclose(gave_up.end_s - gave_up.start_s, 5.0)
    assert (gave_up.cost_usd == 0).all()


def test_rate_limits_follow_the_token_bucket(tmp_path):
    rng = np.random.default_rng(1)
    n = 3000
    frame = pd.DataFrame({"arrival_s": np.sort(rng.uniform(0, 600, n)), "input_tokens": rng.integers(100, 3000, n),
                          "output_tokens": rng.integers(10, 500, n)})
    frame.to_csv(tmp_path / "trace.csv", index=False)
    rpm, tpm = 240, 300_000
    server = model(rate_limit={"rpm": rpm, "tpm": tpm})
    out = run_scenario_data(tmp_path, scenario(trace={"path": "trace.csv"}, replications=1, models={"m": server},
                                               router={"timeout_s": 60, "max_attempts": 1},
                                               policies={"p": {"kind": "static", "model": "m"}}, baseline="p"))
    attempts = read(out, "attempts").merge(read(out)[["request_id", "input_tokens", "output_tokens"]], on="request_id")
    attempts = attempts.sort_values("start_s")
    tokens = (attempts.input_tokens + attempts.output_tokens).to_numpy()
    limited = (attempts.outcome == "rate_limited").to_numpy()
    assert 0.1 < limited.mean() < 0.9
    # An independent re-simulation of both buckets, in arrival order.
    level_r, level_t, last = float(rpm), float(tpm), 0.0
    for t, need, was_limited in zip(attempts.start_s, tokens, limited):
        level_r = min(rpm, level_r + (t - last) * rpm / 60)
        level_t = min(tpm, level_t + (t - last) * tpm / 60)
        last = t
        fits = level_r >= 1 and level_t >= need
        assert fits == (not was_limited)  # a 429 exactly when a bucket lacks what the attempt needs
        if fits:
            level_r -= 1
            level_t -= need
    # In any window, admitted tokens never exceed the burst plus the refill.
    admitted_t = attempts.start_s.to_numpy()[~limited]
    admitted_tokens = np.cumsum(np.r_[0, tokens[~limited]])
    for w in (1.0, 10.0, 60.0, 300.0):
        ends = np.searchsorted(admitted_t, admitted_t + w, side="right")
        in_window = admitted_tokens[ends] - admitted_tokens[np.arange(len(admitted_t))]
        assert (in_window <= tpm + tpm / 60 * w + 1e-6).all()
        requests_in_window = ends - np.arange(len(admitted_t))
        assert (requests_in_window <= rpm + rpm / 60 * w + 1e-9).all()


def test_a_429_is_retried_after_its_retry_after(tmp_path):
    frame = pd.DataFrame({"arrival_s": [0.0, 0.1, 0.2], "input_tokens": 10, "output_tokens": 10})
    frame.to_csv(tmp_path / "trace.csv", index=False)
    server = model(rate_limit={"rpm": 1})  # one request a minute
    out = run_scenario_data(tmp_path, scenario(trace={"path": "trace.csv"}, replications=1, models={"m": server},
                                               router={"timeout_s": 60, "max_attempts": 2,
                                                       "retry": {"on_outcomes": ["rate_limited"],
                                                                 "backoff": {"base_s": 0.1, "cap_s": 0.2}}},
                                               policies={"p": {"kind": "static", "model": "m"}}, baseline="p"))
    attempts = read(out, "attempts").sort_values(["request_id", "attempt"])
    assert list(attempts[attempts.request_id == "r000000"].outcome) == ["ok"]
    second = attempts[attempts.request_id == "r000001"]
    assert list(second.outcome) == ["rate_limited", "ok"]
    # At 0.1 s the bucket holds 0.1/60 of a request and refills 1/60 per second: retry-after
    # (1 - 0.1/60) x 60 = 59.9 s, far longer than the 0.2 s backoff, and then the retry fits.
    wait = second.start_s.iloc[1] - second.end_s.iloc[0]
    assert wait == pytest.approx(59.9, abs=1e-6)


def test_hedging_sends_the_next_candidate_and_cancels_the_loser(tmp_path):
    frame = pd.DataFrame({"arrival_s": np.arange(50) * 30.0, "input_tokens": 1000, "output_tokens": 100})
    frame.to_csv(tmp_path / "trace.csv", index=False)
    slow = model(ttft=(1.0, 1.0), tps=(10, 10), price=(1.0, 10.0))  # 11 s
    fast = model(ttft=(0.5, 0.5), tps=(100, 100), price=(2.0, 2.0))  # 1.5 s
    out = run_scenario_data(tmp_path, scenario(trace={"path": "trace.csv"}, replications=1,
                                               models={"slow": slow, "fast": fast},
                                               router={"timeout_s": 60, "max_attempts": 3, "hedge": {"after_s": 3.0}},
                                               policies={"p": {"kind": "static", "model": "slow", "fallbacks": ["fast"]}},
                                               baseline="p"))
    requests, attempts = read(out), read(out, "attempts")
    assert (requests.status == "ok").all() and (requests.model == "fast").all()
    np.testing.assert_allclose(requests.latency_s, 3.0 + 1.5)
    cancelled = attempts[attempts.outcome == "cancelled"]
    assert len(cancelled) == 50 and (cancelled.model == "slow").all()
    np.testing.assert_allclose(cancelled.end_s - cancelled.start_s, 4.5)
    # The loser is charged its input and the tokens streamed before it was cancelled: (4.5 - 1) x 10 = 35.
    np.testing.assert_allclose(cancelled.cost_usd, (1000 * 1.0 + 35 * 10.0) / 1e6)
    np.testing.assert_allclose(requests.cost_usd, (1000 * 1.0 + 35 * 10.0) / 1e6 + (1000 * 2.0 + 100 * 2.0) / 1e6)


def test_percentile_hedging_waits_for_observations(tmp_path):
    frame = pd.DataFrame({"arrival_s": np.arange(300) * 60.0, "input_tokens": 100, "output_tokens": 100})
    frame.to_csv(tmp_path / "trace.csv", index=False)
    slow = model(ttft=(1.0, 6.0), tps=(50, 20))
    fast = model(ttft=(0.5, 0.5), tps=(100, 100))
    out = run_scenario_data(tmp_path, scenario(trace={"path": "trace.csv"}, replications=1,
                                               models={"slow": slow, "fast": fast},
                                               router={"timeout_s": 60, "max_attempts": 3,
                                                       "hedge": {"after_percentile": 0.9}},
                                               policies={"p": {"kind": "static", "model": "slow", "fallbacks": ["fast"]}},
                                               baseline="p"))
    attempts = read(out, "attempts").sort_values(["request_id", "attempt"])
    hedges = attempts[attempts.attempt == 1]
    assert len(hedges) > 0
    first = attempts[attempts.attempt == 0].set_index("request_id")
    done = first[first.outcome == "ok"]
    for _, hedge in hedges.iterrows():
        primary = first.loc[hedge.request_id]
        earlier = done[done.end_s <= primary.start_s]  # requests are a minute apart: all finished before
        assert len(earlier) >= 20, "a hedge before 20 observations"
        delay = hedge.start_s - primary.start_s
        seen = earlier.end_s - earlier.start_s
        assert seen.min() - 1e-9 <= delay <= seen.max() + 1e-9
