"""A sweep's claim, checked run by run (sim/verdicts/claims.py), on rows made by hand."""

from __future__ import annotations

from sim.verdicts.claims import verdicts
from sim.scenario.schema.sweep import Claim

CLAIM = Claim(policy="dynamic", min_savings=0.2, max_savings=0.45, max_quality_drop=0.01, rivals=["table"])


def row(policy, cell=0, savings=(0.3, 0.25, 0.35), delta=(0.0, -0.005, 0.005), cost=2.0, quality=0.9,
        answered_delta=None):
    out = {"cell": cell, "seed": 1, "policy": policy, "x": cell,
           "cost_per_1k_requests_usd_mean": cost, "mean_quality_mean": quality}
    for metric, values in (("savings_vs_baseline", savings), ("quality_delta_vs_baseline", delta),
                           ("answered_quality_delta_vs_baseline", delta if answered_delta is None else answered_delta)):
        for part, value in zip(("mean", "ci95_lo", "ci95_hi"), values):
            out[f"{metric}_{part}"] = value
    return out


def test_each_part_of_the_claim_is_decided_as_stated():
    rows = [
        row("dynamic", 0), row("table", 0, cost=3.0, quality=0.9),  # holds: the table costs more
        row("dynamic", 1, savings=(0.3, 0.15, 0.45)), row("table", 1, cost=3.0),  # lower bound under 20%
        row("dynamic", 2, delta=(-0.005, -0.02, 0.01)), row("table", 2, cost=3.0),  # may lose 0.02 > 0.01
        row("dynamic", 3, savings=(0.5, 0.4, 0.6)), row("table", 3, cost=3.0),  # saves more: a note, still holds
        row("dynamic", 4), row("table", 4, cost=2.0, quality=0.9),  # the table does as well for as little
        # the baseline failed: better over all requests, answers worse by up to 0.05
        row("dynamic", 5, delta=(0.2, 0.15, 0.25), answered_delta=(-0.03, -0.05, -0.01)), row("table", 5, cost=3.0),
    ]
    found = {v.cell: v for v in verdicts(CLAIM, rows, ["x"])}
    assert found[0].holds and not found[0].failed
    assert found[1].failed == ["saves less than 20%"] and not found[1].holds
    assert found[2].failed == ["may lose more than 0.01 quality", "may lose more than 0.01 quality in its answers"]
    assert found[5].failed == ["may lose more than 0.01 quality in its answers"]
    assert found[3].holds and found[3].notes == ["saves more than 45%"]
    assert found[4].beaten_by == ["table"] and not found[4].holds
    assert found[0].parameters == {"x": 0}


def test_with_one_replication_the_mean_decides():
    rows = [row("dynamic", savings=(0.25, None, None), delta=(-0.02, None, None))]
    (verdict,) = verdicts(CLAIM, rows, [])
    assert verdict.failed == ["may lose more than 0.01 quality", "may lose more than 0.01 quality in its answers"]
