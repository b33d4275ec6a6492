"""The metric registry is the one list: what a run computes, what the summary holds
and how the gate and the tables show each metric all agree with it."""

from __future__ import annotations

import json

from conftest import run_scenario_data, scenario
from sim.metrics.registry import BY_NAME, METRICS, SUMMARY_METRICS, names


def test_every_computed_metric_is_declared_and_every_declared_one_reported(tmp_path):
    data = scenario(replications=2)
    data["policies"]["mix"] = {"kind": "weighted", "weights": {"cost": 0.5, "quality": 0.5}}  # a two-model router
    out = run_scenario_data(tmp_path, data, report=False)
    summary = json.loads((out / "summary.json").read_text())
    for metrics in summary["policies"].values():
        assert list(metrics) == list(SUMMARY_METRICS)
    assert set(SUMMARY_METRICS) == set(names("run", "resilience", "paired"))
    routers = [r for c in summary["comparisons"] for r in c["routers"].values()]
    assert routers and all(set(r) - {"upper_bound"} == set(names("research")) - {"random_mix_aiq"} for r in routers)


def test_every_metric_is_complete():
    for m in METRICS:
        assert m.unit in {"count", "pct", "usd", "ratio", "delta", "seconds", "us", "grams"}, m.name
        assert m.better in {"higher", "lower", ""}, m.name
        assert m.definition and (m.paired is not None) == (m.section == "paired"), m.name
        assert BY_NAME[m.name] is m
