"""The FrugalGPT cascade: stages in cost order, a judge of configurable accuracy,
every stage's cost and latency counted. Expected values come from the static
runs of the same replication: with common random numbers, a stage of the
cascade gets exactly the answer the static policy on that model got."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.policies import Judge, build

from conftest import read, run_scenario_data, scenario
from test_policies import request, status, view

JUDGE_COST, JUDGE_LATENCY = 0.001, 0.25


def cascade_run(tmp_path, judge: dict, **overrides):
    policies = {"static-big": {"kind": "static", "model": "big"},
                "static-small": {"kind": "static", "model": "small"},
                "cascade": {"kind": "cascade", "judge": judge}}
    data = scenario(replications=1, policies=policies, **overrides)
    out = run_scenario_data(tmp_path, data)
    requests = read(out).set_index(["policy", "request_id"]).sort_index()
    return out, {p: requests.loc[p] for p in policies}


def test_the_judge_and_the_stages_are_in_the_decision():
    v = view(status("pricey", 10, 30), status("cheap", 0.1, 0.4), status("mid", 1, 4, healthy=False))
    decision = build("cascade", {"judge": {"accuracy": 0.8, "cost_usd": 0.01}}).route(request(), v)
    assert decision.candidates == ("cheap", "pricey", "mid")  # cheapest first, an unhealthy stage last
    assert decision.judge == Judge("judge", 0.8, 0.8, 0.01, 0.0)
    given = build("cascade", {"models": ["pricey", "cheap"], "order": "given", "judge": {"reject_bad": 0.7}})
    decision = given.route(request(), v)
    assert decision.candidates == ("pricey", "cheap") and decision.judge.reject_bad == 0.7
    assert decision.judge.accept_good == 0.9  # the default accuracy


def test_a_perfect_judge_escalates_exactly_the_unacceptable_cheap_answers(tmp_path):
    out, runs = cascade_run(tmp_path, {"accuracy": 1.0, "cost_usd": JUDGE_COST, "latency_s": JUDGE_LATENCY})
    cascade, small, big = runs["cascade"], runs["static-small"], runs["static-big"]
    assert (small.status == "ok").all() and (big.status == "ok").all()  # no errors in this world
    bad = small.quality == 0
    assert 0.1 < bad.mean() < 0.9  # both branches are exercised
    # Acceptable cheap answers are returned after the verdict; the rest go on to the big model.
    assert (cascade.model == np.where(bad, "big", "small")).all()
    assert (cascade.escalated == bad).all()
    assert np.allclose(cascade.quality, np.where(bad, big.quality, small.quality))
    assert np.allclose(cascade.cost_usd, small.cost_usd + JUDGE_COST + np.where(bad, big.cost_usd, 0.0))
    assert np.allclose(cascade.latency_s, small.latency_s + JUDGE_LATENCY + np.where(bad, big.latency_s, 0.0))
    # A judged answer cannot stream; the big model's unjudged answer can.
    assert np.allclose(cascade.ttft_s, np.where(bad, small.latency_s + JUDGE_LATENCY + big.ttft_s, cascade.latency_s))
    attempts = read(out, "attempts")
    judged = attempts[(attempts.policy == "cascade") & (attempts.model == "small")]
    assert (judged.verdict == np.where(bad[judged.request_id], "rejected", "accepted")).all()
    assert (attempts.verdict[attempts.model == "big"] == "").all()  # the last stage is not judged
    # Every dollar is accounted for in the attempts table.
    per_request = attempts[attempts.policy == "cascade"].groupby("request_id")[["cost_usd", "judge_cost_usd"]].sum()
    assert np.allclose(per_request.sum(axis=1).loc[cascade.index], cascade.cost_usd)


def test_escalations_follow_the_judge_error_rates(tmp_path):
    accept_good, reject_bad = 0.8, 0.6
    _, runs = cascade_run(tmp_path, {"accept_good": accept_good, "reject_bad": reject_bad},
                          trace={"synthetic": {"duration_s": 3000, "rate_per_s": 2}})
    good = runs["static-small"].quality.to_numpy()
    # Escalation chance per request: a false rejection of a good answer, or a true rejection of a bad one.
    p = good * (1 - accept_good) + (1 - good) * reject_bad
    escalated = runs["cascade"].escalated.to_numpy()
    assert abs(escalated.sum() - p.sum()) < 4 * math.sqrt((p * (1 - p)).sum())
    # A wrong acceptance serves a bad cheap answer: quality falls below the perfect judge's.
    assert runs["cascade"].quality.mean() < np.maximum(good, runs["static-big"].quality).mean()


def test_a_rejected_answer_is_kept_when_no_later_stage_answers(tmp_path):
    _, runs = cascade_run(tmp_path, {"accuracy": 1.0},
                          events=[{"kind": "outage", "model": "big", "start_s": 0, "end_s": 5000}])
    cascade, small = runs["cascade"], runs["static-small"]
    assert (cascade.status == "ok").all()  # never worse off than the cheap stage alone
    assert (cascade.model == "small").all()
    assert np.allclose(cascade.quality, small.quality)
    assert (cascade.attempts == np.where(small.quality == 0, 2, 1)).all()


@pytest.mark.parametrize("judge", [Judge(accept_good=1.5), "yes"])
def test_a_malformed_judge_is_a_policy_error(tmp_path, judge):
    from sim.policies import Decision
    from sim.core.router import Router

    judged, error = Router._judge(Decision(("big",), "", judge))
    assert judged is None and "Decision.judge" in error
