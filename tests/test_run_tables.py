"""The tables are written slice by slice while a run goes on (sim/run/tables.py): with
slices of a few requests, a run writes the same rows as with one slice for the whole
run, a row group per slice, and a policy error that arrives with feedback long after
its request ended still lands in that request's decision row."""

from __future__ import annotations

import math

import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import install_plugin, read, run_scenario_data, scenario

FEEDBACK_DELAY_S = 300.0

PLUGIN = '''
from sim.policies import Decision, Feedback

class Grumpy:
    """Sends everything to 'big'; its feedback store is down, so every verdict raises."""
    reads = frozenset({"feedback"})

    def route(self, request, view):
        return Decision(("big", "small"), {"why": "big first"})

    def observe(self, request, news):
        if isinstance(news, Feedback):
            raise ValueError(f"feedback store down at {news.answered_s:.0f}")
'''


def _run(tmp_path, monkeypatch, slice_rows: int, name: str):
    import sim.run.tables

    monkeypatch.setattr(sim.run.tables, "TABLE_SLICE_ROWS", slice_rows)
    data = scenario(replications=2, policies={"grumpy": {"kind": "grumpy:Grumpy"},
                                              "static-big": {"kind": "static", "model": "big"}},
                    baseline="static-big",
                    router_knowledge={"feedback": {"judge": {"share": 1.0, "accuracy": 1.0,
                                                             "delay_s": FEEDBACK_DELAY_S}}})
    folder = tmp_path / name
    folder.mkdir()
    return run_scenario_data(folder, data, report=False)


@pytest.fixture
def runs(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch, "grumpy", PLUGIN)
    return _run(tmp_path, monkeypatch, 1 << 30, "whole"), _run(tmp_path, monkeypatch, 64, "sliced")


def test_small_slices_write_the_rows_one_slice_writes(runs):
    whole, sliced = runs
    for table in ("requests", "attempts", "decisions"):
        a, b = read(whole, table), read(sliced, table)
        assert len(a) > 1000
        timing = [c for c in a.columns if c.startswith("decision_")]
        pd.testing.assert_frame_equal(a.drop(columns=timing), b.drop(columns=timing))


def test_a_slice_is_a_row_group_of_each_table(runs):
    _, sliced = runs
    requests = read(sliced)
    cells = requests.groupby(["policy", "replication"], sort=False).size()
    expected = sum(math.ceil(n / 64) for n in cells)
    for table in ("requests", "attempts", "decisions"):
        assert pq.ParquetFile(sliced / f"{table}.parquet").metadata.num_row_groups == expected, table
    groups = pq.ParquetFile(sliced / "requests.parquet")
    assert [groups.metadata.row_group(g).num_rows for g in range(3)] == [64, 64, 64]


def test_errors_from_late_feedback_land_in_their_requests_rows(runs):
    _, sliced = runs
    decisions = read(sliced, "decisions").set_index(["policy", "replication", "request_id"])
    requests = read(sliced).set_index(["policy", "replication", "request_id"])
    grumpy = requests.loc["grumpy"]
    errors = decisions.loc["grumpy"].policy_error
    # Every answer gets a verdict (share 1), FEEDBACK_DELAY_S after the request ended: each one raised.
    answered = grumpy.status == "ok"
    assert answered.sum() > 500 and (errors[answered].str.startswith("observe: ValueError: feedback store down")).all()
    assert errors[~answered].isna().all()
    # The error names when the answer came: the request's own end, not a neighbour's.
    ended = grumpy.arrival_s + grumpy.latency_s
    stamped = errors[answered].str.extract(r"down at (\d+)$")[0].astype(float)
    assert ((stamped - ended[answered]).abs() <= 0.5).all()
    assert decisions.loc["static-big"].policy_error.isna().all()
    # The mapping reason is written as JSON text.
    assert (decisions.loc["grumpy"].reason == '{"why": "big first"}').all()


def test_the_metrics_of_a_sliced_run_are_those_of_a_whole_one(runs):
    """Cost, quality and carbon are summed slice by slice (then the slices' sums exactly):
    the summary is the one-slice run's to the last few digits, counts exactly."""
    import json

    whole, sliced = (json.loads((run / "summary.json").read_text())["policies"] for run in runs)
    for policy, metrics in whole.items():
        for metric, value in metrics.items():
            if metric.startswith("decision_us"):
                continue
            if value["mean"] is None:  # no value (e.g. no fault windows): none either way
                assert sliced[policy][metric]["mean"] is None, metric
                continue
            assert sliced[policy][metric]["mean"] == pytest.approx(value["mean"], rel=1e-12, abs=1e-15), metric
    requests = read(runs[1])
    cost = requests.groupby(["policy", "replication"]).cost_usd.sum().groupby("policy").mean()
    for policy in whole:
        assert sliced[policy]["cost_usd"]["mean"] == pytest.approx(cost[policy], rel=1e-12)
