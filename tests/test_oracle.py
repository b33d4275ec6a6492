"""The oracle: an upper bound that sees the ground truth, marked as such everywhere."""

from __future__ import annotations

import json

import pytest

from sim.policies import build

from conftest import read, run_scenario_data, scenario, write_scenario
from test_policies import request, status, view
from test_world import model

MODELS = {
    "big": model(price=(3.0, 12.0), quality=2.5, error_rate=0.02, provider="pa"),
    "mid": model(price=(1.0, 4.0), quality=1.0, error_rate=0.05, ttft=(0.8, 3.0), provider="pb",
                 context_window=1500),
    "small": model(price=(0.2, 0.8), quality=-0.5, error_rate=0.01, provider="pc", tps=(60, 20)),
}
POLICIES = {
    "static-big": {"kind": "static", "model": "big", "fallbacks": ["mid", "small"]},
    "static-small": {"kind": "static", "model": "small"},
    "weighted": {"kind": "weighted", "weights": {"cost": 0.5, "quality": 0.5}},
    "cascade": {"kind": "cascade", "judge": {"accuracy": 0.85}},
    "cost-based": {"kind": "cost-based"},
    "bandit": {"kind": "bandit", "cost_weight": 0.3},
    "oracle": {"kind": "oracle"},
}


def test_the_oracle_never_does_worse_on_quality_at_cost(tmp_path):
    # Errors, context overflows (mid), timeouts (small is slow) and a provider down for the whole run (pb's
    # partial outage): every way an attempt can go wrong that is fixed when the request arrives.
    data = scenario(replications=2, models=MODELS, policies=POLICIES, baseline="static-big",
                    router={"timeout_s": 6, "max_attempts": 3},
                    events=[{"kind": "partial_outage", "provider": "pb", "start_s": 0, "end_s": 10_000,
                             "error_rate": 0.3}])
    out = run_scenario_data(tmp_path, data)
    requests = read(out).set_index(["policy", "replication", "request_id"]).sort_index()
    oracle = requests.loc["oracle"]
    assert oracle.quality.mean() > 0.9
    for policy in POLICIES:
        if policy == "oracle":
            continue
        other = requests.loc[policy]
        # Per request: never a worse answer, and where both are acceptable never a higher cost.
        assert (oracle.quality >= other.quality).all(), policy
        both = (oracle.quality == 1) & (other.quality == 1)
        assert (oracle.cost_usd[both] <= other.cost_usd[both] + 1e-12).all(), policy
        # So in total: at least the quality, for no more than the policy paid for the answers it got right.
        assert oracle.quality.mean() >= other.quality.mean()
        assert oracle.cost_usd[other.quality == 1].sum() <= other.cost_usd[other.quality == 1].sum() + 1e-9
    summary = json.loads((out / "summary.json").read_text())
    assert summary["upper_bounds"] == ["oracle"]
    report = (out / "report.md").read_text()
    assert "oracle (upper bound" in report


def test_the_oracle_cannot_route_real_traffic():
    with pytest.raises(RuntimeError, match="ground truth"):
        build("oracle", {}).route(request(), view(status("a", 1, 1)))


def test_the_oracle_ranks_acceptable_then_answering_then_the_rest_by_cost():
    from sim.policies.oracle import TrueOutcome

    policy = build("oracle", {})
    truth = {"a": TrueOutcome(True, False, 0.1), "b": TrueOutcome(True, True, 0.5), "c": TrueOutcome(True, True, 0.3),
             "d": TrueOutcome(False, True, 0.01)}
    policy.bind_ground_truth(lambda r: truth)
    v = view(*(status(n, 1, 1) for n in "abcd"))
    assert policy.route(request(), v).candidates == ("c", "b", "a", "d")


def test_an_upper_bound_cannot_be_the_baseline(tmp_path, cli):
    policies = {"oracle": {"kind": "oracle"}, "static": {"kind": "static", "model": "big"}}
    result = cli("validate", write_scenario(tmp_path, scenario(policies=policies, baseline="oracle")))
    assert result.exit_code == 2 and "baseline" in result.output and "upper bound" in result.output
    # Without a baseline named, the first policy that is not an upper bound is the baseline.
    from sim.scenario.load import load_scenario

    loaded = load_scenario(write_scenario(tmp_path, scenario(policies=policies, baseline=None)))
    assert loaded.scenario.baseline_policy == "static"
