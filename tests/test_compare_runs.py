"""`routesim compare`: two runs that differ only in a price event show exactly that change,
and differences that match the tables (pandas); the HTML page never overwrites a user's file."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from conftest import read, scenario, write_scenario

POLICIES = {"static-big": {"kind": "static", "model": "big"},
            "static-small": {"kind": "static", "model": "small"}}
PRICE = {"kind": "price", "model": "big", "at_s": 300, "input_per_mtok": 4.0, "output_per_mtok": 16.0}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from sim.run.runner import run_to_folder
    from sim.scenario.load import load_scenario

    folder = tmp_path_factory.mktemp("compare")
    before = scenario(replications=3, policies=POLICIES, baseline="static-big")
    after = scenario(replications=3, policies=POLICIES, baseline="static-big", events=[PRICE])
    a, b = folder / "a", folder / "b"
    run_to_folder(load_scenario(write_scenario(folder, before, "before.yaml")), a, report=False)
    run_to_folder(load_scenario(write_scenario(folder, after, "after.yaml")), b, report=False)
    return a, b


def test_a_price_event_is_exactly_the_difference(runs, cli, tmp_path):
    a, b = runs
    result = cli("compare", a, b, "--html", tmp_path / "compare.html")
    assert result.exit_code == 0, result.output
    changed = result.output.split("What changed (scenario.resolved.yaml, A → B):\n", 1)[1].split("\n\n", 1)[0]
    assert changed.splitlines() == ["  events[+]: added {kind: 'price', model: 'big', at_s: 300.0, "
                                    "input_per_mtok: 4.0, output_per_mtok: 16.0}"]
    from sim.verdicts.compare import compare_runs

    comparison = compare_runs(a, b)
    assert comparison.paired and comparison.shared == ["static-big", "static-small"]
    rows = {(policy, d.metric): d for policy, ds in comparison.differences.items() for d in ds}
    # The price reaches only static-big's cost: with the same seed every draw is shared, so everything
    # else is unchanged exactly.
    cost = {run: read(folder).groupby(["policy", "replication"]).cost_usd.sum() for run, folder in (("a", a), ("b", b))}
    change = cost["b"]["static-big"] - cost["a"]["static-big"]
    half = stats.t.ppf(0.975, len(change) - 1) * change.std(ddof=1) / np.sqrt(len(change))
    assert rows[("static-big", "cost_usd")].difference["mean"] == pytest.approx(change.mean())
    assert rows[("static-big", "cost_usd")].difference["ci95"] == pytest.approx([change.mean() - half,
                                                                                 change.mean() + half])
    assert change.min() > 0  # the new price is twice the old from 300 s on
    for (policy, metric), d in rows.items():
        if d.a is None:  # not measured in either run (no faults, so no availability during faults)
            assert d.b is None and d.difference["mean"] is None, (policy, metric)
        elif policy == "static-small" or not metric.startswith("cost"):
            assert d.difference["mean"] == 0.0, (policy, metric)
    html = (tmp_path / "compare.html").read_text()
    assert "events[+]: added {kind: &#39;price&#39;, model: &#39;big&#39;" in html
    shown = float(html.split('data-policy="static-big" data-metric="cost_usd" data-difference="', 1)[1].split('"')[0])
    assert shown == pytest.approx(change.mean())


def test_different_seeds_are_compared_as_independent_samples(runs, tmp_path):
    from sim.verdicts.compare import compare_runs
    from sim.run.runner import run_to_folder
    from sim.scenario.load import load_scenario

    a, _ = runs
    other = tmp_path / "other"
    data = scenario(replications=3, policies=POLICIES, baseline="static-big", seed=99)
    run_to_folder(load_scenario(write_scenario(tmp_path, data)), other, report=False)
    comparison = compare_runs(a, other)
    assert not comparison.paired
    assert [c.path for c in comparison.changes] == ["seed"]
    success = {run: read(folder).assign(ok=lambda f: f.status == "ok").groupby(["policy", "replication"]).ok.mean()
               for run, folder in (("a", a), ("b", other))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nearly equal shares: scipy's precision note
        welch = stats.ttest_ind(success["b"]["static-small"], success["a"]["static-small"], equal_var=False)
    row = next(d for d in comparison.differences["static-small"] if d.metric == "success_rate")
    if success["a"]["static-small"].nunique() > 1 or success["b"]["static-small"].nunique() > 1:
        interval = welch.confidence_interval(0.95)
        assert row.difference["ci95"] == pytest.approx([interval.low, interval.high])
    assert row.difference["mean"] == pytest.approx(success["b"]["static-small"].mean()
                                                   - success["a"]["static-small"].mean())


def test_the_page_never_replaces_a_file_it_did_not_write(runs, cli, tmp_path):
    a, b = runs
    mine = tmp_path / "notes.html"
    mine.write_text("<p>mine</p>")
    result = cli("compare", a, b, "--html", mine)
    assert result.exit_code == 2 and "not written by routesim compare" in result.output
    assert mine.read_text() == "<p>mine</p>"
    assert cli("compare", a, a).exit_code == 2
    assert cli("compare", a, tmp_path / "nothing").exit_code == 2
    page = tmp_path / "page.html"
    assert cli("compare", a, b, "--html", page).exit_code == 0
    assert cli("compare", b, a, "--html", page).exit_code == 0  # its own page: replaced


def test_the_page_highlights_only_the_differences_whose_interval_excludes_zero(runs, cli, tmp_path):
    """Only static-big's price changed: the rows highlighted on the page (and starred in the
    terminal) are exactly static-big's costs whose paired 95% interval, computed here from the
    requests with pandas and scipy, excludes zero."""
    import re

    a, b = runs
    expected = set()
    tables = {run: read(folder) for run, folder in (("a", a), ("b", b))}
    per_run = {}
    for run, requests in tables.items():
        by = requests.groupby(["policy", "replication"])
        per_run[run] = {"cost_usd": by.cost_usd.sum(), "cost_per_1k_requests_usd": by.cost_usd.sum() / by.size() * 1000,
                        "cost_per_1k_successes_usd": by.cost_usd.sum() / by.status.apply(lambda s: (s == "ok").sum()) * 1000}
    for metric in per_run["a"]:
        change = per_run["b"][metric]["static-big"] - per_run["a"][metric]["static-big"]
        half = stats.t.ppf(0.975, len(change) - 1) * change.std(ddof=1) / np.sqrt(len(change))
        if change.mean() - half > 0 or change.mean() + half < 0:
            expected.add(("static-big", metric))
    assert ("static-big", "cost_usd") in expected  # the case has something to highlight
    result = cli("compare", a, b, "--html", tmp_path / "compare.html")
    html = (tmp_path / "compare.html").read_text()
    highlighted = set(re.findall(r'<tr class="clear" data-policy="([^"]+)" data-metric="([^"]+)"', html))
    rows = set(re.findall(r'<tr(?: class="clear")? data-policy="([^"]+)" data-metric="([^"]+)"', html))
    assert len(rows) > len(expected)  # the page has rows that must not be highlighted
    assert highlighted == expected
    starred = {tuple(line.split()[:2]) for line in result.output.splitlines() if line.rstrip().endswith("*")
               and line.split()[0] in ("static-big", "static-small")}
    assert starred == expected


def test_a_changed_event_is_named_by_its_kind_target_and_time():
    from sim.verdicts.compare import scenario_changes

    a = {"events": [{"kind": "outage", "provider": "pa", "start_s": 60, "end_s": 120},
                    {"kind": "price", "model": "big", "at_s": 300, "input_per_mtok": 2.0, "output_per_mtok": 8.0}]}
    b = {"events": [{"kind": "outage", "provider": "pa", "start_s": 60, "end_s": 180},
                    {"kind": "price", "model": "big", "at_s": 300, "input_per_mtok": 3.0, "output_per_mtok": 8.0}]}
    assert [c.describe() for c in scenario_changes(a, b)] == [
        "events[0] (outage, pa, 60–120 s).end_s: 120 → 180",
        "events[1] (price, big, at 300 s).input_per_mtok: 2.0 → 3.0"]


def test_time_to_failover_reads_never_as_in_the_report(tmp_path, cli):
    """static-big has no fallback and its provider is out from 0 to 300 s: every request of the
    window fails (checked on the requests), so the report's "never" is compare's word too, not the
    window's length as a number of seconds."""
    from sim.run.runner import run_to_folder
    from sim.scenario.load import load_scenario

    outage = {"kind": "outage", "provider": "pa", "start_s": 0, "end_s": 300}
    runs = []
    for k, events in enumerate(([outage], [outage, PRICE])):
        data = scenario(replications=2, policies=POLICIES, baseline="static-big", events=events)
        runs.append(tmp_path / f"run{k}")
        run_to_folder(load_scenario(write_scenario(tmp_path, data, f"s{k}.yaml")), runs[-1], report=False)
    for folder in runs:
        requests = read(folder)
        window = requests[(requests.policy == "static-big") & (requests.arrival_s < 300)]
        assert len(window) > 100 and (window.status != "ok").all()
    result = cli("compare", *runs)
    row = next(line for line in result.output.splitlines()
               if line.startswith("static-big") and "time_to_failover_s" in line)
    assert row.split()[2:4] == ["never", "never"], row
