"""The routing strategies people run today: each one's defining behaviour."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sim.policies import Outcome, build

from conftest import read, run_scenario_data, scenario
from test_policies import request, status, view


def shares(policy, v, n=20000):
    firsts = [policy.route(request(), v).candidates[0] for _ in range(n)]
    names, counts = np.unique(firsts, return_counts=True)
    return dict(zip(names, counts / n))


def within_sampling_error(share, p, n=20000):
    return abs(share - p) < 4 * math.sqrt(p * (1 - p) / n)


def test_simple_shuffle_follows_its_weights():
    v = view(status("a", 1, 1), status("b", 1, 1))
    got = shares(build("simple-shuffle", {"weights": {"a": 3, "b": 1}}, seed=1), v)
    assert within_sampling_error(got["a"], 0.75)


def test_simple_shuffle_in_a_run_sends_three_quarters_to_the_first(tmp_path):
    data = scenario(replications=1, policies={"s": {"kind": "simple-shuffle", "weights": {"big": 3, "small": 1}}},
                    baseline="s")
    requests = read(run_scenario_data(tmp_path, data))
    first = read(tmp_path / "out", "decisions").candidates.str.split(">").str[0]
    assert within_sampling_error((first == "big").mean(), 0.75, len(requests))


def test_openrouter_picks_with_inverse_square_price():
    v = view(status("p1", 1.0, 1.0), status("p2", 2.0, 2.0), status("p3", 3.0, 3.0))
    got = shares(build("openrouter", {}, seed=2), v)
    total = 1 + 1 / 4 + 1 / 9
    for name, price in (("p1", 1), ("p2", 2), ("p3", 3)):
        assert within_sampling_error(got[name], (1 / price ** 2) / total), (name, got)
    assert got["p1"] == pytest.approx(0.735, abs=0.015)


def test_openrouter_puts_recent_outages_last_and_honours_sort_and_max_price():
    v = view(status("p1", 1.0, 1.0, last_failure_s=-10.0), status("p2", 2.0, 2.0), status("p3", 3.0, 3.0, ttft=0.1))
    policy = build("openrouter", {}, seed=3)
    assert all(policy.route(request(), v).candidates[-1] == "p1" for _ in range(200))  # failed 10 s ago
    assert build("openrouter", {"sort": "price"}).route(request(), v).candidates == ("p2", "p3", "p1")
    assert build("openrouter", {"sort": "latency"}).route(request(), v).candidates[0] == "p3"
    capped = build("openrouter", {"sort": "price", "max_price": {"input_per_mtok": 2.5}}).route(request(), v)
    assert capped.candidates == ("p2", "p1")


def test_least_busy_picks_the_fewest_in_flight():
    v = view(status("a", 1, 1, in_flight=5), status("b", 1, 1, in_flight=2), status("c", 1, 1, in_flight=9))
    assert build("least-busy", {}).route(request(), v).candidates == ("b", "a", "c")


def test_cost_based_picks_the_cheapest_estimate():
    v = view(status("pricey", 10, 30), status("cheap", 0.1, 0.4), status("mid", 1, 4))
    assert build("cost-based", {}).route(request(), v).candidates == ("cheap", "mid", "pricey")


def test_usage_based_balances_tokens_and_skips_models_over_their_limit():
    v = view(status("a", 1, 1), status("b", 1, 1))
    policy = build("usage-based", {"limits": {"a": {"tpm": 5000}}, "output_tokens_prior": 100})
    firsts = [policy.route(request(input_tokens=900), v).candidates[0] for _ in range(6)]
    # Each request needs 1000 tokens: they alternate by usage until a's 5,000 TPM are spent.
    assert firsts == ["a", "b", "a", "b", "a", "b"]
    firsts = [policy.route(request(input_tokens=900), v).candidates[0] for _ in range(4)]
    assert firsts.count("a") == 2 and firsts[-1] == "b"  # a reached 5,000: only b from then on
    assert policy.route(request(input_tokens=900), v).candidates == ("b", "a")


def test_latency_based_prefers_the_fastest_per_token_and_penalises_failures():
    v = view(status("a", 1, 1), status("b", 1, 1))
    policy = build("latency-based", {})
    for model, latency in (("a", 10.0), ("b", 2.0)):
        policy.observe(request(), Outcome("r", "ok", model, 1, latency, 0.1, 0.0, 100, 100))
    assert policy.route(request(), v).candidates == ("b", "a")
    failing = view(status("a", 1, 1), status("b", 1, 1, error_rate_ewma=0.5))
    assert policy.route(request(), failing).candidates == ("a", "b")


def test_cheapest_above_floor():
    v = view(status("strong", 10, 30, ability=4.0), status("mid", 1, 4, ability=2.5), status("weak", 0.1, 0.4, ability=0.5))
    policy = build("cheapest-above-floor", {"floor": 0.9})
    # sigmoid(2.5) = 0.924 >= 0.9: mid is the cheapest that qualifies; weak (0.62) comes last.
    assert policy.route(request(), v).candidates == ("mid", "strong", "weak")
    # A hard request (estimate 1.5): only strong qualifies (0.924); mid 0.73 before weak 0.27.
    assert policy.route(request(estimate=1.5), v).candidates == ("strong", "mid", "weak")
    assert build("cheapest-above-floor", {"floor": 0.99}).route(request(), v).candidates[0] == "strong"


# (policy, the model it prefers, the fewest first attempts it sends into that model's outage): a
# health-aware policy stops after the router marks the model unhealthy, then probes after the cooldown;
# latency-based is penalised off it after one failure; cheapest-above-floor does not look at health.
@pytest.mark.parametrize("kind, downed, at_least", [
    ("simple-shuffle", "big", 3), ("least-busy", "big", 3), ("usage-based", "big", 3), ("latency-based", "big", 1),
    ("cost-based", "small", 3), ("openrouter", "small", 3), ("cheapest-above-floor", "big", 100),
    ("cascade", "small", 3)])
def test_each_strategy_falls_back_during_an_outage_of_the_model_it_prefers(tmp_path, kind, downed, at_least):
    data = scenario(replications=1, policies={"p": {"kind": kind}}, baseline="p",
                    events=[{"kind": "outage", "model": downed, "start_s": 100, "end_s": 300}],
                    router={"timeout_s": 60, "max_attempts": 2})
    if kind == "latency-based":  # give it a reason to prefer big: half small's time to first token
        data["models"]["big"]["latency"] = {**data["models"]["big"]["latency"], "ttft_s": {"median": 0.25, "p95": 0.5}}
    out = run_scenario_data(tmp_path, data, report=False)
    requests, attempts = read(out), read(out, "attempts")
    first = attempts[attempts.attempt == 0].merge(requests[["request_id", "arrival_s", "status", "model"]],
                                                  on="request_id", suffixes=("", "_served"))
    # Requests whose first attempt met the outage: each failed fast and was answered by the other model.
    hit = first[(first.model == downed) & (first.start_s >= 100) & (first.start_s < 300)]
    assert len(hit) >= at_least, f"{kind} sent only {len(hit)} first attempts to {downed} during its outage"
    assert (hit.outcome == "error").all()
    assert (hit.status == "ok").all() and (hit.model_served != downed).all()
    assert (requests.status == "ok").mean() > 0.97


def test_a_price_drop_shifts_weighted_traffic_but_not_static(tmp_path):
    from test_world import model

    models = {"incumbent": model(price=(1.0, 4.0), quality=2.0), "challenger": model(price=(2.0, 8.0), quality=2.0)}
    data = scenario(replications=1, models=models,
                    trace={"synthetic": {"duration_s": 1200, "rate_per_s": 2}},
                    events=[{"kind": "price", "model": "challenger", "at_s": 600, "input_per_mtok": 0.5,
                             "output_per_mtok": 2.0}],
                    policies={"weighted": {"kind": "weighted", "weights": {"cost": 0.8, "quality": 0.2}},
                              "bandit": {"kind": "bandit", "cost_weight": 0.5,
                                         "knowledge": {"feedback": {"judge": {"share": 1.0, "accuracy": 0.9}}}},
                              "static": {"kind": "static", "model": "incumbent"}}, baseline="static")
    requests = read(run_scenario_data(tmp_path, data))
    before = requests.arrival_s < 600
    shares = {}
    for policy, runs in requests.groupby("policy"):
        shares[policy] = ((runs.model[before[runs.index]] == "challenger").mean(),
                          (runs.model[~before[runs.index]] == "challenger").mean())
    assert shares["weighted"] == pytest.approx((0.0, 1.0), abs=0.02)
    assert shares["static"] == (0.0, 0.0)
    assert shares["bandit"][0] < 0.2 and shares["bandit"][1] > 0.8  # explores a little, then follows the price


def test_a_launched_model_gets_traffic_only_after_its_launch(tmp_path):
    from test_world import model

    models = {"old": model(price=(1.0, 4.0), quality=2.0), "new": model(price=(0.2, 0.8), quality=2.0)}
    data = scenario(replications=1, models=models, trace={"synthetic": {"duration_s": 900, "rate_per_s": 2}},
                    events=[{"kind": "launch", "model": "new", "at_s": 300}],
                    policies={"weighted": {"kind": "weighted", "weights": {"cost": 1}},
                              "bandit": {"kind": "bandit", "cost_weight": 0.5},
                              "static-new": {"kind": "static", "model": "new", "fallbacks": ["old"]}},
                    baseline="weighted")
    out = run_scenario_data(tmp_path, data)
    attempts, requests = read(out, "attempts"), read(out)
    assert (attempts.start_s[attempts.model == "new"] >= 300).all()
    after = requests[(requests.policy == "weighted") & (requests.arrival_s >= 300)]
    assert (after.model == "new").mean() > 0.98  # cheaper, and now visible
    bandit = requests[requests.policy == "bandit"]
    assert (bandit.model[bandit.arrival_s < 300] == "old").all()
    assert (bandit.model[bandit.arrival_s >= 600] == "new").mean() > 0.8  # it found the cheaper newcomer
    before = requests[(requests.policy == "static-new") & (requests.arrival_s < 300)]
    assert (before.model == "old").all() and (before.attempts == 1).all()  # skipped without an attempt
    decisions = read(out, "decisions").merge(requests[["policy", "request_id", "arrival_s"]], on=["policy", "request_id"])
    early = decisions[(decisions.policy == "weighted") & (decisions.arrival_s < 300)]
    assert not early.candidates.str.contains("new").any()  # policies could not see it yet



def test_bandit_learns_which_model_answers_well(tmp_path):
    from test_world import model

    # Same price; 'good' answers acceptably far more often. The bandit only sees a judge's verdicts (95% right).
    models = {"good": model(price=(1.0, 1.0), quality=3.0), "poor": model(price=(1.0, 1.0), quality=-1.0)}
    for algorithm in ("thompson", "ucb"):
        folder = tmp_path / algorithm
        folder.mkdir()
        data = scenario(replications=1, models=models, trace={"synthetic": {"duration_s": 1000, "rate_per_s": 1}},
                        workloads={"default": {"difficulty": {"mean": 0, "sd": 0.5}}},
                        policies={"b": {"kind": "bandit", "algorithm": algorithm, "cost_weight": 0}}, baseline="b",
                        router_knowledge={"feedback": {"judge": {"share": 1.0, "accuracy": 0.95, "delay_s": 0}}})
        requests = read(run_scenario_data(folder, data))
        late = requests[requests.arrival_s > 500]
        assert (late.model == "good").mean() > 0.9, algorithm
        early = requests[requests.arrival_s < 100]
        assert (early.model == "poor").any(), algorithm  # it had to explore to learn



def test_threshold_sends_the_target_share_of_hard_requests_to_the_strong_model(tmp_path):
    rng = np.random.default_rng(4)
    n = 4000
    difficulty = rng.normal(0, 1, n)
    pd.DataFrame({"arrival_s": np.arange(n) * 0.5, "input_tokens": 100, "output_tokens": 20,
                  "difficulty": difficulty}).to_csv(tmp_path / "trace.csv", index=False)
    data = scenario(trace={"path": "trace.csv"}, replications=1, router_knowledge={"difficulty_noise_sd": 0.3},
                    policies={"t": {"kind": "threshold", "strong": "big", "weak": "small", "strong_share": 0.3}},
                    baseline="t")
    requests = read(run_scenario_data(tmp_path, data))
    strong = (requests.model == "big").to_numpy()
    settled = slice(500, None)  # after calibration
    assert abs(strong[settled].mean() - 0.3) < 0.03  # calibrated on a moving window of estimates
    # The strong calls are the hard ones: their true difficulty is far higher on average.
    assert difficulty[strong].mean() - difficulty[~strong].mean() > 1.0
