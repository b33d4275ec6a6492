"""Summaries against hand computations and against the request table (pandas)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from sim.metrics.stats import mean_ci

from conftest import read, run_scenario_data, scenario


def test_t_interval_by_hand():
    # [1, 2, 3]: mean 2, sd 1, t(0.975, 2) = 4.302652729911275 (tables)
    result = mean_ci([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)
    assert result["mean"] == pytest.approx(2.0)
    assert result["ci95"] == pytest.approx([2.0 - half, 2.0 + half])


def test_degenerate_intervals():
    assert mean_ci([5.0]) == {"mean": 5.0, "ci95": [None, None]}
    assert mean_ci([2.0, 2.0, 2.0]) == {"mean": 2.0, "ci95": [2.0, 2.0]}
    assert mean_ci([0.99, 1.0, 1.0], bounds=(0, 1))["ci95"][1] == 1.0
    assert mean_ci([]) == {"mean": None, "ci95": [None, None]}


def interval(values):
    values = np.asarray(values, dtype=float)
    if values.std() == 0:
        return values.mean(), values.mean(), values.mean()
    lo, hi = scipy_stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=scipy_stats.sem(values))
    return values.mean(), lo, hi


def test_summary_matches_the_request_table(tmp_path):
    data = scenario(replications=4,
                    workloads={"chat": {"slo_s": 2.0}, "code": {"slo_s": 4.0}},
                    router={"timeout_s": 60, "max_attempts": 3},
                    policies={"static-big": {"kind": "static", "model": "big"},
                              "dyn": {"kind": "weighted", "weights": {"cost": 1, "quality": 1}},
                              "cascade": {"kind": "cascade", "models": ["small", "big"], "judge": {"accuracy": 0.8}}})
    data["models"]["big"]["error_rate"] = 0.05
    data["models"]["big"]["carbon_g_per_mtok"] = 300.0
    data["models"]["small"]["carbon_g_per_mtok"] = 40.0
    out = run_scenario_data(tmp_path, data, report=False)
    document = json.loads((out / "summary.json").read_text())
    summary = document["policies"]
    requests = read(out)
    slo = requests.workload.map({"chat": 2.0, "code": 4.0})
    requests["in_slo"] = (requests.status == "ok") & (requests.latency_s <= slo)
    per_run = requests.groupby(["policy", "replication"]).agg(
        cost=("cost_usd", "sum"), n=("request_id", "size"), quality=("quality", "mean"),
        success=("status", lambda s: (s == "ok").mean()), attempts=("attempts", "mean"),
        slo=("in_slo", "mean"), escalation=("escalated", "mean"))
    attempts = read(out, "attempts")
    models_tried = attempts.groupby(["policy", "replication", "request_id"]).model.nunique()
    per_run["fallback"] = (models_tried > 1).groupby(["policy", "replication"]).sum() / per_run.n
    # Carbon from the formula: (input + output) x g/Mtok of each answered attempt (no timeouts here, so
    # every charged attempt is an answer with its whole output).
    grams = {"big": 300.0, "small": 40.0}
    answered = attempts[attempts.outcome == "ok"].merge(
        requests[["policy", "replication", "request_id", "input_tokens", "output_tokens"]],
        on=["policy", "replication", "request_id"])
    answered["carbon"] = (answered.input_tokens + answered.output_tokens) * answered.model.map(grams) / 1e6
    per_run["carbon"] = answered.groupby(["policy", "replication"]).carbon.sum()
    ok = requests[requests.status == "ok"]
    latency = ok.groupby(["policy", "replication"]).latency_s
    decisions = read(out, "decisions").groupby(["policy", "replication"]).decision_us
    base = per_run.loc["static-big"]
    shares = {"success_rate", "mean_quality", "slo_attainment", "fallback_rate", "escalation_rate"}
    non_negative = {"cost_usd", "cost_per_1k_successes_usd", "cost_per_1k_requests_usd", "attempts_per_request",
                    "carbon_g"}
    checked = 0
    for policy in ("static-big", "dyn", "cascade"):
        run = per_run.loc[policy]
        for metric, values in [("cost_usd", run.cost), ("mean_quality", run.quality), ("success_rate", run.success),
                               ("attempts_per_request", run.attempts), ("slo_attainment", run.slo),
                               ("cost_per_1k_successes_usd", run.cost / (run.success * run.n) * 1000),
                               ("fallback_rate", run.fallback), ("cost_per_1k_requests_usd", run.cost / run.n * 1000),
                               ("escalation_rate", run.escalation), ("carbon_g", run.carbon),
                               ("latency_p50_s", latency.quantile(0.50).loc[policy]),
                               ("latency_p95_s", latency.quantile(0.95).loc[policy]),
                               ("latency_p99_s", latency.quantile(0.99).loc[policy]),
                               ("decision_us_p50", decisions.quantile(0.50).loc[policy]),
                               ("decision_us_p99", decisions.quantile(0.99).loc[policy]),
                               ("savings_vs_baseline", 1 - run.cost / base.cost),
                               ("quality_delta_vs_baseline", run.quality - base.quality)]:
            mean, lo, hi = interval(values)
            if metric in shares:  # intervals of shares are clipped to [0, 1], of costs and counts at 0
                lo, hi = max(lo, 0.0), min(hi, 1.0)
            elif metric in non_negative:
                lo = max(lo, 0.0)
            got = summary[policy][metric]
            assert got["mean"] == pytest.approx(mean, rel=1e-9, abs=1e-12), (policy, metric)
            assert got["ci95"] == pytest.approx([lo, hi], rel=1e-9, abs=1e-12), (policy, metric)
            checked += 1
    assert checked == 3 * 17
    assert summary["static-big"]["savings_vs_baseline"]["mean"] == 0.0
    assert summary["dyn"]["savings_vs_baseline"]["mean"] > 0.5  # it mostly uses the 10x cheaper model
    assert summary["cascade"]["escalation_rate"]["mean"] > 0.05  # the judge escalated some answers
    assert summary["dyn"]["carbon_g"]["mean"] < summary["static-big"]["carbon_g"]["mean"]


def test_summary_csv_holds_exactly_what_summary_json_holds(tmp_path):
    out = run_scenario_data(tmp_path, scenario(replications=3), report=False)
    document = json.loads((out / "summary.json").read_text())["policies"]
    table = pd.read_csv(out / "summary.csv").set_index("policy")
    assert list(table.index) == list(document)
    for policy, metrics in document.items():
        assert len(table.columns) == 3 * len(metrics)
        for metric, value in metrics.items():
            for column, number in zip(("mean", "ci95_lo", "ci95_hi"), (value["mean"], *value["ci95"])):
                cell = table.loc[policy, f"{metric}_{column}"]
                assert (number is None and math.isnan(cell)) or cell == number, (policy, metric, column)
